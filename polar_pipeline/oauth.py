"""Connecting a Polar account by OAuth, without anybody copying a token (docs/connect.md).

The pieces both flows share: the authorize URL Polar's consent page is opened with, the code exchange at the
token endpoint (with the errors translated into what the person should do), the allowed origins of the
URLs a browser is sent to, and single-use ``state`` values, each tied to one user id and one redirect URL.

* ``run_connect`` is ``polar-flow connect``: a one-shot HTTP server on loopback receives Polar's redirect,
  and the state lives in memory. The account is registered at AccessLink, the token stored encrypted, the
  ``users`` partition added (``operations.add_user``), then the user's last 28 days are synced and published.
* The API (``polar_api/routers/oauth.py``) keeps its states in the control store (``OAuthStateStore``):
  ``/oauth/start`` issues one, ``/oauth/callback`` redeems it once, stores the token and queues a first
  sync; the ``sync_requests`` sensor registers the token at AccessLink before that sync.

No Dagster import at module level: the API process uses this module and stays light.
"""

from __future__ import annotations

import hashlib
import html
import http.server
import ipaddress
import secrets
import sqlite3
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from polar_pipeline.accesslink import (
    AccessLinkError,
    InvalidGrant,
    NotRegistered,
    ReauthorizationRequired,
    TransientError,
)
from polar_pipeline.accesslink.records import TokenGrant
from polar_pipeline.connections import AccountMismatch, accesslink_client, open_control_store
from polar_pipeline.control_store import ControlTables, StoredUser, validate_user_id
from polar_pipeline.settings import Settings

if TYPE_CHECKING:
    import dagster as dg

    from polar_pipeline.operations import SyncOutcome

STATE_LIFETIME_SECONDS = 600.0
"""How long a state may wait for its callback: as long as Polar's authorization codes live (10 minutes)."""
USED_STATES_KEPT_SECONDS = 86_400.0
"""Redeemed and expired states are kept this long, so a replay is told "already used", not "unknown"."""
CALLBACK_PATH = "/callback"
"""The loopback server's path when ``POLAR_CONNECT_REDIRECT_URL`` does not name one."""
FIRST_SYNC_DAYS = 28
"""AccessLink serves about the last 28 days: the first sync takes all of them."""
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost"})
MAX_URL_CHARS = 2000


class ConnectError(ValueError):
    """Connecting failed; the message says why and what to do. A ValueError, as the CLI reports those.

    ``http_status`` is how the callback page (the CLI's and the API's) answers it.
    """

    http_status: ClassVar[int] = 400


class StateRefused(ConnectError):
    """A callback whose ``state`` is unknown, expired, already used or not the one this flow sent."""


class AccessDenied(ConnectError):
    """The person did not grant access at Polar (``error=access_denied``), or Polar reported another error."""


class CodeRefused(ConnectError):
    """The token endpoint refused the code (``invalid_grant``): expired, used, or another redirect URL."""


class ClientRejected(ConnectError):
    """Polar refused this installation's client id and secret (401 at the token endpoint)."""

    http_status = 502


class PolarUnavailable(ConnectError):
    """Polar could not be reached, or answered something unexpected; trying again later may work."""

    http_status = 502


class AccountInUse(ConnectError):
    """The user is connected to another Polar account, or the account to another user."""

    http_status = 409


class DisallowedOrigin(ConnectError):
    """A URL the browser would be sent to is not on an allowed origin (``POLAR_OAUTH_ALLOWED_ORIGINS``)."""


# ----------------------------------------------------------------------------------- URLs and the exchange


def new_state() -> str:
    """256 random bits, URL-safe: what ties a callback to the flow that started it."""
    return secrets.token_urlsafe(32)


def require_client(settings: Settings) -> None:
    if not settings.client_id or not settings.client_secret:
        raise ConnectError(
            "POLAR_CLIENT_ID and POLAR_CLIENT_SECRET are not set: create an AccessLink client at "
            "https://admin.polaraccesslink.com and set both (docs/connect.md)"
        )


def authorize_url(settings: Settings, redirect_uri: str, state: str) -> str:
    """Polar's consent page for this client, sending the browser back to ``redirect_uri`` with ``state``."""
    require_client(settings)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    separator = "&" if "?" in settings.auth_url else "?"
    return f"{settings.auth_url}{separator}{query}"


