"""The small control store both sides may write: users, their encrypted Polar tokens and time zones.

SQLite in WAL mode so the API can record things while Dagster reads them. Tokens are Fernet-encrypted
at rest with a key from ``POLAR_ENCRYPTION_KEY`` or a 0600 key file under ``POLAR_HOME``; neither the
key nor a token is ever logged or put in an exception message.

Each user's IANA time zone (docs/time-zones.md) has a source: ``records`` (a zone with the UTC offset of
the newest record, kept until a newer record says otherwise) or ``user`` (set by the person, which records
never overwrite). A store written before zones existed gains the columns when it is opened.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo, available_timezones

from cryptography.fernet import Fernet, InvalidToken

USER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,100}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    polar_user_id INTEGER,
    token_encrypted BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""
ZONE_COLUMNS: dict[str, str] = {
    "time_zone": "TEXT",  # IANA name; NULL until a record or the person gives one
    "time_zone_source": "TEXT",  # 'records' | 'user'
    "time_zone_seen_at": "TEXT",  # UTC instant of the record a 'records' zone was read from
}
"""Added to ``users`` by ``ControlStore`` when missing, so a store from before zones keeps working."""
ZONE_FROM_RECORDS, ZONE_FROM_USER = "records", "user"
_USER_COLUMNS = "user_id, polar_user_id, status, created_at, updated_at, time_zone, time_zone_source"


class InvalidUserId(ValueError):
    """A user id the partitions and URLs cannot carry (``|`` would corrupt Dagster's multi-partition keys)."""


class UnknownUser(KeyError):
    """No such user in the control store."""


class InvalidTimeZone(ValueError):
    """A name that is not an IANA time zone this machine's zoneinfo knows."""


def validate_time_zone(name: str) -> str:
    """Accept an IANA zone name (``Europe/Helsinki``, ``Etc/GMT-2``); ``localtime`` names no zone."""
    if name == "localtime" or name not in available_timezones():
        raise InvalidTimeZone(f"unknown time zone {name!r}: use an IANA name such as Europe/Helsinki")
    ZoneInfo(name)
    return name


def validate_user_id(user_id: str) -> str:
    """Accept 1–100 characters of ``[A-Za-z0-9_-]``; anything else (notably ``|``) is rejected."""
    if not USER_ID_PATTERN.fullmatch(user_id):
        raise InvalidUserId(
            f"invalid user id {user_id!r}: use 1-100 characters of letters, digits, '_' or '-' "
            "('|' is reserved by the user x day partition keys)"
        )
    return user_id


@dataclass(frozen=True)
class StoredUser:
    user_id: str
    polar_user_id: int | None
    status: str
    created_at: str
    updated_at: str
    time_zone: str | None = None
    time_zone_source: str | None = None


@dataclass(frozen=True)
class UserTimeZone:
    """A user's zone and who gave it (``records`` or ``user``): the row the warehouse keeps per user."""

    user_id: str
    time_zone: str
    source: str


def load_or_create_key(key_file: Path, env_key: str = "") -> bytes:
    """The Fernet key: from the environment if given, else a key file created once with mode 0600."""
    if env_key:
        return env_key.encode()
    if key_file.exists():
        return key_file.read_bytes().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def delete_matching_rows(path: Path, matches: Mapping[str, Collection[str]]) -> dict[str, int]:
    """Delete, in one transaction, every row of every table in the SQLite file ``path`` whose column named
    like a key of ``matches`` holds one of that key's values; returns the rows deleted per table.

    The tables come from the file's own schema, so a table added later (with a ``user_id`` or ``key_id``
    column) is covered without naming it here. ``secure_delete`` overwrites the deleted rows' bytes, and
    the WAL is checkpointed afterwards so that no older copy of the pages lingers in it (as far as no
    reader holds it open at that moment). A missing file has nothing to delete.
    """
    if not path.exists():
        return {}
    deleted: dict[str, int] = {}
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        con.execute("PRAGMA secure_delete = ON")
        con.execute("BEGIN IMMEDIATE")
        try:
            tables = [
                str(name)
                for (name,) in con.execute(
                    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                    "ORDER BY name"
                )
            ]
            for table in tables:
                columns = {str(row[1]) for row in con.execute(f'PRAGMA table_info("{table}")')}
                wanted = [
                    (column, list(values))
                    for column, values in matches.items()
                    if column in columns and values
                ]
                if not wanted:
                    continue
                condition = " OR ".join(
                    f'"{column}" IN ({", ".join("?" * len(values))})' for column, values in wanted
                )
                params = [value for _, values in wanted for value in values]
                deleted[table] = con.execute(f'DELETE FROM "{table}" WHERE {condition}', params).rowcount
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return deleted


class ControlTables:
    """Some tables of the control store's SQLite file (WAL), created when missing; one transaction per call.

    Users, API keys (``api_keys``) and sync requests (``sync_requests``) each keep their tables in the same
    file through a subclass, so the CLI, the API processes and the Dagster sensor share one small store.
    """

    SCHEMA: ClassVar[str] = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(self.SCHEMA)
            self._upgrade(con)

    def _upgrade(self, con: sqlite3.Connection) -> None:
        """Bring tables written by an older version up to date (nothing to do by default)."""

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            with con:
                yield con
        finally:
            con.close()


class ControlStore(ControlTables):
    """Users and encrypted tokens."""

    SCHEMA = SCHEMA

    def __init__(self, path: Path, key: bytes) -> None:
        self._fernet = Fernet(key)
        super().__init__(path)

    def _upgrade(self, con: sqlite3.Connection) -> None:
        self._add_missing_columns(con)

    @staticmethod
    def _add_missing_columns(con: sqlite3.Connection) -> None:
        """Bring an older ``users`` table up to date; under the write lock, so two openers cannot race."""
        con.execute("BEGIN IMMEDIATE")
        present = {str(row[1]) for row in con.execute("PRAGMA table_info(users)")}
        for name, declaration in ZONE_COLUMNS.items():
            if name not in present:
                con.execute(f"ALTER TABLE users ADD COLUMN {name} {declaration}")
        con.commit()

    def upsert_user(self, user_id: str, token: str, polar_user_id: int | None = None) -> StoredUser:
        validate_user_id(user_id)
        now = datetime.now(UTC).isoformat()
        encrypted = self._fernet.encrypt(token.encode())
        with self._connect() as con:
            con.execute(
                """
                INSERT INTO users (user_id, polar_user_id, token_encrypted, status, created_at, updated_at)
                VALUES (?, ?, ?, 'active', ?, ?)
                ON CONFLICT (user_id) DO UPDATE SET
                    polar_user_id = COALESCE(excluded.polar_user_id, users.polar_user_id),
                    token_encrypted = excluded.token_encrypted, status = 'active',
                    updated_at = excluded.updated_at
                """,
                (user_id, polar_user_id, encrypted, now, now),
            )
        return self.get_user(user_id)

    def get_user(self, user_id: str) -> StoredUser:
        with self._connect() as con:
            row = con.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = ?", (user_id,)).fetchone()
        if row is None:
            raise UnknownUser(user_id)
        return StoredUser(*row)

    def list_users(self) -> list[StoredUser]:
        with self._connect() as con:
            rows = con.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at").fetchall()
        return [StoredUser(*row) for row in rows]

    def token_for(self, user_id: str) -> str:
        with self._connect() as con:
            row = con.execute("SELECT token_encrypted FROM users WHERE user_id = ?", (user_id,)).fetchone()
        if row is None:
            raise UnknownUser(user_id)
        try:
            return self._fernet.decrypt(row[0]).decode()
        except InvalidToken:
            raise RuntimeError(
                f"the stored token of user {user_id} cannot be decrypted with the current key"
            ) from None

    def set_status(self, user_id: str, status: str) -> None:
        with self._connect() as con:
            con.execute(
                "UPDATE users SET status = ?, updated_at = ? WHERE user_id = ?",
                (status, datetime.now(UTC).isoformat(), user_id),
            )

    def set_time_zone(self, user_id: str, zone: str) -> StoredUser:
        """The person's own zone: validated, and from now on never replaced by what records say."""
        validate_time_zone(zone)
        with self._connect() as con:
            updated = con.execute(
                "UPDATE users SET time_zone = ?, time_zone_source = ?, time_zone_seen_at = NULL, "
                "updated_at = ? WHERE user_id = ?",
                (zone, ZONE_FROM_USER, datetime.now(UTC).isoformat(), user_id),
            ).rowcount
        if not updated:
            raise UnknownUser(user_id)
        return self.get_user(user_id)

    def record_zone_from_records(self, user_id: str, zone: str, seen_at: datetime) -> bool:
        """Take ``zone``, read from a record at ``seen_at``, unless the person set one or a newer record did.

        Returns whether the row changed. Backfilling old data therefore never moves a user's zone back.
        """
        seen = seen_at.astimezone(UTC).isoformat(timespec="microseconds")
        with self._connect() as con:
            updated = con.execute(
                "UPDATE users SET time_zone = ?, time_zone_source = ?, time_zone_seen_at = ?, updated_at = ? "
                "WHERE user_id = ? AND coalesce(time_zone_source, ?) = ? "
                "AND (time_zone_seen_at IS NULL OR time_zone_seen_at < ?)",
                (
                    zone,
                    ZONE_FROM_RECORDS,
                    seen,
                    datetime.now(UTC).isoformat(),
                    user_id,
                    ZONE_FROM_RECORDS,
                    ZONE_FROM_RECORDS,
                    seen,
                ),
            ).rowcount
        return bool(updated)

    def time_zones(self) -> list[UserTimeZone]:
        """Every user with a zone, by user id."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT user_id, time_zone, time_zone_source FROM users WHERE time_zone IS NOT NULL "
                "ORDER BY user_id"
            ).fetchall()
        return [UserTimeZone(*row) for row in rows]
