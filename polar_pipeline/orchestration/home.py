"""A persistent DAGSTER_HOME under POLAR_HOME, so users (dynamic partitions) and run history survive,
the instance every CLI command and test opens on it, and the commands that start Dagster's webserver and
daemon on it (what the containers run).

Its ``dagster.yaml`` is rendered from the templates in ``dagster_yaml/``, one for everything and one per
storage: SQLite files written by our event log, or PostgreSQL when ``DAGSTER_PG_HOST`` is set.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from string import Template
from typing import NoReturn

import dagster as dg

from polar_pipeline.migrate import migrate_home
from polar_pipeline.orchestration.event_log import BATCH_SIZE_ENV
from polar_pipeline.settings import Settings

MARKER = "# Written by polar-flow"
TEMPLATES = Path(__file__).with_name("dagster_yaml")
CODE_LOCATION_MODULE = "polar_pipeline.definitions"
DAGSTER_PROCESSES = ("webserver", "daemon")


def _template(name: str) -> Template:
    return Template((TEMPLATES / f"{name}.yaml.template").read_text())


def _yaml_string(value: str | Path) -> str:
    """A double-quoted YAML scalar (a JSON string is one), whatever the value holds."""
    return json.dumps(str(value))


def render_dagster_yaml(settings: Settings, home: Path) -> str:
    """The dagster.yaml for DAGSTER_HOME ``home``: the SQLite storage, or PostgreSQL with DAGSTER_PG_HOST."""
    if settings.dagster_pg_host:
        if not settings.dagster_pg_password:
            raise ValueError("DAGSTER_PG_HOST is set but DAGSTER_PG_PASSWORD is not (see .env.example)")
        storage = _template("storage-postgres").substitute(
            host=_yaml_string(settings.dagster_pg_host),
            port=settings.dagster_pg_port,
            db_name=_yaml_string(settings.dagster_pg_db),
            username=_yaml_string(settings.dagster_pg_user),
        )
    else:
        storage = _template("storage-sqlite").substitute(
            event_log_dir=_yaml_string(home / "history" / "runs")
        )
    return _template("dagster").substitute(marker=MARKER, storage=storage.rstrip("\n"))


def prepare_dagster_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME (default ``$POLAR_HOME/dagster``) with our dagster.yaml and export it.

    An explicit DAGSTER_HOME (``Settings.dagster_home``) wins; a dagster.yaml without our marker is left
    alone. Dagster itself reads DAGSTER_HOME and DAGSTER_EVENT_BATCH_SIZE (the batch size of our event
    log, ``Settings.dagster_event_batch_size``) from the environment, hence the exports.
    """
    migrate_home(settings)  # an older POLAR_HOME gets the current layout before anything reads it
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = render_dagster_yaml(settings, home)
    if not config.exists() or (config.read_text().startswith(MARKER) and config.read_text() != wanted):
        # Whole or not at all: the webserver and daemon containers prepare the same home at the same moment.
        partial = config.with_name(f".dagster.yaml.{os.getpid()}.tmp")
        partial.write_text(wanted)
        os.replace(partial, config)
    os.environ["DAGSTER_HOME"] = str(home)
    # Dagster reads these from the environment of every process that creates or executes runs; the ones
    # this process starts (dagster dev's webserver, daemon and run workers) inherit them.
    os.environ[BATCH_SIZE_ENV] = str(settings.dagster_event_batch_size)
    return home


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The Dagster instance on our DAGSTER_HOME (prepared first)."""
    prepare_dagster_home(settings)
    return dg.DagsterInstance.get()


def dagster_process_command(process: str, host: str, port: int) -> list[str]:
    """The command line of Dagster's ``webserver`` (the UI, on ``host:port``) or ``daemon`` (schedules,
    sensors, the run queue) on our code location, from this interpreter's environment."""
    bin_dir = Path(sys.executable).parent  # the venv's, whether or not it is on PATH
    if process == "webserver":
        return [
            str(bin_dir / "dagster-webserver"),
            *("-m", CODE_LOCATION_MODULE, "-h", host, "-p", str(port)),
        ]
    if process == "daemon":
        return [str(bin_dir / "dagster-daemon"), "run", "-m", CODE_LOCATION_MODULE]
    raise ValueError(f"no Dagster process {process!r}: one of {', '.join(DAGSTER_PROCESSES)}")


def exec_dagster_process(settings: Settings, process: str, host: str, port: int) -> NoReturn:
    """Prepare DAGSTER_HOME and open its instance once, then become Dagster's ``process``: it gets our
    signals (a container's stop) and our environment (DAGSTER_HOME and the batch size just exported).

    The webserver and the daemon containers start together on one volume. Opening the instance creates (or
    migrates) Dagster's SQLite tables, and two processes doing it at once on a new home fail ("table
    alembic_version already exists"), so one process at a time does it, under a lock in DAGSTER_HOME.
    """
    import fcntl

    command = dagster_process_command(process, host, port)
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".polar-flow.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, before exec
        prepare_dagster_home(settings)
        with dg.DagsterInstance.from_config(str(home)):
            pass
    os.execv(command[0], command)
