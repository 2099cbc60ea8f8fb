"""One settings object for every process (CLI, Dagster code location, API), read from the environment.

Every environment variable the code reads is a field here; nothing reads the environment at import time.
Pointing the three URLs at the loopback simulator is the only change needed to run against it.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Environment variables prefixed ``POLAR_`` (``POLAR_HOME``, ``POLAR_ACCESSLINK_URL`` …)."""

    model_config = SettingsConfigDict(env_prefix="POLAR_", extra="ignore")

    home: Path = Field(
        default=Path("~/.polar-flow"), description="warehouse, snapshots, Dagster home, control store"
    )
    accesslink_url: str = "https://www.polaraccesslink.com"
    auth_url: str = "https://flow.polar.com/oauth2/authorization"
    token_url: str = "https://polarremote.com/v2/oauth2/token"
    client_id: str = ""
    client_secret: str = ""
    history_start: date | None = Field(
        default=None,
        validation_alias=AliasChoices("POLAR_HISTORY_START", "POLAR_PARTITION_START_DATE"),
        description="first day of the day axis (YYYY-MM-DD); unset: fixed at first setup (history.py)",
    )
    today: date | None = Field(
        default=None,
        description="a frozen calendar day (YYYY-MM-DD) for tests and demos: every 'today' is this day",
    )
    encryption_key: str = Field(
        default="", description="Fernet key for Polar tokens; else a 0600 key file is used"
    )
    sql_dir: Path | None = Field(
        default=None, description="another folder of SQL models than the repository's dbt_like_sql/"
    )
    dagster_home_override: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("DAGSTER_HOME"),
        description="Dagster's own DAGSTER_HOME; default $POLAR_HOME/dagster",
    )
    dagster_event_batch_size: int = Field(
        default=5000,
        ge=0,
        validation_alias=AliasChoices("DAGSTER_EVENT_BATCH_SIZE"),
        description="events Dagster writes per batch (one transaction per shard); 0 writes one by one",
    )
    debug_pause_at: str = Field(
        default="",
        description="crash tests: comma-separated pause points (commit:*, replace:*, model:*, publish:*)",
    )
    debug_pause_seconds: float = Field(default=60.0, ge=0, description="crash tests: length of each pause")
    api_cache_mb: int = Field(
        default=64,
        ge=0,
        description="memory per API worker for answers kept per snapshot generation (0: no cache)",
    )
    api_worker_header: bool = Field(
        default=False,
        description="tests: every API response names the worker process that answered (X-Worker-Pid)",
    )
    demo_exit_after_materialize: bool = Field(
        default=False,
        validation_alias=AliasChoices("DEMO_EXIT_AFTER_MATERIALIZE"),
        description="`make demo` stops after the first snapshot is published",
    )

    @cached_property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def warehouse_path(self) -> Path:
        return self.home_dir / "warehouse.duckdb"

    @property
    def snapshots_dir(self) -> Path:
        return self.home_dir / "serving"

    @property
    def samples_dir(self) -> Path:
        """The sample store: immutable Parquet segments of per-sample series (warehouse/samples.py)."""
        return self.home_dir / "samples"

    @property
    def dagster_home(self) -> Path:
        """DAGSTER_HOME when set, else a folder under POLAR_HOME (so users and run history persist)."""
        return (self.dagster_home_override or self.home_dir / "dagster").expanduser().resolve()

    @property
    def control_store_path(self) -> Path:
        return self.home_dir / "control.sqlite3"

    @property
    def rate_limit_path(self) -> Path:
        """Per-key request counters of the API workers: apart from the control store, whose every write
        would otherwise empty the API's cache of verified keys."""
        return self.home_dir / "ratelimit.sqlite3"

    @property
    def key_file(self) -> Path:
        return self.home_dir / "secret.key"


def simulator_environment(sim_url: str, home: Path, dagster_home: Path | None = None) -> dict[str, str]:
    """The environment that points every process at a loopback simulator, with its home folders.

    The credentials are the simulator's defaults (``SimulatorConfig``); this is the only change needed.
    """
    from polar_pipeline.simulator import SimulatorConfig

    defaults = SimulatorConfig()
    return {
        "POLAR_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home or home / "dagster"),
        "POLAR_ACCESSLINK_URL": sim_url,
        "POLAR_AUTH_URL": f"{sim_url}/oauth2/authorization",
        "POLAR_TOKEN_URL": f"{sim_url}/v2/oauth2/token",
        "POLAR_CLIENT_ID": defaults.client_id,
        "POLAR_CLIENT_SECRET": defaults.client_secret,
    }


def get_settings() -> Settings:
    """Fresh settings each call, so tests and subprocesses that change the environment see it."""
    return Settings()
