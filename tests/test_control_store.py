"""Control store: tokens encrypted at rest, key file private, user ids that partitions can carry, each user's
time zone (from records until the person sets one), and stores from before zones keep working."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from polar_pipeline.control_store import (
    ZONE_FROM_RECORDS,
    ZONE_FROM_USER,
    ControlStore,
    InvalidTimeZone,
    InvalidUserId,
    UnknownUser,
    UserTimeZone,
    load_or_create_key,
    validate_time_zone,
    validate_user_id,
)


def test_token_is_encrypted_at_rest_and_round_trips(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "secret.key")
    store = ControlStore(tmp_path / "control.sqlite3", key)
    token = "sim-0123456789abcdef-very-secret"
    store.upsert_user("10000001", token, polar_user_id=10000001)
    assert store.token_for("10000001") == token
    for path in tmp_path.glob("control.sqlite3*"):
        assert token.encode() not in path.read_bytes()
    assert [u.user_id for u in store.list_users()] == ["10000001"]
    assert store.get_user("10000001").polar_user_id == 10000001


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "secret.key")
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    assert load_or_create_key(tmp_path / "secret.key") == key
    env_key = Fernet.generate_key().decode()
    assert load_or_create_key(tmp_path / "other.key", env_key) == env_key.encode()
    assert not (tmp_path / "other.key").exists()


def test_wrong_key_gives_a_clear_error_without_the_token(tmp_path: Path) -> None:
    ControlStore(tmp_path / "c.sqlite3", Fernet.generate_key()).upsert_user("u1", "tok-secret")
    other = ControlStore(tmp_path / "c.sqlite3", Fernet.generate_key())
    with pytest.raises(RuntimeError) as excinfo:
        other.token_for("u1")
    assert "cannot be decrypted" in str(excinfo.value)
    assert "tok-secret" not in str(excinfo.value)
    with pytest.raises(UnknownUser):
        other.token_for("nobody")


@pytest.mark.parametrize("bad", ["a|b", "", "x" * 101, "with space", "slash/", "comma,", "bracket["])
def test_user_ids_that_would_break_partition_keys_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidUserId):
        validate_user_id(bad)


def test_plain_ids_are_accepted() -> None:
    assert validate_user_id("10000001") == "10000001"
    assert validate_user_id("alice_B-2") == "alice_B-2"


# ------------------------------------------------------------------------------------------- time zones

SEEN = datetime(2026, 2, 28, 7, 30, tzinfo=UTC)


def _store_with(tmp_path: Path, *users: str) -> ControlStore:
    store = ControlStore(tmp_path / "control.sqlite3", Fernet.generate_key())
    for user in users:
        store.upsert_user(user, f"token-{user}")
    return store


def test_records_give_the_default_zone_and_only_newer_records_change_it(tmp_path: Path) -> None:
    store = _store_with(tmp_path, "u1")
    assert store.get_user("u1").time_zone is None and store.time_zones() == []
    assert store.record_zone_from_records("u1", "Etc/GMT-2", SEEN)
    assert not store.record_zone_from_records("u1", "Etc/GMT-9", SEEN - timedelta(days=40))  # a backfill
    assert store.time_zones() == [UserTimeZone("u1", "Etc/GMT-2", ZONE_FROM_RECORDS)]
    assert store.record_zone_from_records("u1", "Etc/GMT-3", SEEN + timedelta(days=1))
    assert (store.get_user("u1").time_zone, store.get_user("u1").time_zone_source) == ("Etc/GMT-3", "records")


def test_a_zone_the_person_set_is_never_overwritten_by_records(tmp_path: Path) -> None:
    store = _store_with(tmp_path, "u1", "u2")
    store.record_zone_from_records("u1", "Etc/GMT-2", SEEN)
    assert store.set_time_zone("u1", "Europe/Helsinki").time_zone_source == ZONE_FROM_USER
    assert not store.record_zone_from_records("u1", "Etc/GMT-3", SEEN + timedelta(days=365))
    store.upsert_user("u1", "a-new-token")  # re-adding the user keeps the zone too
    assert store.time_zones() == [UserTimeZone("u1", "Europe/Helsinki", ZONE_FROM_USER)]


@pytest.mark.parametrize(
    "bad", ["Mars/Base", "Europe", "", "../etc/passwd", "/etc/localtime", "localtime", "utc+2"]
)
def test_unknown_zones_and_users_are_refused(tmp_path: Path, bad: str) -> None:
    store = _store_with(tmp_path, "u1")
    with pytest.raises(InvalidTimeZone, match="unknown time zone"):
        store.set_time_zone("u1", bad)
    with pytest.raises(UnknownUser):
        store.set_time_zone("nobody", "Europe/Helsinki")
    assert validate_time_zone("Etc/GMT-2") == "Etc/GMT-2" and store.get_user("u1").time_zone is None


def test_a_store_from_before_time_zones_keeps_working(tmp_path: Path) -> None:
    """The users table as the first release wrote it: opening it adds the zone columns and loses nothing."""
    key = Fernet.generate_key()
    path = tmp_path / "control.sqlite3"
    with sqlite3.connect(path) as con:
        con.executescript(
            "CREATE TABLE users (user_id TEXT PRIMARY KEY, polar_user_id INTEGER, "
            "token_encrypted BLOB NOT NULL, status TEXT NOT NULL DEFAULT 'active', "
            "created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        )
        con.execute(
            "INSERT INTO users VALUES ('old', 42, ?, 'reauthorize', '2025-01-01', '2025-01-02')",
            (Fernet(key).encrypt(b"old-token"),),
        )
    con.close()
    store = ControlStore(path, key)
    ControlStore(path, key)  # opening twice adds nothing twice
    old = store.get_user("old")
    assert (old.polar_user_id, old.status, old.time_zone) == (42, "reauthorize", None)
    assert store.token_for("old") == "old-token"
    store.set_time_zone("old", "America/St_Johns")
    assert store.time_zones() == [UserTimeZone("old", "America/St_Johns", ZONE_FROM_USER)]
