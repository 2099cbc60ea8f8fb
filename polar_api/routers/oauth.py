"""GET /oauth/start and GET /oauth/callback: a person connects their Polar account through the browser.

``/oauth/start?user_id=…`` issues a single-use ``state`` tied to the user id and the redirect URL (10
minutes, in the control store) and answers 302 to Polar's consent page. Polar sends the browser back to
``/oauth/callback?code=…&state=…``: the state is redeemed (marked used atomically, so a replay is 400), the
code exchanged for a token, the token stored encrypted, and a first sync of the last 28 days queued; the
``sync_requests`` sensor registers the token at AccessLink before that sync runs. The token is never echoed.

Who may start: an admin key for any user id, or a user's own key for that user id (re-authorizing). A new
user has no key yet, so the default is an admin key; ``POLAR_OAUTH_SELF_SERVICE=1`` lets anyone start for a
user id that is not connected yet (sign-up). The callback needs no key: the browser arrives from Polar, and
the state is the credential. A browser is only ever sent to an allowed origin (``POLAR_OAUTH_REDIRECT_URL``'s
and ``POLAR_OAUTH_ALLOWED_ORIGINS``); anything else is 400. docs/connect.md has the whole flow.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from polar_api.auth import API_KEY_SCHEME, BEARER_SCHEME, check_access, presented_key
from polar_api.errors import error_response
from polar_api.ratelimit import QUOTA_STATE
from polar_api.read.sync import SyncRequestView, request_view
from polar_api.routers.sync import request_queue, status_path
from polar_pipeline.connections import open_control_store
from polar_pipeline.control_store import USER_ID_PATTERN, UnknownUser
from polar_pipeline.oauth import (
    FIRST_SYNC_DAYS,
    MAX_URL_CHARS,
    AccountInUse,
    ConnectError,
    OAuthStateStore,
    Page,
    allowed_origins,
    authorize_url,
    callback_error,
    check_account_free,
    check_allowed,
    connected_page,
    error_page,
    exchange_code,
    require_client,
    with_query,
)
from polar_pipeline.settings import Settings

router = APIRouter(prefix="/oauth", tags=["oauth"])

CALLBACK_ROUTE = "oauth_callback"
HTML_AND_JSON_ERROR = {
    "application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}},
    "text/html": {"schema": {"type": "string"}},
}


class OAuthConnected(BaseModel):
    """The callback's answer: the user is connected and their first sync is queued."""

    user_id: str
    polar_user_id: int = Field(description="the AccessLink user id the token belongs to")
    sync_request: SyncRequestView = Field(description="the first sync, followed at its status_url")
    message: str


def _html_error(description: str) -> dict[str, Any]:
    return {"description": description, "content": HTML_AND_JSON_ERROR}


def state_store(request: Request) -> OAuthStateStore:
    """The app's state store, opened on first use (its table is created then)."""
    store: OAuthStateStore | None = getattr(request.app.state, "oauth_states", None)
    if store is None:
        store = OAuthStateStore(request.app.state.settings.control_store_path)
        request.app.state.oauth_states = store
    return store


StartUserId = Annotated[
    str,
    Query(pattern=USER_ID_PATTERN.pattern, max_length=100, description="the user id to connect"),
]


def _is_connected(settings: Settings, user_id: str) -> bool:
    try:
        open_control_store(settings).get_user(user_id)
    except UnknownUser:
        return False
    return True


