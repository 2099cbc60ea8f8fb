"""The repository's rooms hold: library code apart from Dagster wiring, and every reference resolvable inside.

* every module under ``polar_pipeline/defs/`` imports dagster; no library package does, and each library
  package imports only what its room allows (DESIGN: the client speaks httpx, the simulator stdlib, …);
* every document, source path and ``§`` section that code, SQL or docs cite exists in this repository.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "polar_pipeline"

# What each library package may import besides the standard library and itself.
LIBRARY_ROOMS: dict[str, set[str]] = {
    "accesslink": {"httpx"},
    "simulator": set(),
    "warehouse": {"duckdb", "polars", "pyarrow"},
    "sqlmodels": {"duckdb", "sqlglot", "yaml", "polar_pipeline.warehouse"},
    "ingest": {"polar_pipeline.accesslink", "polar_pipeline.warehouse"},
    "analytics": {"polars", "numpy", "scipy"},
}
LIBRARY_MODULES = (
    "settings.py", "control_store.py", "devserver.py", "history.py", "migrate.py", "clock.py",
    "user_zones.py",
)  # fmt: skip


def _module_has_code(tree: ast.Module) -> bool:
    body = tree.body[1:] if tree.body and isinstance(tree.body[0], ast.Expr) else tree.body
    return bool(body)


def _imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _allowed(module: str, room: str, extra: set[str]) -> bool:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or module.startswith(f"polar_pipeline.{room}"):
        return True
    return any(module == allowed or module.startswith(allowed + ".") for allowed in extra)


def test_every_module_under_defs_imports_dagster() -> None:
    modules = sorted((PACKAGE / "defs").rglob("*.py"))
    assert len(modules) >= 10
    for path in modules:
        tree = ast.parse(path.read_text())
        if _module_has_code(tree):
            assert "dagster" in _imports(tree), f"{path.relative_to(REPO)} declares no Dagster object"


@pytest.mark.parametrize("room", sorted(LIBRARY_ROOMS))
def test_library_packages_import_only_what_their_room_allows(room: str) -> None:
    for path in sorted((PACKAGE / room).rglob("*.py")):
        foreign = sorted(
            module
            for module in _imports(ast.parse(path.read_text()))
            if not _allowed(module, room, LIBRARY_ROOMS[room])
        )
        assert not foreign, f"{path.relative_to(REPO)} imports {foreign}"


def test_library_modules_never_import_dagster() -> None:
    for name in LIBRARY_MODULES:
        modules = _imports(ast.parse((PACKAGE / name).read_text()))
        assert not any(m.split(".")[0] == "dagster" for m in modules), name


def test_importing_every_library_package_loads_no_dagster() -> None:
    packages = [f"polar_pipeline.{room}" for room in LIBRARY_ROOMS] + [
        f"polar_pipeline.{name.removesuffix('.py')}" for name in LIBRARY_MODULES
    ]
    submodules = [
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for room in LIBRARY_ROOMS
        for path in sorted((PACKAGE / room).rglob("*.py"))
        if path.name != "__main__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {packages + submodules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


# --- references -----------------------------------------------------------------------------------------

TEXT_SUFFIXES = {".py", ".sql", ".md", ".yml", ".yaml", ".toml", ".txt", ""}
OUTSIDE = re.compile(
    r"\.\./shared|analytics-methods\.md|accesslink-v3\.md|dagster-notes\.md|upstream-polar-flow-server\.md"
)
# A cited repository path: starts at a top-level folder of ours (polar_pipeline/…, docs/…, tests/…).
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:polar_pipeline|polar_api|dbt_like_sql|docs|tests|\.ci)/[\w./-]*[\w/])"
)
DOC_NAME = re.compile(r"(?<![\w./-])([\w-]+\.md)\b")
SECTION = re.compile(r"(docs/[\w-]+\.md|\b[\w-]+\.md) (§[\d.]+(?:(?:, |[–-])§[\d.]+)*)")


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    files = [REPO / name for name in listed if not name.startswith("tests/fixtures/")]
    return [path for path in files if path.suffix in TEXT_SUFFIXES and path.is_file()]


def _sections(doc: Path) -> set[str]:
    numbers = set()
    for line in doc.read_text().splitlines():
        match = re.match(r"#{2,4} (\d+(?:\.\d+)*)\.? ", line)
        if match:
            numbers.add(match.group(1))
    return numbers


def test_nothing_points_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in _tracked_text_files()
        if path != Path(__file__)
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_every_cited_path_and_document_exists() -> None:
    docs_by_name: dict[str, list[Path]] = {}
    for doc in REPO.rglob("*.md"):
        if ".venv" not in doc.parts:
            docs_by_name.setdefault(doc.name, []).append(doc)
    missing = []
    for path in _tracked_text_files():
        text = path.read_text(errors="replace")
        for cited in REPO_PATH.findall(text):
            target = cited.rstrip(".")
            placeholder = any(part in target for part in ("<", "*", "NNN"))
            if not placeholder and not (REPO / target).exists():
                missing.append(f"{path.relative_to(REPO)}: {target}")
        for name in DOC_NAME.findall(text):
            if name not in docs_by_name:
                missing.append(f"{path.relative_to(REPO)}: {name}")
    assert missing == []


def test_every_cited_section_exists() -> None:
    checked = 0
    problems = []
    for path in _tracked_text_files():
        for doc_name, sections in SECTION.findall(path.read_text(errors="replace")):
            doc = REPO / doc_name if "/" in doc_name else REPO / "docs" / doc_name
            if not doc.exists():
                problems.append(f"{path.relative_to(REPO)}: {doc_name} does not exist")
                continue
            known = _sections(doc)
            for number in re.findall(r"§([\d.]+)", sections):
                checked += 1
                if number.rstrip(".") not in known:
                    problems.append(f"{path.relative_to(REPO)}: {doc_name} has no §{number}")
    assert problems == []
    assert checked >= 20
