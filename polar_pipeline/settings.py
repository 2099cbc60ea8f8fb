"""One settings object for every process (CLI, Dagster code location, API), read from the environment.

Every environment variable the code reads is a field here; nothing reads the environment at import time.
Pointing the three URLs at the loopback simulator is the only change needed to run against it.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DUCKDB_MEMORY_SIZE = r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
"""A size DuckDB's memory_limit accepts: 1GB, 320MB, 1.5GiB."""


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
    dagster_pg_host: str = Field(
        default="",
        validation_alias=AliasChoices("DAGSTER_PG_HOST"),
        description="Dagster's runs, schedules and event log in this PostgreSQL server; unset: SQLite files",
    )
    dagster_pg_port: int = Field(default=5432, validation_alias=AliasChoices("DAGSTER_PG_PORT"))
    dagster_pg_db: str = Field(default="dagster", validation_alias=AliasChoices("DAGSTER_PG_DB"))
    dagster_pg_user: str = Field(default="dagster", validation_alias=AliasChoices("DAGSTER_PG_USER"))
    dagster_pg_password: str = Field(
        default="",
        validation_alias=AliasChoices("DAGSTER_PG_PASSWORD"),
        description="required with DAGSTER_PG_HOST; Dagster reads it from the environment, dagster.yaml "
        "never holds it",
    )
    debug_pause_at: str = Field(
        default="",
        description="crash tests: comma-separated pause points (commit:*, replace:*, model:*, publish:*)",
    )
    debug_pause_seconds: float = Field(default=60.0, ge=0, description="crash tests: length of each pause")
    warehouse_memory_limit: str = Field(
        default="1GB",
        pattern=DUCKDB_MEMORY_SIZE,
        description="DuckDB memory_limit of every warehouse writer (runs, imports): past it DuckDB spills to "
        "disk instead of growing, so a years-long rebuild stays within the machine's share",
    )
    warehouse_threads: int = Field(
        default=0,
        ge=0,
        description="DuckDB threads of every warehouse writer; 0: one per core (DuckDB's default)",
    )
    import_memory_limit: str = Field(
        default="200MB",
        pattern=DUCKDB_MEMORY_SIZE,
        description="DuckDB memory_limit of an account-export import, its reading, rebuild and publish "
        "(instead of warehouse_memory_limit): years of one user's days fit, rebuilt in half-year slices",
    )
    import_threads: int = Field(
        default=1,
        ge=0,
        description="DuckDB threads of an account-export import: its queries are small slices, one thread "
        "is as fast on two cores and needs less memory; 0: one per core",
    )
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
    refresh_time: str = Field(
        default="06:00",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="when the daily refresh runs, HH:MM in refresh_timezone",
    )
    refresh_timezone: str = Field(default="UTC", description="the IANA zone of refresh_time")
    refresh_days: int = Field(
        default=3, ge=1, le=28, description="how many recent days the daily refresh and the retries rebuild"
    )
    sync_retry_limit: int = Field(
        default=3, ge=0, le=10, description="retries of a user's failed sync before it is shown as failed"
    )
    sync_retry_backoff_minutes: float = Field(
        default=5.0, gt=0, description="wait before the first retry; doubled before each next one"
    )

    @field_validator("refresh_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (ValueError, KeyError) as error:
            raise ValueError(f"not an IANA time zone this machine knows: {value!r}") from error
        return value

    def for_import(self) -> Settings:
        """These settings with the DuckDB limits of an account-export import (``import_*``): its reading,
        rebuild and publish."""
        return self.model_copy(
            update={
                "warehouse_memory_limit": self.import_memory_limit,
                "warehouse_threads": self.import_threads,
            }
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

    # Connecting Polar accounts by OAuth (polar_pipeline/oauth.py, docs/connect.md).
    connect_redirect_url: str = Field(
        default="",
        description="`polar-flow connect`: the loopback redirect URL registered with the client "
        "(http://127.0.0.1:PORT/PATH); unset: http://127.0.0.1:<--port or any free port>/callback",
    )
    oauth_redirect_url: str = Field(
        default="",
        description="the API's /oauth/callback URL as registered with the client (its origin is allowed)",
    )
    oauth_allowed_origins: str = Field(
        default="",
        description="comma-separated origins (scheme://host[:port]) the API may send a browser to",
    )
    oauth_self_service: bool = Field(
        default=False,
        description="the API's /oauth/start without a key for a user id not connected yet (sign-up)",
    )

    # Data health (polar_pipeline/health.py, docs/operations.md).
    freshness_warn_hours: float = Field(
        default=36.0, gt=0, description="hours without new data after which a user's freshness is 'warn'"
    )

    # Alerts and the weekly digest (polar_pipeline/alerts, docs/alerts.md).
    alert_recent_days: int = Field(
        default=2,
        ge=1,
        le=28,
        description="an alert is sent only for an episode still on in the user's last N local days "
        "(today included), so a backfill of history never alerts about the past",
    )
    alert_retry_limit: int = Field(
        default=4, ge=0, le=10, description="retries of a failed alert delivery before it is shown as failed"
    )
    alert_retry_backoff_seconds: float = Field(
        default=60.0, gt=0, description="wait before an alert delivery's first retry; doubled each time"
    )
    digest_weekday: str = Field(
        default="mon",
        pattern=r"^(mon|tue|wed|thu|fri|sat|sun)$",
        description="the weekday of the weekly digest in each user's time zone (a user may choose another)",
    )
    digest_time: str = Field(
        default="08:00",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="the local time (HH:MM) of the weekly digest in each user's time zone",
    )


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
