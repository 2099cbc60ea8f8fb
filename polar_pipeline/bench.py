"""``make bench``: the figures we hold ourselves to, measured on this machine and printed.

1. Simulator start-up and the AccessLink request count of a 365-day fetch of one user.
2. Dagster bookkeeping per asset-partition: a no-op graph of our shape (11 user × day assets, windowed
   mappings) over one user × 365 days in one run, so the figure is Dagster's cost alone.
3. The whole graph for one user × 365 days in ONE Dagster run (history collected first, the way a real
   deployment collects it: syncing before AccessLink's 28-day window moves on), and the peak RSS.
4. The daily refresh of every user (one day × all users) in one run; then the daily schedule's run (every
   user's last 3 days in one run) and its publish for 3, 50 and 200 users.
5. Publish time and serving-file size against all bytes under POLAR_HOME: the bench warehouse, and 5 users ×
   5 years of simulator history with exercise samples (first publish, then a steady-state one).
6. A separate reader process querying the serving snapshot while a materialization and a publish run:
   reads and failed reads.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from polar_pipeline.accesslink import AccessLinkClient
from polar_pipeline.devserver import serve_asgi
from polar_pipeline.settings import Settings, simulator_environment
from polar_pipeline.simulator import FaultConfig, SimulatorConfig, create_app
from polar_pipeline.warehouse.raw_store import store_raw_batches
from polar_pipeline.warehouse.schema import ensure_raw_schema
from polar_pipeline.warehouse.writer import connect_writer

HISTORY_DAYS = 365
USERS = 3
REFRESH_USERS = (3, 50, 200)
WINDOW_STEP_DAYS = 27


def _print(label: str, value: str) -> None:
    print(f"  {label:<58} {value}", flush=True)


def _collect_history(
    settings: Settings, sim_url: str, tokens: dict[str, str], today: date, *, days: int = HISTORY_DAYS
) -> int:
    """Walk the simulated clock over the last ``days``, storing each 28-day window (no Dagster involved)."""
    from polar_pipeline.ingest.streams import ALL_RAW_STREAMS, SOURCE, to_raw_batch

    changed = 0
    step_today = today - timedelta(days=days)
    con = connect_writer(settings.warehouse_path)
    try:
        ensure_raw_schema(con)
        while True:
            httpx.post(f"{sim_url}/sim/clock", json={"today": step_today.isoformat()}, timeout=10)
            with AccessLinkClient(sim_url, token_url="", client_id="", client_secret="") as client:
                for spec in ALL_RAW_STREAMS:
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


def _bookkeeping_ms(settings: Settings, instance: Any, today: date) -> float:
    """ms per asset-partition of a no-op graph shaped like ours: 4 roots, a daily table, 5 windowed tables
    (60-day trailing mappings) and one more, over one user × 365 days in one run."""
    import dagster as dg

    from polar_pipeline.orchestration.partitions import range_tags, user_day_partitions
    from polar_pipeline.orchestration.window_mapping import trailing_window_mapping

    partitions = user_day_partitions(settings)

    def noop(name: str, deps: list[dg.AssetDep]) -> dg.AssetsDefinition:
        @dg.asset(
            name=name, partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run(), deps=deps
        )
        def _noop() -> None:
            return None

        return _noop

    roots = [noop(f"noop_raw_{i}", []) for i in range(4)]
    daily = noop("noop_daily", [dg.AssetDep(root.key) for root in roots])
    windowed = [
        noop(f"noop_window_{i}", [dg.AssetDep(daily.key, partition_mapping=trailing_window_mapping(60))])
        for i in range(5)
    ]
    last = noop("noop_last", [dg.AssetDep(windowed[0].key)])
    assets = [*roots, daily, *windowed, last]
    instance.add_dynamic_partitions("users", ["noop-user"])
    job = dg.Definitions(assets=assets, jobs=[dg.define_asset_job("noop_job", assets)]).resolve_job_def(
        "noop_job"
    )
    started = time.perf_counter()
    result = job.execute_in_process(
        instance=instance,
        tags=range_tags("noop-user", today - timedelta(days=HISTORY_DAYS - 1), today),
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    elapsed = time.perf_counter() - started
    assert result.success
    return elapsed * 1000 / (HISTORY_DAYS * len(assets))


def _home_bytes(settings: Settings) -> tuple[int, int]:
    """(bytes of the current serving file, bytes of everything under POLAR_HOME)."""
    from polar_pipeline.warehouse.snapshot import read_pointer

    info = read_pointer(settings.snapshots_dir)
    total = sum(path.stat().st_size for path in settings.home_dir.rglob("*") if path.is_file())
    return (info.path.stat().st_size if info else 0), total


def _publish_figures(settings: Settings, label: str) -> None:
    """Time a publish straight through the library (the same code the asset runs) and size it."""
    from polar_pipeline.warehouse.snapshot import publish_snapshot

    con = connect_writer(settings.warehouse_path)
    try:
        started = time.perf_counter()
        publish_snapshot(con, settings.snapshots_dir, samples_dir=settings.samples_dir)
        elapsed = time.perf_counter() - started
    finally:
        con.close()
    serving, total = _home_bytes(settings)
    _print(
        label,
        f"{elapsed:.2f} s, serving {serving / 1e6:.1f} MB = {100 * serving / total:.1f} % of "
        f"{total / 1e6:.0f} MB under POLAR_HOME",
    )


def _daily_refresh(workdir: Path, today: date, users: int) -> bool:
    """``users`` simulated users registered, then the daily schedule's own run request (every user's last
    ``refresh_days`` days in one run of the whole graph) executed, then a publish."""
    import dagster as dg

    from polar_pipeline.definitions import build_definitions
    from polar_pipeline.defs.pipeline.definitions import PIPELINE_JOB
    from polar_pipeline.defs.refresh.requests import daily_refresh_request
    from polar_pipeline.operations import QUIET_RUN_CONFIG, add_user, publish
    from polar_pipeline.orchestration.home import dagster_instance
    from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME

    app = create_app(SimulatorConfig(seed=100, users=users, today=today))
    with serve_asgi(app) as sim_url:
        os.environ.update(simulator_environment(sim_url, workdir / f"home-refresh-{users}"))
        os.environ["POLAR_HISTORY_START"] = (today - timedelta(days=30)).isoformat()
        os.environ["POLAR_TODAY"] = today.isoformat()  # the refresh's days are the simulator's last three
        settings = Settings()
        instance = dagster_instance(settings)
        for sim_user in httpx.get(f"{sim_url}/sim/users", timeout=30).json():
            add_user(settings, str(sim_user["x_user_id"]), sim_user["access_token"], instance=instance)
        request = daily_refresh_request(
            settings, instance.get_dynamic_partitions(USERS_PARTITIONS_NAME), datetime.now(UTC)
        )
        assert isinstance(request, dg.RunRequest)
        job = build_definitions(settings).resolve_job_def(PIPELINE_JOB)
        started = time.perf_counter()
        result = job.execute_in_process(
            run_config=QUIET_RUN_CONFIG, instance=instance, tags=dict(request.tags), raise_on_error=False
        )
        ran = time.perf_counter() - started
        published = publish(settings, instance=instance)
        total = time.perf_counter() - started
        _print(
            f"daily refresh, {users} users x {settings.refresh_days} days (schedule's run + publish)",
            f"{total:.1f} s ({ran:.1f} s in 1 run, publish {total - ran:.1f} s), "
            f"{'ok' if result.success and published else 'FAILED'}",
        )
        instance.dispose()
        return bool(result.success and published)


def _five_users_five_years(workdir: Path, today: date) -> None:
    """5 users × 5 years of history with exercise samples, marts built, then two publishes."""
    from polar_pipeline.sqlmodels import load_models, run_models

    years = 5 * 365
    # Years of history in minutes of wall time: AccessLink's 15-minute request budget would pace the walk.
    unlimited = FaultConfig(short_limit=1_000_000, long_limit=10_000_000)
    app = create_app(
        SimulatorConfig(seed=55, users=5, today=today, history_days=years + 60, faults=unlimited)
    )
    with serve_asgi(app) as sim_url:
        os.environ.update(simulator_environment(sim_url, workdir / "home-5y"))
        os.environ["POLAR_HISTORY_START"] = (today - timedelta(days=years + WINDOW_STEP_DAYS)).isoformat()
        settings = Settings()
        tokens = {str(u["x_user_id"]): u["access_token"] for u in httpx.get(f"{sim_url}/sim/users").json()}
        # Registered when the history starts: AccessLink serves exercises uploaded after registration only.
        httpx.post(f"{sim_url}/sim/clock", json={"today": (today - timedelta(days=years)).isoformat()})
        with AccessLinkClient(
            sim_url, token_url="", client_id="sim-client", client_secret="sim-secret"
        ) as client:
            for user_id, token in tokens.items():
                client.register_user(token, member_id=user_id)
        started = time.perf_counter()
        stored = _collect_history(settings, sim_url, tokens, today, days=years)
        con = connect_writer(settings.warehouse_path)
        graph = load_models()
        try:  # a year per slice, oldest first (a window reads the days before its slice)
            year_start = today - timedelta(days=years + 27)
            while year_start <= today:
                year_end = min(year_start + timedelta(days=364), today)
                run_models(con, graph, list(tokens), year_start, year_end)
                year_start = year_end + timedelta(days=1)
        finally:
            con.close()
        _print(
            "5 users x 5 years collected (with samples) and marts built",
            f"{stored} raw rows in {time.perf_counter() - started:.0f} s, "
            f"warehouse {settings.warehouse_path.stat().st_size / 1e6:.0f} MB",
        )
        _publish_figures(settings, "  first publish (fills the sample store)")
        _publish_figures(settings, "  publish, steady state")


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
                    "continuous_hr": client.fetch_continuous_hr(
                        first_token, today - timedelta(days=364), today
                    ).requests,
                    "cardio_load": client.fetch_cardio_load(
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

            _print(
                "Dagster bookkeeping, no-op graph of our shape, 1 user x 365 d",
                f"{_bookkeeping_ms(settings, instance, today):.2f} ms per asset-partition",
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
            _print(
                "  ms per partition per asset, all work included",
                f"{full * 1000 / (HISTORY_DAYS * assets):.1f} ms",
            )
            _print(
                "  peak RSS of the process so far",
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
            )

            t0 = time.perf_counter()
            daily = sync(settings, days=1, until=today, job_name=job_name, instance=instance)
            _print(
                f"daily refresh, {USERS} users x 1 day",
                f"{time.perf_counter() - t0:.1f} s in 1 run, {'ok' if daily.success else 'FAILED'}",
            )

            t0 = time.perf_counter()
            publish(settings, instance=instance)
            serving, total = _home_bytes(settings)
            _print(
                "publish job (first: fills the sample store)",
                f"{time.perf_counter() - t0:.1f} s, warehouse "
                f"{settings.warehouse_path.stat().st_size / 1e6:.1f} MB, "
                f"serving {serving / 1e6:.1f} MB of {total / 1e6:.0f} MB under POLAR_HOME",
            )
            _publish_figures(settings, "publish, steady state (library call)")

            probe = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "polar_pipeline.warehouse.probe",
                    str(settings.snapshots_dir),
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

            from polar_pipeline.bench_api import api_figures

            print(f"API, {USERS} users x {HISTORY_DAYS} d (wrk, a separate process)", flush=True)
            api_failed = api_figures(
                settings.home_dir, first_user, lambda: publish(settings, instance=instance)
            )
        instance.dispose()
        refreshed = all([_daily_refresh(workdir, today, users) for users in REFRESH_USERS])
        _five_users_five_years(workdir, today)
        healthy = outcome.success and daily.success and report["failed"] == 0 and api_failed == 0
        return 0 if healthy and refreshed else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
