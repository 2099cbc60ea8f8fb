"""The account-export import's figures: ``make bench`` runs it in a process of its own (its own peak RSS).

A 5-year export of the simulator's athlete (about 300 workouts a year with 1 Hz series and GPS routes,
every day's activity, sleep, Nightly Recharge and 24/7 heart rate) is generated once and cached, since
writing 2.8 GB of JSON takes minutes; the same arguments always give the same bytes. Then it is imported
for a user who never synced, the way ``polar-flow import`` does it: read and stored member by member,
every derived table rebuilt in one run, a snapshot published. Printed: files/s and MB/s of JSON read, the
peak RSS, and the time until the five years are in every derived table and published.

``python -m polar_pipeline.bench_import [--years N] [--cache DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

EXPORT_TODAY = date(2026, 3, 1)
"""The simulated export's last day: fixed, so the cached zip stays valid from one run to the next."""
PERSONA = 0
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "polar-flow-bench"


def _print(label: str, value: str) -> None:
    print(f"  {label:<58} {value}", flush=True)


def _tree_rss_mb(pid: int) -> float:
    """The resident memory of ``pid`` and all its descendants, in MB."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue  # it exited meanwhile
        rss_kb = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")]
        total += sum(rss_kb) / 1024  # a zombie has no VmRSS line
        pending.extend(int(child) for child in children)
    return total


class TreePeak:
    """Samples the process tree's RSS every 10 ms in a thread; ``peak`` is the largest sum seen."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _tree_rss_mb(os.getpid()))

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def export_zip(years: int, cache: Path) -> Path:
    """The cached export (generated on first use, in a child process so its memory is not counted here)."""
    target = cache / f"athlete-{years}y-through-{EXPORT_TODAY.isoformat()}.zip"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    code = (
        "import datetime as d, pathlib as p; from polar_pipeline.simulator import SimulatorConfig; "
        "from polar_pipeline.simulator.export import write_export; "
        f"write_export(SimulatorConfig(today=d.date.fromisoformat('{EXPORT_TODAY}'), "
        f"history_days={years * 366}), {PERSONA}, p.Path({str(partial)!r}), "
        f"first_day=d.date.fromisoformat('{EXPORT_TODAY - timedelta(days=years * 365 - 1)}'), "
        f"last_day=d.date.fromisoformat('{EXPORT_TODAY}'))"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    partial.rename(target)
    _print("export generated (cached for later runs)", f"{time.perf_counter() - started:.0f} s")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    print(f"polar-flow import benchmark ({args.years}-year account export)", flush=True)
    archive = export_zip(args.years, args.cache)
    workdir = Path(tempfile.mkdtemp(prefix="polar-bench-import-"))
    try:
        first_day = EXPORT_TODAY - timedelta(days=args.years * 365 - 1)
        os.environ["POLAR_HOME"] = str(workdir / "home")
        os.environ["POLAR_HISTORY_START"] = first_day.isoformat()
        os.environ["POLAR_TODAY"] = EXPORT_TODAY.isoformat()
        os.environ.pop("DAGSTER_HOME", None)
        from polar_pipeline.export_import import files_per_family, import_export
        from polar_pipeline.settings import Settings

        settings = Settings()  # Dagster is not loaded here: import_export loads it once the export is stored
        files = sum(files_per_family(archive).values())
        read_peak: list[float] = []

        started = time.perf_counter()
        with TreePeak() as memory:

            def first_rebuild_event(_: object) -> None:
                """The rebuild's first event: the peak so far is the read-and-store phase's."""
                if not read_peak:
                    read_peak.append(memory.peak)

            done = import_export(settings, "bench-import", archive, progress=first_rebuild_event)
        total = time.perf_counter() - started
        read = done.seconds["read and store"]
        json_mb = done.stored.json_bytes / 1e6
        _print(
            "export",
            f"{archive.stat().st_size / 1e6:.0f} MB zip, {files} files, {json_mb:.0f} MB of JSON read, "
            f"{done.stored.first_day}..{done.stored.last_day}",
        )
        _print(
            "read + store (streamed, raw + sample store)",
            f"{read:.1f} s: {files / read:.0f} files/s, {json_mb / read:.0f} MB/s of JSON",
        )
        rows = ", ".join(f"{s} {c.changed}" for s, c in done.stored.stored.items())
        _print("  raw rows added", rows)
        _print(
            "  sample store",
            f"{done.sample_sessions} sessions, "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(done.sample_rows.items())),
        )
        rebuilt = done.rebuild
        _print(
            "rebuild, every derived table (1 run)",
            f"{done.seconds.get('rebuild', 0.0):.1f} s"
            + (f", {rebuilt.first_day}..{rebuilt.last_day}" if rebuilt else "")
            + (", ok" if rebuilt and rebuilt.success else ", FAILED"),
        )
        _print("publish", f"{done.seconds.get('publish', 0.0):.1f} s, generation {done.generation}")
        _print("imported, derived and published", f"{total:.1f} s")
        _print(
            "peak RSS: read + store / the whole import",
            f"{read_peak[0] if read_peak else float('nan'):.0f} MB / {memory.peak:.0f} MB "
            "(the process and any child, sampled every 10 ms)",
        )
        return 0 if rebuilt is not None and rebuilt.success and done.published else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
