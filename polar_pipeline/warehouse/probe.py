"""A separate reader process for concurrency checks: query the serving snapshot in a loop.

``python -m polar_pipeline.warehouse.probe SNAPSHOTS_DIR SECONDS QUERY`` prints ``ready`` on stderr once
it starts, then, at the deadline or on SIGTERM, one JSON line on stdout: successful reads, errors, and
every distinct (generation, result) it saw. Used by the tests and by ``make bench``.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from polar_pipeline.warehouse.snapshot import SnapshotReader, SnapshotUnavailable


def main() -> None:
    snapshots_dir, seconds, query = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        # A flag, not an exception: DuckDB would turn an exception raised mid-query into its own error.
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    reader = SnapshotReader(snapshots_dir)
    reads, errors, seen = 0, [], set()
    deadline = time.monotonic() + seconds
    print("ready", file=sys.stderr, flush=True)
    while not stopping and time.monotonic() < deadline:
        try:
            with reader.cursor() as (cursor, info):
                result = cursor.execute(query).fetchall()
            seen.add(json.dumps([info.generation, [list(map(str, row)) for row in result]]))
            reads += 1
        except SnapshotUnavailable:
            time.sleep(0.01)  # nothing published yet: not an error
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    reader.close()
    report = {"reads": reads, "failed": len(errors), "errors": errors[:20]}
    print(json.dumps(report | {"seen": sorted(json.loads(s) for s in seen)}), flush=True)


if __name__ == "__main__":
    main()
