"""API keys for the REST API: per-user or admin, stored as SHA-256 hashes in the control store.

A key is ``pfk_`` plus 43 URL-safe characters (256 random bits). Only its SHA-256 is stored: a slow password
hash (bcrypt, argon2) would cost tens of milliseconds on every request, and a key this long cannot be
guessed from its hash anyway. The full key is shown once, when it is created; afterwards a key is named by
its ``key_id`` (and its first characters, ``key_prefix``, for recognising it in a list).

The table lives in the control store's SQLite file (WAL), beside the users: the CLI writes it while API
worker processes read it.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from polar_pipeline.control_store import ControlTables, validate_user_id

KEY_PREFIX = "pfk_"
DISPLAY_PREFIX_LENGTH = 12
DEFAULT_RATE_LIMIT_PER_MINUTE = 600
MAX_KEY_LENGTH = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    user_id TEXT,
    is_admin INTEGER NOT NULL CHECK (is_admin IN (0, 1)),
    name TEXT NOT NULL DEFAULT '',
    rate_limit_per_minute INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    CHECK ((is_admin = 1 AND user_id IS NULL) OR (is_admin = 0 AND user_id IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_id);
"""
_COLUMNS = "key_id, key_prefix, user_id, is_admin, name, rate_limit_per_minute, created_at, revoked_at"


class UnknownKey(KeyError):
    """No key with that id."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret: whom it lets read, and how often."""

    key_id: str
    key_prefix: str
    user_id: str | None
    is_admin: bool
    name: str
    rate_limit_per_minute: int
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def may_read(self, user_id: str) -> bool:
        """An admin key reads every user; a user's key reads only that user."""
        return self.is_admin or self.user_id == user_id


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``secret`` is the only copy of the full key there will ever be."""

    key: ApiKey
    secret: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(secret: str) -> bool:
    """Cheap shape check before hashing: our prefix, and not absurdly long."""
    return secret.startswith(KEY_PREFIX) and len(secret) <= MAX_KEY_LENGTH


def find_active_key(con: sqlite3.Connection, key_hash: str) -> ApiKey | None:
    """The unrevoked key with this SHA-256, read on ``con`` (the store's, or the API's long-lived one).

    Looking a key up by its hash is the constant-time comparison: timing can only tell an attacker about
    the hash of what they sent, never about a stored secret.
    """
    row = con.execute(
        f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,)
    ).fetchone()
    return None if row is None else _row_to_key(row)


def _row_to_key(row: tuple[object, ...]) -> ApiKey:
    key_id, prefix, user_id, is_admin, name, limit, created_at, revoked_at = row
    return ApiKey(
        key_id=str(key_id),
        key_prefix=str(prefix),
        user_id=None if user_id is None else str(user_id),
        is_admin=bool(is_admin),
        name=str(name),
        rate_limit_per_minute=int(str(limit)),
        created_at=str(created_at),
        revoked_at=None if revoked_at is None else str(revoked_at),
    )


class ApiKeyStore(ControlTables):
    """Create, look up, revoke and list API keys in the control store file."""

    SCHEMA = SCHEMA

    def create(
        self,
        user_id: str | None,
        *,
        admin: bool = False,
        name: str = "",
        rate_limit_per_minute: int = DEFAULT_RATE_LIMIT_PER_MINUTE,
    ) -> CreatedKey:
        """A new key for one user, or (``admin=True``, no user) for every user."""
        if admin == (user_id is not None):
            raise ValueError("a key is either for one user (user_id) or an admin key (admin=True, no user)")
        if user_id is not None:
            validate_user_id(user_id)
        if rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be at least 1")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(6)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect() as con:
            con.execute(
                f"INSERT INTO api_keys ({_COLUMNS}, key_hash) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    key_id,
                    secret[:DISPLAY_PREFIX_LENGTH],
                    user_id,
                    int(admin),
                    name,
                    rate_limit_per_minute,
                    now,
                    hash_key(secret),
                ),
            )
        return CreatedKey(key=self.get(key_id), secret=secret)

    def get(self, key_id: str) -> ApiKey:
        with self._connect() as con:
            row = con.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is None:
            raise UnknownKey(key_id)
        return _row_to_key(row)

    def verify(self, secret: str) -> ApiKey | None:
        """The active key whose secret this is, or None (unknown, malformed or revoked)."""
        if not looks_like_key(secret):
            return None
        with self._connect() as con:
            return find_active_key(con, hash_key(secret))

    def revoke(self, key_id: str) -> ApiKey:
        """Stop a key working; revoking a revoked key keeps its first revocation time."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect() as con:
            updated = con.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?", (now, key_id)
            ).rowcount
        if not updated:
            raise UnknownKey(key_id)
        return self.get(key_id)

    def list(self, user_id: str | None = None) -> list[ApiKey]:
        """Every key (revoked ones too), oldest first; only one user's with ``user_id``."""
        query = f"SELECT {_COLUMNS} FROM api_keys"
        params: tuple[str, ...] = ()
        if user_id is not None:
            query += " WHERE user_id = ?"
            params = (validate_user_id(user_id),)
        with self._connect() as con:
            rows = con.execute(query + " ORDER BY created_at, key_id", params).fetchall()
        return [_row_to_key(row) for row in rows]