def exchange_code(settings: Settings, code: str, redirect_uri: str, *, timeout: float = 15.0) -> TokenGrant:
    """The code → an access token and the Polar user id; ``redirect_uri`` repeats the authorize page's.

    One retry at most: a retried exchange sends the same single-use code, which a second attempt could only
    find used.
    """
    require_client(settings)
    try:
        with accesslink_client(settings, timeout=timeout, max_retries=1) as client:
            return client.exchange_code(code, redirect_uri)
    except InvalidGrant:
        raise CodeRefused(
            "Polar refused the authorization code (invalid_grant): it expired (codes live 10 minutes), was "
            "used already, or the redirect URL differs from the one registered with the client; start again"
        ) from None
    except TransientError:
        raise PolarUnavailable(
            "Polar's token endpoint could not be reached; start again in a moment"
        ) from None
    except AccessLinkError as error:
        if error.status_code == 401:
            raise ClientRejected(
                "Polar rejected this installation's client credentials (401): check POLAR_CLIENT_ID and "
                "POLAR_CLIENT_SECRET against admin.polaraccesslink.com"
            ) from None
        raise PolarUnavailable(f"the token exchange failed: {error}") from None


def callback_error(error: str, description: str | None) -> AccessDenied:
    """What Polar's ``error=…`` on a callback means for the person."""
    if error == "access_denied":
        return AccessDenied(
            "access was not granted at Polar (access_denied): nothing was connected; run the flow again and "
            "accept the AccessLink consents to connect the account"
        )
    said = f": {description}" if description else ""
    return AccessDenied(f"Polar answered with error {error!r}{said}; nothing was connected")


# ------------------------------------------------------------------------------------------ allowed origins


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, lower-cased, default port left out; else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or parts.username or parts.password:
        return None
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def allowed_origins(settings: Settings) -> frozenset[str]:
    """``POLAR_OAUTH_ALLOWED_ORIGINS`` (comma-separated) and the origin of ``POLAR_OAUTH_REDIRECT_URL``."""
    listed = [item.strip() for item in settings.oauth_allowed_origins.split(",") if item.strip()]
    if settings.oauth_redirect_url:
        listed.append(settings.oauth_redirect_url)
    return frozenset(origin for origin in map(origin_of, listed) if origin is not None)


def check_allowed(url: str, allowed: frozenset[str], what: str) -> str:
    """``url`` when its origin is allowed; else ``DisallowedOrigin`` naming the origins that are."""
    origin = origin_of(url) if len(url) <= MAX_URL_CHARS else None
    if origin is None:
        raise DisallowedOrigin(
            f"{what} must be an absolute http(s) URL of at most {MAX_URL_CHARS} characters"
        )
    if origin not in allowed:
        accepted = ", ".join(sorted(allowed)) or "none configured"
        raise DisallowedOrigin(
            f"{what} {origin} is not an allowed origin (allowed: {accepted}); set POLAR_OAUTH_REDIRECT_URL "
            "or add the origin to POLAR_OAUTH_ALLOWED_ORIGINS"
        )
    return url


def with_query(url: str, values: dict[str, str]) -> str:
    """``url`` with ``values`` added to its query string (a ``return_to`` keeps its own parameters)."""
    parts = urlsplit(url)
    query = "&".join(part for part in (parts.query, urlencode(values)) if part)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# -------------------------------------------------------------------------------- the API's single-use states

STATES_SCHEMA = """
CREATE TABLE IF NOT EXISTS oauth_states (
    state_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    return_to TEXT,
    sign_up INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
CREATE INDEX IF NOT EXISTS oauth_states_by_expiry ON oauth_states (expires_at);
"""


@dataclass(frozen=True)
class PendingAuthorization:
    """What a redeemed state was issued for: whom to connect, the redirect URL to repeat, where to go next.

    ``sign_up``: issued without a key for a user id not connected then (self-service), so the callback must
    find the id still free.
    """

    user_id: str
    redirect_uri: str
    return_to: str | None
    sign_up: bool


def _state_hash(state: str) -> str:
    # Only the hash is stored: reading the control store does not let anyone complete somebody's flow.
    return hashlib.sha256(state.encode()).hexdigest()


