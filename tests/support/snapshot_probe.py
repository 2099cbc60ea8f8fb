"""A separate reader process for concurrency tests: query the serving snapshot in a loop.

Run as ``python -m tests.support.snapshot_probe SNAPSHOTS_DIR SECONDS QUERY``. Prints one JSON line:
the number of successful reads, the errors, and every distinct (generation, result) seen.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from polar_pipeline.warehouse.snapshot import SnapshotReader, SnapshotUnavailable


def main() -> None:
    snapshots_dir, seconds, query = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    reader = SnapshotReader(snapshots_dir)
    reads, errors, seen = 0, [], set()
    deadline = time.monotonic() + seconds
    print("ready", file=sys.stderr, flush=True)
    while time.monotonic() < deadline:
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
    print(json.dumps({"reads": reads, "errors": errors[:20], "seen": sorted(json.loads(s) for s in seen)}))


if __name__ == "__main__":
    main()
