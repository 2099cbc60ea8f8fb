"""Where the real AccessLink payloads live: vendored from shared/fixtures (MIT, see their NOTICE.md)."""

from pathlib import Path

ACCESSLINK_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "accesslink-real"
