"""Screenshots of dashboard pages from a running API, for the README and the docs.

    python -m tests.dashboard.screenshots --url http://127.0.0.1:8000 --key "$KEY" --out <folder>

signs in with ``--key`` through the sign-in form (the key goes into the form, never into a URL), opens each
page (``--pages``, default today and hrv) for ``--user`` (an admin key's choice; a user's key shows its own)
and ``--range``, waits until the page has drawn its charts, and writes ``<out>/dashboard-<page>.png`` of
the whole page at 1280 px wide. Needs the dev dependencies (selenium) and chromium + chromedriver.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlencode

from polar_api.dashboard.pages import PAGES
from polar_api.dashboard.window import RANGES
from tests.dashboard.browser import Dashboard, find_browser, start_chrome

DEFAULT_OUT = Path("test-artifacts") / "dashboard"


def take(url: str, key: str, out: Path, pages: list[str], user: str | None, range_key: str) -> list[Path]:
    """One PNG per page, in ``out``; returns their paths."""
    found = find_browser()
    if found is None:
        raise SystemExit("chromium and chromedriver are needed: apt-get install chromium chromium-driver")
    dashboard = Dashboard(driver=start_chrome(*found), base_url=url.rstrip("/"))
    written = []
    try:
        dashboard.sign_in(key)
        for page in pages:
            query = {"range": range_key} | ({"user": user} if user else {})
            dashboard.open(f"/dashboard/{page}?{urlencode(query)}")
            if dashboard.driver.find_element("tag name", "body").get_attribute("data-ready") != "true":
                raise SystemExit(f"the {page} page did not load its data")
            written.append(dashboard.screenshot(out / f"dashboard-{page}.png"))
    finally:
        dashboard.driver.quit()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="the API's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="an API key (admin, or the user's own)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the PNG files")
    parser.add_argument("--pages", default="today,hrv", help=f"comma-separated, of: {', '.join(PAGES)}")
    parser.add_argument("--user", default=None, help="whose pages (with an admin key)")
    parser.add_argument("--range", dest="range_key", default="90", choices=list(RANGES))
    args = parser.parse_args(argv)
    pages = [name.strip() for name in args.pages.split(",") if name.strip()]
    unknown = [name for name in pages if name not in PAGES]
    if unknown:
        parser.error(f"unknown page(s): {', '.join(unknown)}")
    for path in take(args.url, args.key, args.out, pages, args.user, args.range_key):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
