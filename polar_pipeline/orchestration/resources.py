"""Dagster resources: the warehouse writer, the AccessLink client and the control store.

Resources are configured from the one settings object so the CLI, ``dagster dev`` and tests agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from polar_pipeline.accesslink import AccessLinkClient
from polar_pipeline.control_store import ControlStore, load_or_create_key
from polar_pipeline.settings import Settings, get_settings
from polar_pipeline.warehouse.pause import arm_pause_points
from polar_pipeline.warehouse.schema import raw_writer

DUCKDB_POOL = "duckdb"


class WarehouseResource(DuckDBResource):
    """DuckDBResource that waits out a held lock, always closes, and ensures the raw schema exists."""

    snapshots_dir: str
    samples_dir: str
    memory_limit: str = ""
    """DuckDB's memory_limit (``Settings.warehouse_memory_limit``); empty: DuckDB's default."""
    threads: int = 0
    """DuckDB's threads (``Settings.warehouse_threads``); 0: DuckDB's default, one per core."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        settings = get_settings()
        arm_pause_points(settings.debug_pause_at.split(","), settings.debug_pause_seconds)
        with raw_writer(
            Path(self.database), memory_limit=self.memory_limit or None, threads=self.threads
        ) as con:
            yield con


class AccessLinkResource(dg.ConfigurableResource["AccessLinkResource"]):
    """Where AccessLink lives (the real cloud or the loopback simulator).

    The client secret is read from the environment when a client is opened, never stored in resource
    config, because Dagster shows resource config in its UI.
    """

    base_url: str
    token_url: str
    client_id: str
    timeout_seconds: float = 30.0

    @contextmanager
    def client(self) -> Iterator[AccessLinkClient]:
        with AccessLinkClient(
            self.base_url,
            token_url=self.token_url,
            client_id=self.client_id,
            client_secret=get_settings().client_secret,
            timeout=self.timeout_seconds,
        ) as client:
            yield client


class ControlStoreResource(dg.ConfigurableResource["ControlStoreResource"]):
    """Users and encrypted Polar tokens (SQLite, WAL); the encryption key comes from the environment."""

    path: str
    key_file: str

    def open(self) -> ControlStore:
        key = load_or_create_key(Path(self.key_file), get_settings().encryption_key)
        return ControlStore(Path(self.path), key)


def build_resources(settings: Settings | None = None) -> dict[str, object]:
    settings = settings or get_settings()
    return {
        "warehouse": WarehouseResource(
            database=str(settings.warehouse_path),
            snapshots_dir=str(settings.snapshots_dir),
            samples_dir=str(settings.samples_dir),
            memory_limit=settings.warehouse_memory_limit,
            threads=settings.warehouse_threads,
        ),
        "accesslink": AccessLinkResource(
            base_url=settings.accesslink_url,
            token_url=settings.token_url,
            client_id=settings.client_id,
        ),
        "control_store": ControlStoreResource(
            path=str(settings.control_store_path),
            key_file=str(settings.key_file),
        ),
    }