def may_start(
    request: Request,
    user_id: StartUserId,
    header_key: Annotated[str | None, Depends(API_KEY_SCHEME)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)],
) -> None:
    """An admin key, the user's own key, or (self-service sign-up) no key for a user not connected yet."""
    settings: Settings = request.app.state.settings
    secret = presented_key(header_key, f"Bearer {bearer.credentials}" if bearer else None)
    if secret is None and settings.oauth_self_service:
        if not _is_connected(settings, user_id):
            return
        raise HTTPException(
            status_code=401,
            detail=f"user {user_id} is connected already: re-authorizing needs their API key or an admin key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    access = check_access(request.app.state.key_guard, secret, user_id)
    if access.quota is not None:
        setattr(request.state, QUOTA_STATE, access.quota)
    if access.refusal is not None:
        raise access.refusal


@router.get(
    "/start",
    status_code=302,
    response_class=RedirectResponse,
    summary="Send the browser to Polar's consent page for a user",
    description=(
        "Issues a single-use `state` (valid 10 minutes) tied to `user_id` and the redirect URL, and answers "
        "302 to Polar's authorization page. Needs an admin key, or the user's own key; with "
        "`POLAR_OAUTH_SELF_SERVICE=1`, no key for a user id that is not connected yet. `redirect_uri` "
        "(default `POLAR_OAUTH_REDIRECT_URL`, else this server's `/oauth/callback`) and `return_to` (where "
        "the browser goes after a successful callback) must be on an allowed origin."
    ),
    dependencies=[Depends(may_start)],
    responses={
        302: {"description": "to Polar's authorization page (`Location`)"},
        400: error_response("A redirect URL or return_to outside the allowed origins."),
        401: error_response("No API key, or an unknown or revoked one."),
        403: error_response("The key belongs to another user."),
        429: error_response("Over the key's rate limit: retry after `Retry-After` seconds."),
        503: error_response("This installation has no Polar client id and secret."),
    },
)
def start(
    request: Request,
    user_id: StartUserId,
    redirect_uri: Annotated[
        str | None,
        Query(
            max_length=MAX_URL_CHARS,
            description="the callback Polar redirects to (registered with the client); default the setting",
        ),
    ] = None,
    return_to: Annotated[
        str | None,
        Query(max_length=MAX_URL_CHARS, description="where the browser goes after a successful callback"),
    ] = None,
) -> RedirectResponse:
    settings: Settings = request.app.state.settings
    try:
        require_client(settings)
    except ConnectError as error:
        raise HTTPException(status_code=503, detail=str(error)) from None
    allowed = allowed_origins(settings)
    callback = redirect_uri or settings.oauth_redirect_url or str(request.url_for(CALLBACK_ROUTE))
    try:
        check_allowed(callback, allowed, "the redirect URL")
        if return_to is not None:
            check_allowed(return_to, allowed, "return_to")
    except ConnectError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    sign_up = settings.oauth_self_service and not _is_connected(settings, user_id)
    state = state_store(request).issue(user_id, callback, return_to, sign_up=sign_up)
    return RedirectResponse(
        authorize_url(settings, callback, state), status_code=302, headers={"Cache-Control": "no-store"}
    )


def _answer(request: Request, page: Page, body: BaseModel | None = None) -> Response:
    """The page for a browser (``Accept: text/html``); else JSON: ``body``, or the API's error shape."""
    headers = {"Cache-Control": "no-store"}
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(page.render().decode(), status_code=page.status, headers=headers)
    content = body.model_dump(mode="json") if body is not None else {"detail": page.message}
    return JSONResponse(content, status_code=page.status, headers=headers)


def _refused(request: Request, refusal: ConnectError) -> Response:
    return _answer(request, error_page(refusal), None)


@router.get(
    "/callback",
    name=CALLBACK_ROUTE,
    summary="Where Polar sends the browser back: connect the user and queue a first sync",
    description=(
        "Redeems the `state` (unknown, expired or used: 400), exchanges the `code` for a token, stores it "
        "encrypted and queues a sync of the last 28 days (the Dagster sensor registers the token at "
        "AccessLink first). A browser (`Accept: text/html`) gets a small page; other clients JSON. With a "
        "`return_to` given at start, a success is a 303 there, with `user_id=<user id>` and "
        "`sync_request=<request id>` added to its query."
    ),
    response_model=OAuthConnected,
    responses={
        200: {
            "description": "connected; the first sync is queued",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        303: {"description": "connected; to the `return_to` given at start"},
        400: _html_error(
            "No state, or an unknown, expired or used one; access not granted at Polar; no code, or Polar "
            "refused it."
        ),
        409: _html_error("The user is connected to another Polar account, or the account to another user."),
        502: _html_error("Polar refused this installation's client credentials, or could not be reached."),
        503: _html_error("This installation has no Polar client id and secret."),
    },
)
def callback(
    request: Request,
    code: Annotated[str | None, Query(max_length=MAX_URL_CHARS, description="Polar's code")] = None,
    state: Annotated[str | None, Query(max_length=200, description="the state /oauth/start issued")] = None,
    error: Annotated[str | None, Query(max_length=200, description="Polar's error, if any")] = None,
    error_description: Annotated[str | None, Query(max_length=MAX_URL_CHARS)] = None,
) -> Response:
    settings: Settings = request.app.state.settings
    if not settings.client_id or not settings.client_secret:
        page = Page(503, "Not connected", "this installation has no POLAR_CLIENT_ID and POLAR_CLIENT_SECRET")
        return _answer(request, page)
    try:
        if not state:
            raise ConnectError("the callback carries no state: start again at /oauth/start")
        pending = state_store(request).redeem(state)
        if error is not None:
            raise callback_error(error, error_description)
        if not code:
            raise ConnectError("Polar's redirect carried no authorization code: start again")
        if pending.sign_up and _is_connected(settings, pending.user_id):
            raise AccountInUse(f"user id {pending.user_id} was connected meanwhile: sign up with another one")
        grant = exchange_code(settings, code, pending.redirect_uri)
        check_account_free(settings, pending.user_id, grant.x_user_id)
    except ConnectError as refusal:
        return _refused(request, refusal)
    # Stored without a Polar user id when new: the sensor then registers the token before the first sync.
    open_control_store(settings).upsert_user(pending.user_id, grant.access_token)
    queued = request_queue(request).enqueue(pending.user_id, "sync", FIRST_SYNC_DAYS).request
    if pending.return_to is not None:
        target = with_query(
            pending.return_to, {"user_id": pending.user_id, "sync_request": queued.request_id}
        )
        return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    page = connected_page(pending.user_id, grant.x_user_id, "the first sync of the last 28 days is queued")
    body = OAuthConnected(
        user_id=pending.user_id,
        polar_user_id=grant.x_user_id,
        sync_request=request_view(queued, status_path(request, pending.user_id)),
        message=page.message,
    )
    return _answer(request, page, body)
