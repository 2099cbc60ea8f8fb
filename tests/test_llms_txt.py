"""llms.txt: generated from the docs, current, and served by the API as is."""

from __future__ import annotations

from pathlib import Path

import httpx

from polar_pipeline.llms_txt import FULL_TEXT, LLMS_TXT, ROOT, main, render


def test_the_committed_llms_txt_is_current() -> None:
    assert main(["--check"]) == 0, "llms.txt is stale: run `make docs`"


def test_a_changed_doc_makes_it_stale(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    (copy / "docs").mkdir(parents=True)
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        target = copy / path.relative_to(ROOT)
        target.write_text(path.read_text())
    before = render(copy)
    (copy / "docs" / "api.md").write_text((copy / "docs" / "api.md").read_text() + "\nA new route.\n")
    after = render(copy)
    assert before != after and "A new route." in after and "A new route." not in before


def test_it_indexes_every_doc_and_carries_readme_api_tables_and_methods() -> None:
    text = LLMS_TXT.read_text()
    assert text.startswith("# polar-flow pipeline\n\n> ")
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"]({doc.relative_to(ROOT).as_posix()})" in text
    for name in FULL_TEXT:
        body = (ROOT / name).read_text()
        first_paragraph = next(
            line for line in body.splitlines() if line and not line.startswith(("#", "<!--"))
        )
        assert f"## {name}" in text and first_paragraph in text
    assert "marts.daily_metrics" in text and "/api/v1/users/{user_id}" in text


def test_the_api_serves_it(api: httpx.Client) -> None:
    response = httpx.get(f"{api.base_url}/llms.txt", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == LLMS_TXT.read_text()
