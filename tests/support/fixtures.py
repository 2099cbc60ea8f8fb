"""Where the real AccessLink payloads live: vendored from axs192/polar-flow-platform-public (MIT; see
tests/fixtures/accesslink-real/NOTICE.md)."""

from pathlib import Path

ACCESSLINK_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "accesslink-real"
