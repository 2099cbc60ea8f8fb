"""Control store: tokens encrypted at rest, key file private, user ids that partitions can carry."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from polar_pipeline.control_store import (
    ControlStore,
    InvalidUserId,
    UnknownUser,
    load_or_create_key,
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
