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


PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1e6


def _tree_rss_mb(pid: int) -> float:
    """The resident memory of ``pid`` and its descendants, in MB (``/proc/<pid>/statm``: cheap to read, so
    sampling does not slow the import down). A child still running its parent's program (forked, not yet
    exec'd: how Python and Dagster start ``tail`` or a spawned interpreter) shares its parent's pages and is
    not counted."""
    total = 0.0
    pending = [(pid, b"")]
    while pending:
        current, parent_program = pending.pop()
        try:
            program = Path(f"/proc/{current}/cmdline").read_bytes()
            if program == parent_program:
                continue
            resident_pages = int(Path(f"/proc/{current}/statm").read_text().split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, IndexError, ValueError):
            continue  # it exited meanwhile
        total += resident_pages * PAGE_MB
        pending.extend((int(child), program) for child in children)
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
        from polar_pipeline.export_import import import_export
        from polar_pipeline.settings import Settings

        settings = Settings()  # nothing heavy loaded here: the child reads, Dagster comes after it
        read_peak: list[float] = []

        started = time.perf_counter()
        with TreePeak() as memory:

            def phase_started(phase: str) -> None:
                """When the rebuild starts, the peak so far is the read-and-store phase's."""
                if phase == "rebuild":
                    read_peak.append(memory.peak)

            done = import_export(settings, "bench-import", archive, on_phase=phase_started)
        total = time.perf_counter() - started
        files = sum(done.files.values())
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
            "(the process and its children, summed, sampled every 10 ms)",
        )
        return 0 if rebuilt is not None and rebuilt.success and done.published else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