class OAuthStateStore(ControlTables):
    """The ``oauth_states`` table in the control store file: issue a state, redeem it once.

    ``now`` is the clock (unix seconds); a test gives an earlier one to issue a state that has expired.
    """

    SCHEMA: ClassVar[str] = STATES_SCHEMA

    def __init__(self, path: Path, *, now: Callable[[], float] = time.time) -> None:
        self._now = now
        super().__init__(path)

    def issue(
        self,
        user_id: str,
        redirect_uri: str,
        return_to: str | None = None,
        *,
        sign_up: bool = False,
        lifetime_s: float = STATE_LIFETIME_SECONDS,
    ) -> str:
        """A fresh state for ``user_id``; states long expired or used are deleted on the way."""
        validate_user_id(user_id)
        state = new_state()
        now = self._now()
        with self._connect() as con:
            con.execute("DELETE FROM oauth_states WHERE expires_at < ?", (now - USED_STATES_KEPT_SECONDS,))
            con.execute(
                "INSERT INTO oauth_states (state_hash, user_id, redirect_uri, return_to, sign_up, "
                "created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (_state_hash(state), user_id, redirect_uri, return_to, int(sign_up), now, now + lifetime_s),
            )
        return state

    def redeem(self, state: str) -> PendingAuthorization:
        """Mark ``state`` used and return what it was issued for; ``StateRefused`` when it cannot be used.

        The look and the mark happen under SQLite's write lock, so of two callbacks carrying the same state,
        across processes, exactly one gets through.
        """
        now = self._now()
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute(
                "SELECT user_id, redirect_uri, return_to, sign_up, expires_at, used_at FROM oauth_states "
                "WHERE state_hash = ?",
                (_state_hash(state),),
            ).fetchone()
            refusal = _refusal(row, now)
            if refusal is not None:
                raise StateRefused(refusal)
            con.execute("UPDATE oauth_states SET used_at = ? WHERE state_hash = ?", (now, _state_hash(state)))
        user_id, redirect_uri, return_to, sign_up, _, _ = row
        return PendingAuthorization(
            str(user_id), str(redirect_uri), None if return_to is None else str(return_to), bool(sign_up)
        )


def _refusal(row: sqlite3.Row | tuple[Any, ...] | None, now: float) -> str | None:
    if row is None:
        return "unknown state: this link was not issued by this server (or long ago); start again"
    *_, expires_at, used_at = row
    if used_at is not None:
        return "this state was used already: an authorization link works once; start again"
    if float(expires_at) <= now:
        minutes = round(STATE_LIFETIME_SECONDS / 60)
        return f"this state expired (a link is valid {minutes} minutes); start again"
    return None


# ------------------------------------------------------------------------ connecting (both flows end here)


def check_account_free(settings: Settings, user_id: str, polar_user_id: int) -> None:
    """Refuse to connect ``user_id`` to Polar account ``polar_user_id`` when either is taken by another.

    A user keeps the account it was first connected to (its history must not continue with somebody
    else's data), and one account is one user (two ids would sync the same data twice). Users whose
    Polar user id is not known yet (a token the API stored, not yet registered) cannot be compared.
    """
    for user in open_control_store(settings).list_users():
        if user.user_id == user_id and user.polar_user_id not in (None, polar_user_id):
            raise AccountInUse(
                f"user {user_id} is connected to another Polar account (Polar user {user.polar_user_id}); "
                "nothing was changed"
            )
        if user.user_id != user_id and user.polar_user_id == polar_user_id:
            raise AccountInUse(
                f"this Polar account ({polar_user_id}) is connected already as user {user.user_id}; "
                "nothing was changed"
            )


@dataclass(frozen=True)
class Connected:
    """A user connected to a Polar account: the stored user (with its Polar user id)."""

    user: StoredUser
    polar_user_id: int


def connect_account(
    settings: Settings, user_id: str, grant: TokenGrant, *, instance: dg.DagsterInstance | None = None
) -> Connected:
    """Register the granted token at AccessLink, store it encrypted and add the ``users`` partition.

    AccessLink's 409 (registered already, say by an earlier installation) is fine: the Polar user id then
    comes from the token grant. A user connected to another Polar account keeps it (``AccountMismatch``).
    """
    from polar_pipeline.operations import add_user

    check_account_free(settings, user_id, grant.x_user_id)
    try:
        stored = add_user(settings, user_id, grant.access_token, instance=instance)
    except AccountMismatch as error:
        raise AccountInUse(str(error)) from None
    except ReauthorizationRequired:
        raise ConnectError("AccessLink rejected the new token (401); run the flow again") from None
    except NotRegistered:
        raise ConnectError(
            "AccessLink refused to register the account (403): the mandatory consents were not accepted "
            "in Polar Flow; accept them and run the flow again"
        ) from None
    except TransientError:
        raise PolarUnavailable("AccessLink could not be reached to register the account; try again") from None
    if stored.polar_user_id is None:
        stored = open_control_store(settings).upsert_user(user_id, grant.access_token, grant.x_user_id)
    return Connected(stored, stored.polar_user_id or grant.x_user_id)


