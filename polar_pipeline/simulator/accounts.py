"""Simulated AccessLink accounts: access tokens, registration state and OAuth authorization codes."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from polar_pipeline.simulator.physiology import UserModel
from polar_pipeline.simulator.seeding import hex_token

CODE_LIFETIME_SECONDS = 600.0
DEFAULT_REDIRECT_URI = "http://127.0.0.1/callback"
TOKEN_EXPIRES_IN = 31535999


@dataclass
class Account:
    """One simulated user as AccessLink sees it. The token is valid from start-up, so tests may skip OAuth."""

    model: UserModel
    token: str
    token_generation: int = 0
    revoked: bool = False
    authorized: bool = False
    registered_at: dt.datetime | None = None
    member_id: str | None = None

    @property
    def x_user_id(self) -> int:
        return self.model.x_user_id

    @property
    def registered(self) -> bool:
        return self.registered_at is not None


@dataclass
class AuthorizationCode:
    x_user_id: int
    redirect_uri: str | None
    issued_monotonic: float
    used: bool = False


class AccountStore:
    def __init__(self, seed: int, models: list[UserModel]) -> None:
        self._seed = seed
        self.accounts: dict[int, Account] = {}
        self._by_token: dict[str, Account] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        for model in models:
            account = Account(model=model, token=self._token(model.x_user_id, 0))
            self.accounts[model.x_user_id] = account
            self._by_token[account.token] = account

    def _token(self, x_user_id: int, generation: int) -> str:
        return "sim-" + hex_token(self._seed, "token", x_user_id, generation)

    def by_token(self, token: str) -> Account | None:
        return self._by_token.get(token)

    def registered_count(self) -> int:
        return sum(account.registered for account in self.accounts.values())

    def next_unauthorized(self) -> Account | None:
        return next((account for account in self.accounts.values() if not account.authorized), None)

    def issue_code(self, account: Account, redirect_uri: str | None) -> str:
        code = hex_token(self._seed, "code", len(self._codes), account.x_user_id, length=24)
        self._codes[code] = AuthorizationCode(account.x_user_id, redirect_uri, time.monotonic())
        account.authorized = True
        return code

    def redeem_code(self, code: str, redirect_uri: str | None) -> Account | None:
        """The account for a valid, unused, unexpired code whose redirect URI matches; else None."""
        grant = self._codes.get(code)
        if grant is None or grant.used or time.monotonic() - grant.issued_monotonic > CODE_LIFETIME_SECONDS:
            return None
        expected = grant.redirect_uri
        if expected is not None and redirect_uri != expected:
            return None
        if expected is None and redirect_uri not in (None, DEFAULT_REDIRECT_URI):
            return None
        grant.used = True
        account = self.accounts[grant.x_user_id]
        if account.revoked:
            self._by_token.pop(account.token, None)
            account.token_generation += 1
            account.token = self._token(account.x_user_id, account.token_generation)
            account.revoked = False
            self._by_token[account.token] = account
        return account

    def member_id_taken(self, member_id: str) -> bool:
        return any(account.member_id == member_id for account in self.accounts.values() if account.registered)

    def register(self, account: Account, member_id: str, now: dt.datetime) -> None:
        account.registered_at = now
        account.member_id = member_id

    def deregister(self, account: Account) -> None:
        """De-registration also revokes the token (docs/accesslink.md §4)."""
        account.registered_at = None
        account.member_id = None
        account.revoked = True
