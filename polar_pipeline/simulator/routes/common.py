"""What the route families share: the route-table entry, date parameters and the bearer-token checks."""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple

from polar_pipeline.simulator.accounts import Account
from polar_pipeline.simulator.asgi import Handler, Request, Response
from polar_pipeline.simulator.state import SimulatorState

_DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Endpoint(NamedTuple):
    """One route-table entry; ``{name}`` in ``template`` matches one path segment."""

    method: str
    template: str
    handler: Handler


def parse_day(text: str | None) -> dt.date | None:
    if text is None or not _DATE_PATTERN.match(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def day_range(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def bearer_account(sim: SimulatorState, request: Request) -> Account | Response:
    """The account of the request's bearer token, or a 401 response."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    account = sim.accounts.by_token(token.strip()) if scheme.lower() == "bearer" else None
    if account is None or account.revoked:
        return sim.error(401, "UNAUTHORIZED", "missing, invalid or revoked access token")
    return account


def data_account(sim: SimulatorState, request: Request) -> Account | Response:
    """Like ``bearer_account``, and 403 unless the account is registered (data endpoints)."""
    account = bearer_account(sim, request)
    if isinstance(account, Account) and not account.registered:
        return sim.error(403, "FORBIDDEN", "user not registered or consents missing")
    return account


def auth_then(sim: SimulatorState, request: Request, response: Response) -> Response:
    """Authentication and registration errors take precedence over parameter errors."""
    account = data_account(sim, request)
    return account if isinstance(account, Response) else response