# ------------------------------------------------------------------------------------ the CLI's loopback flow


@dataclass(frozen=True)
class LoopbackRedirect:
    """Where the one-shot server listens and the exact redirect URL sent to Polar (and repeated after)."""

    bind_host: str
    port: int
    path: str
    fixed_url: str | None
    """``POLAR_CONNECT_REDIRECT_URL`` as written, when set: it must match the registered URL exactly."""

    def url(self, port: int) -> str:
        return self.fixed_url or f"http://{self.bind_host}:{port}{self.path}"


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


def loopback_redirect(settings: Settings, host: str, port: int) -> LoopbackRedirect:
    """The callback server's address: ``POLAR_CONNECT_REDIRECT_URL`` when set, else ``host``:``port``."""
    configured = settings.connect_redirect_url
    if not configured:
        if not _is_loopback(host):
            raise ConnectError(f"the callback server listens on loopback only, not on {host!r}")
        return LoopbackRedirect("127.0.0.1" if host == "localhost" else host, port, CALLBACK_PATH, None)
    try:
        parts = urlsplit(configured)
        fixed_port = parts.port
    except ValueError:
        fixed_port = None
        parts = urlsplit("")
    if parts.scheme != "http" or not _is_loopback(parts.hostname or "") or fixed_port is None:
        raise ConnectError(
            f"POLAR_CONNECT_REDIRECT_URL must be a loopback http URL with a port, such as "
            f"http://127.0.0.1:8976{CALLBACK_PATH} (got {configured!r})"
        )
    if port and port != fixed_port:
        raise ConnectError(
            f"--port {port} differs from POLAR_CONNECT_REDIRECT_URL's port {fixed_port}: Polar redirects "
            "only to the registered URL"
        )
    bind_host = "127.0.0.1" if parts.hostname == "localhost" else str(parts.hostname)
    return LoopbackRedirect(bind_host, fixed_port, parts.path or "/", configured)


@dataclass(frozen=True)
class Page:
    """What a callback answers a browser: a status, a title and a sentence (the JSON answers reuse it)."""

    status: int
    title: str
    message: str

    def render(self) -> bytes:
        title, message = html.escape(self.title), html.escape(self.message)
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>{message}</p><p>You can close this tab.</p></body></html>"
        ).encode()


def connected_page(user_id: str, polar_user_id: int, next_step: str) -> Page:
    return Page(
        200, "Connected", f"Polar account {polar_user_id} is connected as user {user_id}; {next_step}."
    )


def error_page(error: ConnectError) -> Page:
    return Page(error.http_status, "Not connected", str(error))


