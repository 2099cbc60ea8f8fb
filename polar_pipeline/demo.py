"""``make demo``: the whole product on the built-in simulator, from a fresh clone.

Starts the AccessLink simulator on loopback with 3 personas, registers them, walks the simulated clock
through ~5 months (AccessLink only serves 28 days, so history is collected the way a real deployment
collects it: by syncing before the window moves on), imports the two years before that for the first
person from a Polar account export, materializes, publishes, then serves the API, the dashboard and the
Dagster UI until Ctrl-C. With DEMO_EXIT_AFTER_MATERIALIZE=1 it stops after publishing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from polar_pipeline import clock
from polar_pipeline.settings import Settings, simulator_environment

if TYPE_CHECKING:
    import dagster as dg

DEMO_USERS = 3
WINDOW_DAYS = 28
# Step one day less than the window: a night ending late on a snapshot day is not served until 90 min
# after waking, so back-to-back 28-day steps could miss it for good (as on the real API).
CLOCK_STEP_DAYS = WINDOW_DAYS - 1
HISTORY_DAYS = 5 * CLOCK_STEP_DAYS  # the clock starts this far back; with the first window: 162 nights
SEED = 42


def _free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])


def _wait_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")  # noqa: SIM115 - the child owns it for its lifetime
    return subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a child and its whole process group (dagster dev's children ignore a plain SIGTERM)."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def demo_api_key(settings: Settings) -> str:
    """A fresh admin key for this demo run (each run starts from an empty POLAR_HOME, so none is reused)."""
    from polar_pipeline.api_keys import ApiKeyStore

    return ApiKeyStore(settings.control_store_path).create(None, admin=True, name="demo").secret


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _import_history(
    settings: Settings,
    instance: dg.DagsterInstance,
    sim_user: dict[str, object],
    sim_start: date,
    export_first: date,
    synced_first: date,
    root: Path,
) -> bool:
    """The first person's years before the synced months, from a Polar account export the simulator writes.

    The export is of the same simulated person (same seed, users and start as the simulator process) and
    ends the day before the first synced window, so each day comes from one source."""
    from polar_pipeline.export_import import import_export
    from polar_pipeline.simulator import SimulatorConfig
    from polar_pipeline.simulator.export import write_export

    started = time.monotonic()
    user_id = str(sim_user["x_user_id"])
    target = root / f"polar-user-data-export-{user_id}.zip"
    config = SimulatorConfig(seed=SEED, users=DEMO_USERS, today=sim_start)
    last = synced_first - timedelta(days=1)
    write_export(config, 0, target, first_day=export_first, last_day=last, samples=False)
    done = import_export(settings, user_id, target, publish_after=False, instance=instance)
    ok = done.rebuild is not None and done.rebuild.success
    added = sum(counts.changed for counts in done.stored.stored.values())
    print(
        f"[demo] imported a Polar account export for user {user_id}: {added} records, "
        f"{done.stored.first_day}..{done.stored.last_day}, rebuilt in {time.monotonic() - started:.0f} s "
        f"{'ok' if ok else 'FAILED'}",
        flush=True,
    )
    return ok


def run_demo() -> int:
    # Ctrl-C and SIGTERM stop everything the demo started, even when it was launched in the background
    # (where a shell starts it with SIGINT ignored).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    root = Path.cwd() / ".demo"
    configured = Settings()
    home = configured.home_dir if "home" in configured.model_fields_set else root / "home"
    shutil.rmtree(home, ignore_errors=True)
    root.mkdir(exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent

    sim_port = _free_port(8765)
    sim_url = f"http://127.0.0.1:{sim_port}"
    real_today = clock.today(configured)
    sim_start = real_today - timedelta(days=HISTORY_DAYS)
    first_day = sim_start - timedelta(days=WINDOW_DAYS - 1)  # the first day the clock walk fetches
    # The first person imports a Polar account export of the simulator's whole history before that (two
    # years), and the day axis starts at its first day, not years before it.
    from polar_pipeline.simulator import SimulatorConfig

    export_first = sim_start - timedelta(days=SimulatorConfig().history_days - 1)
    env = (
        os.environ.copy()
        | simulator_environment(sim_url, home)
        | {"POLAR_HISTORY_START": export_first.isoformat()}
    )
    os.environ.update(env)
    children: list[subprocess.Popen[bytes]] = []
    try:
        sim = _spawn(
            [str(bin_dir / "polar-flow"), "simulator", "--port", str(sim_port), "--seed", str(SEED),
             "--users", str(DEMO_USERS), "--today", sim_start.isoformat()],
            env, root / "simulator.log",
        )  # fmt: skip
        children.append(sim)
        _wait_http(f"{sim_url}/sim/clock", 30, sim)
        print(f"[demo] simulator on {sim_url}, clock at {sim_start}", flush=True)
        print(f"[demo] day axis starts {export_first}", flush=True)

        from polar_pipeline.operations import add_user, publish, sync
        from polar_pipeline.orchestration.home import dagster_instance

        settings = Settings()
        instance = dagster_instance(settings)
        sim_users = httpx.get(f"{sim_url}/sim/users", timeout=10).json()
        for sim_user in sim_users:
            add_user(settings, str(sim_user["x_user_id"]), sim_user["access_token"], instance=instance)
            print(f"[demo] user {sim_user['x_user_id']} ({sim_user['persona']}) registered", flush=True)

        runs = 0
        sim_today = sim_start
        while True:
            outcome = sync(
                settings, days=WINDOW_DAYS, until=sim_today, job_name="pipeline_job", instance=instance
            )
            runs += 1
            print(
                f"[demo] run {runs}: {outcome.first_day}..{outcome.last_day} x {len(outcome.users)} users "
                f"{'ok' if outcome.success else 'FAILED'}",
                flush=True,
            )
            if not outcome.success:
                return 1
            if sim_today >= real_today:
                break
            step = min(CLOCK_STEP_DAYS, (real_today - sim_today).days)
            sim_today = date.fromisoformat(
                httpx.post(f"{sim_url}/sim/clock", json={"advance_days": step}, timeout=10).json()["today"]
            )
        if not _import_history(settings, instance, sim_users[0], sim_start, export_first, first_day, root):
            return 1
        if not publish(settings, instance=instance):
            print("[demo] publish FAILED", flush=True)
            return 1
        runs += 1
        from polar_pipeline.warehouse.snapshot import read_pointer

        info = read_pointer(settings.snapshots_dir)
        assert info is not None
        elapsed = time.monotonic() - started
        print(f"[demo] materialized and published in {elapsed:.1f} s over {runs} runs", flush=True)
        print(f"[demo] serving snapshot: {info.path} (generation {info.generation})", flush=True)
        print(f"[demo] warehouse: {settings.warehouse_path} ({settings.warehouse_path.stat().st_size} bytes)")
        if settings.demo_exit_after_materialize:
            return 0

        api_port = _free_port(8000)
        ui_port = _free_port(3000)
        api = _spawn([str(bin_dir / "polar-flow"), "api", "--port", str(api_port)], env, root / "api.log")
        children.append(api)
        ui = _spawn([str(bin_dir / "polar-flow"), "dev", "--port", str(ui_port)], env, root / "dagster.log")
        children.append(ui)
        api_url = f"http://127.0.0.1:{api_port}"
        _wait_http(f"{api_url}/health", 60, api)
        _wait_http(f"http://127.0.0.1:{ui_port}/server_info", 180, ui)
        first_user = sim_users[0]["x_user_id"]
        api_key = demo_api_key(settings)
        print(
            f"""
[demo] everything is up (Ctrl-C stops it all):
  API          {api_url}/docs
  Dashboard    {api_url}/dashboard  (sign in with the key below)
  API key      (admin: reads every user; made for this run)
{api_key}
  Dagster UI   http://127.0.0.1:{ui_port}
  Simulator    {sim_url}/sim/users
  Snapshot     duckdb -readonly {info.path}

Try:
  curl -s {api_url}/health
  curl -s -H 'X-API-Key: {api_key}' '{api_url}/api/v1/users/{first_user}/sleep?days=30'
  curl -s '{sim_url}/sim/ground-truth/{first_user}'
""",
            flush=True,
        )
        while all(child.poll() is None for child in children):
            time.sleep(1)
        print("[demo] a child process exited; stopping", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\n[demo] stopping", flush=True)
        return 0
    finally:
        for child in reversed(children):
            _stop(child)
