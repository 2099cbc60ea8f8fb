"""The API key store (only hashes kept, revocation, listing) and `polar-flow keys` / `polar-flow api`."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import astuple
from pathlib import Path
from typing import Any

import pytest

from polar_pipeline import cli
from polar_pipeline.api_keys import DEFAULT_RATE_LIMIT_PER_MINUTE, ApiKeyStore, UnknownKey
from polar_pipeline.control_store import InvalidUserId
from polar_pipeline.demo import demo_api_key
from polar_pipeline.settings import Settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private POLAR_HOME for the CLI, which reads its settings from the environment."""
    monkeypatch.setenv("POLAR_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def store(home: Path) -> ApiKeyStore:
    return ApiKeyStore(Settings().control_store_path)


def _stored_rows(path: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT * FROM api_keys").fetchall()
    finally:
        con.close()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_only_the_sha256_of_a_key_is_stored(store: ApiKeyStore) -> None:
    created = store.create("alice", name="phone", rate_limit_per_minute=42)
    assert created.secret.startswith("pfk_") and len(created.secret) == 4 + 43  # 256 random bits
    (row,) = _stored_rows(store.path)
    assert hashlib.sha256(created.secret.encode()).hexdigest() in row
    for value in row:
        assert created.secret[12:] not in str(value)  # the prefix is kept for lists; the rest never
    # Nothing read back from the store carries the secret either.
    for key in (created.key, store.get(created.key.key_id), *store.list()):
        assert all(created.secret not in str(value) for value in astuple(key))
    assert (created.key.user_id, created.key.is_admin, created.key.name) == ("alice", False, "phone")
    assert created.key.rate_limit_per_minute == 42
    assert created.key.key_prefix == created.secret[:12]


def test_verify_accepts_the_exact_secret_only(store: ApiKeyStore) -> None:
    created = store.create("alice")
    assert store.verify(created.secret) == created.key
    tampered = created.secret[:-1] + ("A" if created.secret[-1] != "A" else "B")
    for wrong in (tampered, created.secret + "x", created.secret[4:], "", "pfk_", "pfk_" + "a" * 300):
        assert store.verify(wrong) is None, wrong


def test_a_revoked_key_stops_verifying_and_keeps_its_first_revocation_time(store: ApiKeyStore) -> None:
    created = store.create(None, admin=True)
    kept = store.create("bob")
    revoked = store.revoke(created.key.key_id)
    assert revoked.revoked_at is not None and not revoked.active
    assert store.verify(created.secret) is None
    assert store.verify(kept.secret) == kept.key
    assert store.revoke(created.key.key_id).revoked_at == revoked.revoked_at
    with pytest.raises(UnknownKey):
        store.revoke("key_000000000000")


def test_list_names_every_key_oldest_first_and_filters_by_user(store: ApiKeyStore) -> None:
    made = [store.create("alice"), store.create(None, admin=True), store.create("bob"), store.create("alice")]
    store.revoke(made[2].key.key_id)
    listed = store.list()
    assert {key.key_id for key in listed} == {created.key.key_id for created in made}
    assert [key.created_at for key in listed] == sorted(key.created_at for key in listed)
    assert {key.key_id for key in store.list("alice")} == {made[0].key.key_id, made[3].key.key_id}
    assert [key.revoked_at is not None for key in store.list("bob")] == [True]
    assert store.list("nobody") == []


def test_keys_are_for_one_valid_user_or_admin(store: ApiKeyStore) -> None:
    with pytest.raises(InvalidUserId):
        store.create("a|b")
    with pytest.raises(InvalidUserId):
        store.list("a|b")
    with pytest.raises(ValueError, match="either for one user"):
        store.create("alice", admin=True)
    with pytest.raises(ValueError, match="either for one user"):
        store.create(None)
    with pytest.raises(ValueError, match="at least 1"):
        store.create("alice", rate_limit_per_minute=0)
    assert store.list() == []


def test_cli_create_prints_the_key_alone_on_the_last_line_once(
    store: ApiKeyStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "keys", "create", "--user", "alice", "--name", "laptop", "--rate-limit", "5")
    assert code == 0
    secret = out.splitlines()[-1]
    key = store.verify(secret)
    assert key is not None
    assert (key.user_id, key.is_admin, key.name, key.rate_limit_per_minute) == ("alice", False, "laptop", 5)
    assert out.count(secret) == 1 and key.key_id in out

    code, out, _ = _run(capsys, "keys", "create", "--admin")
    admin = store.verify(out.splitlines()[-1])
    assert code == 0 and admin is not None and admin.is_admin and admin.user_id is None
    assert admin.rate_limit_per_minute == DEFAULT_RATE_LIMIT_PER_MINUTE


def test_cli_create_needs_exactly_one_owner_and_a_valid_user(
    store: ApiKeyStore, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["keys", "create"], ["keys", "create", "--admin", "--user", "alice"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:  # the argument's validator, before the store is opened
        cli.main(["keys", "create", "--user", "a|b"])
    assert exit_info.value.code == 2 and "argument --user: invalid user id" in capsys.readouterr().err
    assert store.list() == []


def test_cli_list_never_shows_a_secret_and_revoke_stops_a_key(
    store: ApiKeyStore, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, admin, bob = store.create("alice"), store.create(None, admin=True), store.create("bob")
    code, out, _ = _run(capsys, "keys", "list")
    assert code == 0
    for created in (alice, admin, bob):
        assert created.key.key_id in out and created.key.key_prefix in out
        assert created.secret[12:] not in out
    assert "admin" in out and "user alice" in out

    code, out, _ = _run(capsys, "keys", "list", "--user", "alice")
    assert code == 0 and alice.key.key_id in out and bob.key.key_id not in out and admin.key.key_id not in out

    code, out, _ = _run(capsys, "keys", "revoke", bob.key.key_id)
    assert code == 0 and bob.key.key_id in out
    assert store.verify(bob.secret) is None and store.verify(alice.secret) is not None
    _, out, _ = _run(capsys, "keys", "list", "--user", "bob")
    (row,) = [line for line in out.splitlines() if line.startswith(bob.key.key_id)]
    assert row.split("\t")[-1] == store.get(bob.key.key_id).revoked_at

    code, _, err = _run(capsys, "keys", "revoke", "key_000000000000")
    assert code == 2 and "no API key with id 'key_000000000000'" in err


def test_cli_api_binds_loopback_and_starts_workers_from_the_app_factory(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    assert cli.main(["api"]) == 0
    assert cli.main(["api", "--host", "0.0.0.0", "--port", "9001", "--workers", "3"]) == 0
    (default_args, default), (_, explicit) = calls
    # An import string plus factory=True is what lets uvicorn start several worker processes.
    assert default_args == ("polar_api.app:create_app",) and default["factory"] is True
    assert (default["host"], default["port"], default["workers"]) == ("127.0.0.1", 8000, 1)
    assert (explicit["host"], explicit["port"], explicit["workers"]) == ("0.0.0.0", 9001, 3)


def test_the_demo_makes_a_fresh_admin_key_each_run(store: ApiKeyStore) -> None:
    first, second = demo_api_key(Settings()), demo_api_key(Settings())
    assert first != second
    for secret in (first, second):
        key = store.verify(secret)
        assert key is not None and key.is_admin and key.name == "demo"