class _CallbackServer(http.server.HTTPServer):
    """One request at a time, on the calling thread: ``handle_request`` returns after each or on timeout."""

    def __init__(self, address: tuple[str, int], path: str, on_callback: Callable[[dict[str, str]], Page]):
        self.callback_path = path
        self.on_callback = on_callback
        self.answered = False
        super().__init__(address, _CallbackHandler)


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = 10  # a browser's idle pre-connection must not hold the only thread

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != self.server.callback_path or self.server.answered:
            self._send(Page(404, "Not found", "This is polar-flow's one-shot OAuth callback."))
            return
        params = {name: values[0] for name, values in parse_qs(parts.query).items()}
        self.server.answered = True
        self._send(self.server.on_callback(params))

    def _send(self, page: Page) -> None:
        body = page.render()
        self.send_response(page.status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line carries the authorization code."""


@dataclass(frozen=True)
class ConnectOutcome:
    """What ``polar-flow connect`` did: the connection, then the first sync and publish."""

    user_id: str
    polar_user_id: int
    redirect_uri: str
    sync: SyncOutcome
    published: bool

    @property
    def ok(self) -> bool:
        return self.sync.success and self.published


def run_connect(
    settings: Settings,
    user_id: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = True,
    timeout_s: float = 300.0,
    out: Callable[[str], object] = print,
    days: int = FIRST_SYNC_DAYS,
    browser: Callable[[str], object] = webbrowser.open,
    instance: dg.DagsterInstance | None = None,
) -> ConnectOutcome:
    """``polar-flow connect``: Polar's consent page, the loopback callback, then connect, sync and publish.

    Raises ``ConnectError`` (a subclass says which failure) when no account was connected; a failed sync
    or publish is in the outcome (``ok`` is False), as the account stays connected.
    """
    from polar_pipeline.orchestration.home import dagster_instance

    validate_user_id(user_id)
    require_client(settings)
    redirect = loopback_redirect(settings, host, port)
    instance = instance or dagster_instance(settings)
    state = new_state()
    result: list[Connected | Exception] = []

    def on_callback(params: dict[str, str]) -> Page:
        try:
            connected = _complete(settings, user_id, state, redirect_uri, params, instance)
        except ConnectError as error:
            result.append(error)
            return error_page(error)
        except Exception as error:  # raised again in the command, after the browser got its page
            result.append(error)
            return Page(500, "Not connected", "an unexpected error stopped the connection: see the terminal")
        result.append(connected)
        return connected_page(user_id, connected.polar_user_id, "the first sync runs in the terminal")

    try:
        server = _CallbackServer((redirect.bind_host, redirect.port), redirect.path, on_callback)
    except OSError as error:
        raise ConnectError(
            f"cannot listen on {redirect.bind_host}:{redirect.port} for Polar's redirect ({error.strerror}); "
            "choose another port with --port (and register that redirect URL with the client)"
        ) from None
    with server:
        redirect_uri = redirect.url(server.server_address[1])
        url = authorize_url(settings, redirect_uri, state)
        out(f"Open this address to connect user {user_id} to a Polar account (it works once):")
        out(url)
        if open_browser and not browser(url):
            out("(no browser could be opened: open the address above yourself)")
        out(f"waiting up to {timeout_s:g} s for Polar to redirect to {redirect_uri} …")
        _wait_for_callback(server, timeout_s)
    (connected,) = result
    if isinstance(connected, Exception):
        raise connected
    out(
        f"user {user_id} connected to Polar account {connected.polar_user_id}: registered at AccessLink, "
        "token stored encrypted"
    )
    return _first_sync(settings, user_id, connected.polar_user_id, redirect_uri, days, out, instance)


def _wait_for_callback(server: _CallbackServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not server.answered:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ConnectError(
                f"no answer from Polar within {timeout_s:g} s: nothing was connected. Open the address "
                "again (run the command again), or check that the redirect URL registered with the client "
                "is this one"
            )
        server.timeout = remaining
        server.handle_request()


def _complete(
    settings: Settings,
    user_id: str,
    state: str,
    redirect_uri: str,
    params: dict[str, str],
    instance: dg.DagsterInstance | None,
) -> Connected:
    """The callback's checks in order: our state, Polar's error, the code; then exchange and connect."""
    if not secrets.compare_digest(params.get("state", "").encode(), state.encode()):
        raise StateRefused(
            "the callback's state is not the one this command sent (an old tab, or a request that did not "
            "come from Polar's consent page): refused; run the command again"
        )
    if "error" in params:
        raise callback_error(params["error"], params.get("error_description"))
    code = params.get("code")
    if not code:
        raise ConnectError("Polar's redirect carried no authorization code; run the command again")
    grant = exchange_code(settings, code, redirect_uri)
    return connect_account(settings, user_id, grant, instance=instance)


def _first_sync(
    settings: Settings,
    user_id: str,
    polar_user_id: int,
    redirect_uri: str,
    days: int,
    out: Callable[[str], object],
    instance: dg.DagsterInstance | None,
) -> ConnectOutcome:
    from polar_pipeline.operations import publish, sync

    outcome = sync(settings, [user_id], days=days, instance=instance)
    verdict = "succeeded" if outcome.success else "FAILED"
    out(
        f"first sync: run {outcome.run_id} {verdict} for user {user_id}, days "
        f"{outcome.first_day}..{outcome.last_day}"
    )
    published = outcome.success and publish(settings, instance=instance)
    if outcome.success:
        out("published serving snapshot" if published else "publish FAILED")
    return ConnectOutcome(user_id, polar_user_id, redirect_uri, outcome, published)
