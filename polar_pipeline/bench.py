"""``make bench``: the figures we hold ourselves to, measured on this machine and printed.

1. Simulator start-up and the AccessLink request count of a 365-day fetch of one user.
2. The whole graph for one user × 365 days in ONE Dagster run (history collected first, the way a real
   deployment collects it: syncing before AccessLink's 28-day window moves on), with ms per partition
   per asset.
3. The daily refresh of every user (one day × all users) in one run.
4. A separate reader process querying the serving snapshot while a materialization and a publish run:
   reads and failed reads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from polar_pipeline.accesslink import AccessLinkClient
from polar_pipeline.devserver import serve_asgi
from polar_pipeline.settings import Settings, simulator_environment
from polar_pipeline.simulator import SimulatorConfig, create_app
from polar_pipeline.warehouse.raw_store import store_raw_batches
from polar_pipeline.warehouse.schema import ensure_raw_schema
from polar_pipeline.warehouse.writer import connect_writer

HISTORY_DAYS = 365
USERS = 3
WINDOW_STEP_DAYS = 27


def _print(label: str, value: str) -> None:
    print(f"  {label:<58} {value}", flush=True)


def _collect_history(settings: Settings, sim_url: str, tokens: dict[str, str], today: date) -> int:
    """Walk the simulated clock over the last year, storing each 28-day window (no Dagster involved)."""
    from polar_pipeline.ingest.streams import RAW_STREAMS, SOURCE, to_raw_batch

    changed = 0
    step_today = today - timedelta(days=HISTORY_DAYS)
    con = connect_writer(settings.warehouse_path)
    try:
        ensure_raw_schema(con)
        while True:
            httpx.post(f"{sim_url}/sim/clock", json={"today": step_today.isoformat()}, timeout=10)
            with AccessLinkClient(sim_url, token_url="", client_id="", client_secret="") as client:
                for spec in RAW_STREAMS:
                    batches = {
                        user_id: to_raw_batch(
                            spec.stream,
                            spec.fetch(client, token, step_today - timedelta(days=27), step_today),
                        )
                        for user_id, token in tokens.items()
                    }
                    changed += store_raw_batches(
                        con, spec.stream, batches, source=SOURCE, fetched_at=datetime.now(UTC)
                    ).changed
            if step_today >= today:
                return changed
            step_today = min(today, step_today + timedelta(days=WINDOW_STEP_DAYS))
    finally:
        con.close()


def _asset_count(job_name: str, settings: Settings) -> int:
    from polar_pipeline.definitions import build_definitions

    job = build_definitions(settings).resolve_job_def(job_name)
    return len(list(job.asset_layer.executable_asset_keys))


def main() -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    from polar_pipeline.operations import add_user, publish, sync
    from polar_pipeline.orchestration.home import dagster_instance

    print("polar-flow benchmark", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="polar-bench-"))
    today = date.today()
    started = time.perf_counter()
    app = create_app(SimulatorConfig(seed=2024, users=USERS, today=today - timedelta(days=HISTORY_DAYS + 30)))
    _print("simulator start-up (create_app)", f"{(time.perf_counter() - started) * 1000:.1f} ms")
    try:
        with serve_asgi(app) as sim_url:
            os.environ.update(simulator_environment(sim_url, workdir / "home"))
            # The day axis starts at the first day the clock walk fetches.
            first_day = today - timedelta(days=HISTORY_DAYS + WINDOW_STEP_DAYS)
            os.environ["POLAR_HISTORY_START"] = first_day.isoformat()
            settings = Settings()
            instance = dagster_instance(settings)
            sim_users = httpx.get(f"{sim_url}/sim/users", timeout=10).json()
            tokens: dict[str, str] = {}
            for sim_user in sim_users:
                user_id = str(sim_user["x_user_id"])
                add_user(settings, user_id, sim_user["access_token"], instance=instance)
                tokens[user_id] = sim_user["access_token"]

            httpx.post(f"{sim_url}/sim/clock", json={"today": today.isoformat()}, timeout=10)
            first_user, first_token = next(iter(tokens.items()))
            with AccessLinkClient(sim_url, token_url="", client_id="", client_secret="") as client:
                counts = {
                    "sleep": client.fetch_sleep(first_token, today - timedelta(days=364), today).requests,
                    "recharge": client.fetch_nightly_recharge(
                        first_token, today - timedelta(days=364), today
                    ).requests,
                    "activity": client.fetch_activity(
                        first_token, today - timedelta(days=364), today
                    ).requests,
                    "exercises": client.fetch_exercises(
                        first_token, today - timedelta(days=364), today
                    ).requests,
                }
            _print("AccessLink requests, 365-day fetch of one user", f"{sum(counts.values())} {counts}")

            t0 = time.perf_counter()
            stored = _collect_history(settings, sim_url, tokens, today)
            _print(
                f"history collected ({USERS} users x {HISTORY_DAYS} d, clock walk)",
                f"{stored} raw rows in {time.perf_counter() - t0:.1f} s",
            )

            job_name = "pipeline_job"
            assets = _asset_count(job_name, settings)
            t0 = time.perf_counter()
            outcome = sync(
                settings, [first_user], days=HISTORY_DAYS, until=today, job_name=job_name, instance=instance
            )
            full = time.perf_counter() - t0
            _print(
                f"whole graph, 1 user x {HISTORY_DAYS} d ({job_name}, {assets} partitioned assets)",
                f"{full:.1f} s in 1 run, {'ok' if outcome.success else 'FAILED'}",
            )
            _print("  ms per partition per asset", f"{full * 1000 / (HISTORY_DAYS * assets):.1f} ms")

            t0 = time.perf_counter()
            daily = sync(settings, days=1, until=today, job_name=job_name, instance=instance)
            _print(
                f"daily refresh, {USERS} users x 1 day",
                f"{time.perf_counter() - t0:.1f} s in 1 run, {'ok' if daily.success else 'FAILED'}",
            )

            t0 = time.perf_counter()
            publish(settings, instance=instance)
            _print(
                "publish (snapshot copy + swap)",
                f"{time.perf_counter() - t0:.1f} s, "
                f"warehouse {settings.warehouse_path.stat().st_size / 1e6:.1f} MB",
            )

            probe = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "polar_pipeline.warehouse.probe",
                    str(settings.snapshots_dir),
                    "600",
                    "SELECT count(*) FROM marts.daily_metrics",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert probe.stderr is not None and probe.stderr.readline().strip() == "ready"
            t0 = time.perf_counter()
            sync(settings, days=28, until=today, job_name=job_name, instance=instance)
            publish(settings, instance=instance)
            elapsed = time.perf_counter() - t0
            probe.terminate()
            out, _ = probe.communicate(timeout=30)
            report = json.loads(out.strip().splitlines()[-1])
            _print(
                "reader during materialize + publish",
                f"{report['reads']} reads, {report['failed']} failed over {elapsed:.1f} s",
            )
            return 0 if outcome.success and daily.success and report["failed"] == 0 else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
