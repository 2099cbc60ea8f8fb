"""The dashboard's routes under /dashboard: sign-in and sign-out, one HTML page and one data call per page,
and the static files.

* ``GET /dashboard/{page}?user=&range=`` is the page's shell (navigation, range and user pickers, empty
  slots); it paints at once, and ``static/dashboard.js`` (deferred) fills it from
* ``GET /dashboard/data/{page}?user=&range=``, one JSON document with every card, series and table the page
  shows, built by the page's builder (``polar_api.dashboard.pages``) from the read layer on one snapshot
  generation.
* ``GET /dashboard/login`` and ``POST /dashboard/login`` (the key in a form body, never in a URL),
  ``POST /dashboard/logout``.
* ``GET /dashboard/static/{versioned name}``: plotly.js and our CSS and JavaScript, cached for a year.

Every page and data call checks the key from the cookie as the API checks ``X-API-Key`` (``session.py``).
A user's key sees its own user (another user's pages are 403); an admin key picks any user (``?user=``).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from polar_api.dashboard.assets import CACHE_CONTROL, assets
from polar_api.dashboard.model import SnapshotFacts
from polar_api.dashboard.pages import DEFAULT_PAGE, PAGES, Page
from polar_api.dashboard.pages.common import PageContext
from polar_api.dashboard.session import (
    Refused,
    SignInRequired,
    Viewer,
    authorize_viewer,
    clear_session_cookie,
    presented_secret,
    same_origin,
    set_session_cookie,
    verify_for_sign_in,
)
from polar_api.dashboard.window import DEFAULT_RANGE, RANGE_LABELS, RANGES, window_for
from polar_api.deps import GENERATION_HEADER, local_today, per_generation
from polar_api.read.daily_series import day_span
from polar_api.read.users import known_users
from polar_pipeline.api_keys import MAX_KEY_LENGTH
from polar_pipeline.control_store import USER_ID_PATTERN
from polar_pipeline.warehouse.snapshot import SnapshotReader, SnapshotUnavailable

router = APIRouter(prefix="/dashboard", include_in_schema=False)

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.globals["asset_url"] = lambda logical: assets().url(logical)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""No inline script, nothing from another origin; plotly sets inline styles, hence 'unsafe-inline' there."""
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}
"""Pages and data show a person's health data: never kept by a cache, never framed by another site."""
GZIP_MIN_BYTES = 1024
MAX_FORM_BYTES = 4096
SIGN_IN_MESSAGES = {
    "required": ("Sign in with your API key to see the dashboard.", "neutral"),
    "invalid": ("That key is unknown or has been revoked: sign in with a current key.", "bad"),
    "signed_out": ("You are signed out.", "good"),
}

UserParam = Annotated[str | None, Query(max_length=100, description="whose pages (an admin key only)")]
RangeParam = Annotated[str, Query(alias="range", max_length=10)]


# -- responses -------------------------------------------------------------------------------------------


def accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def compressed(
    request: Request,
    body: bytes,
    media_type: str,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] = PRIVATE_HEADERS,
) -> Response:
    """``body``, gzipped when the client takes it and it is worth it."""
    out = {**headers, "Vary": "Accept-Encoding"}
    if len(body) >= GZIP_MIN_BYTES and accepts_gzip(request):
        body = gzip.compress(body, compresslevel=6)
        out["Content-Encoding"] = "gzip"
    return Response(content=body, status_code=status_code, media_type=media_type, headers=out)


def html(request: Request, template: str, *, status_code: int = 200, **context: Any) -> Response:
    text = TEMPLATES.get_template(template).render(**{"user_query": "", "generation": None, **context})
    return compressed(request, text.encode(), "text/html; charset=utf-8", status_code=status_code)


def error_page(
    request: Request, status_code: int, heading: str, message: str, *, signed_in: bool = True
) -> Response:
    return html(
        request,
        "error.html",
        status_code=status_code,
        title=heading,
        heading=heading,
        message=message,
        signed_in=signed_in,
        back_href=f"/dashboard/{DEFAULT_PAGE}",
        back_label="Back to Today",
    )


def json_error(request: Request, status_code: int, detail: str, **extra: Any) -> Response:
    body = json.dumps({"detail": detail, **extra}).encode()
    return compressed(request, body, "application/json", status_code=status_code)


def sign_in_redirect(request: Request, reason: str, next_page: str | None = None) -> Response:
    query = {"reason": reason} | ({"next": next_page} if next_page and next_page in PAGES else {})
    response = RedirectResponse(f"/dashboard/login?{urlencode(query)}", status_code=303)
    if reason == "invalid":
        clear_session_cookie(response, request)
    for name, value in PRIVATE_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


# -- who and what ----------------------------------------------------------------------------------------


def _reader(request: Request) -> SnapshotReader:
    reader: SnapshotReader = request.app.state.reader
    return reader


def _first_known_user(request: Request) -> str | None:
    """An admin who named no user sees the first user of the snapshot (sorted), if any."""
    with _reader(request).cursor() as (cursor, _):
        users: frozenset[str] = per_generation(cursor, "known_users", known_users)
    return min(users) if users else None


def _bad_request(page: str, user: str | None, range_key: str) -> str | None:
    """Why the request's page, user or range cannot be shown, or None when they are well formed."""
    if page not in PAGES:
        return f"There is no dashboard page {page!r}."
    if range_key not in RANGES:
        return f"Unknown range {range_key!r}: choose one of {', '.join(RANGE_LABELS.values())}."
    if user is not None and not USER_ID_PATTERN.fullmatch(user):
        return "That is not a user id."
    return None


def _href(slug: str, viewer: Viewer, range_key: str) -> str:
    query = {"range": range_key} | (
        {"user": viewer.user_id} if viewer.key.is_admin and viewer.user_id else {}
    )
    return f"/dashboard/{slug}?{urlencode(query)}"


# -- sign-in ---------------------------------------------------------------------------------------------


@router.get("")
def dashboard_root() -> RedirectResponse:
    return RedirectResponse(f"/dashboard/{DEFAULT_PAGE}", status_code=303)


@router.get("/login")
def sign_in_form(
    request: Request,
    reason: Annotated[str | None, Query(max_length=20)] = None,
    next_page: Annotated[str | None, Query(alias="next", max_length=20)] = None,
) -> Response:
    message, tone = SIGN_IN_MESSAGES.get(reason or "", (None, None))
    return html(
        request,
        "login.html",
        title="Sign in",
        message=message,
        message_tone=tone,
        next_page=next_page if next_page in PAGES else DEFAULT_PAGE,
    )


@router.post("/login")
async def sign_in(request: Request) -> Response:
    """Check the posted key; on success keep it in the session cookie and go to the page asked for."""
    if not same_origin(request):
        return error_page(
            request, 403, "Sign-in refused", "Sign in from the dashboard's own page.", signed_in=False
        )
    body = b""
    async for chunk in request.stream():  # a sign-in form is tiny: stop reading anything larger
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return error_page(request, 413, "Sign-in refused", "That form was too large.", signed_in=False)
    try:
        form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:  # more fields than the form has
        form = {}
    secret = (form.get("key") or [""])[0].strip()
    next_page = (form.get("next") or [DEFAULT_PAGE])[0]
    key = verify_for_sign_in(request, secret) if 0 < len(secret) <= MAX_KEY_LENGTH else None
    if key is None:
        message, tone = SIGN_IN_MESSAGES["invalid"]
        response = html(
            request,
            "login.html",
            status_code=401,
            title="Sign in",
            message=message,
            message_tone=tone,
            next_page=next_page if next_page in PAGES else DEFAULT_PAGE,
        )
        clear_session_cookie(response, request)
        return response
    response = RedirectResponse(
        f"/dashboard/{next_page if next_page in PAGES else DEFAULT_PAGE}", status_code=303
    )
    set_session_cookie(response, request, secret)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/logout")
def sign_out(request: Request) -> Response:
    """Forget the key in this browser (the key itself stays valid: ``polar-flow keys revoke`` ends it)."""
    if not same_origin(request):
        return error_page(request, 403, "Sign-out refused", "Sign out from the dashboard's own page.")
    response = RedirectResponse("/dashboard/login?reason=signed_out", status_code=303)
    clear_session_cookie(response, request)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- static files ----------------------------------------------------------------------------------------


@router.get("/static/{name}")
def static_file(request: Request, name: str) -> Response:
    asset = assets().get(name)
    if asset is None:
        return Response(status_code=404, content=b"not found", media_type="text/plain")
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": asset.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    if accepts_gzip(request):
        return Response(
            asset.gzipped(), media_type=asset.media_type, headers={**headers, "Content-Encoding": "gzip"}
        )
    return Response(asset.raw, media_type=asset.media_type, headers=headers)


# -- data ------------------------------------------------------------------------------------------------


@router.get("/data/{page}")
def page_data(
    request: Request, page: str, user: UserParam = None, range_key: RangeParam = DEFAULT_RANGE
) -> Response:
    """Everything ``page`` shows for the user and range, as one JSON document (``model.PageData``)."""
    problem = _bad_request(page, user, range_key)
    if problem is not None:
        return json_error(request, 404 if page not in PAGES else 400, problem)
    try:
        viewer = authorize_viewer(request, user, lambda: _first_known_user(request))
        with _reader(request).cursor() as (cursor, info):
            users: frozenset[str] = per_generation(cursor, "known_users", known_users)
            if viewer.user_id is None or viewer.user_id not in users:
                return json_error(request, 404, f"no data for user {viewer.user_id} in the serving snapshot")
            now = datetime.now(UTC)
            span = day_span(cursor, viewer.user_id)
            today = local_today(request.app.state.settings, cursor, viewer.user_id)
            window = window_for(range_key, today, span[0] if span else None)
            snapshot = SnapshotFacts(
                generation=info.generation, published_at=info.published_at, age_seconds=info.age_seconds(now)
            )
            data = PAGES[page].build(cursor, PageContext(viewer.user_id, window, now, snapshot))
    except SignInRequired as required:
        response = json_error(
            request, 401, "sign in again", login=f"/dashboard/login?reason={required.reason}&next={page}"
        )
        if required.reason == "invalid":
            clear_session_cookie(response, request)
        return response
    except Refused as refused:
        response = json_error(request, refused.status_code, refused.detail)
        if refused.retry_after is not None:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    except SnapshotUnavailable as exc:
        return json_error(request, 503, str(exc))
    return compressed(
        request,
        data.model_dump_json().encode(),
        "application/json",
        headers={**PRIVATE_HEADERS, GENERATION_HEADER: str(info.generation)},
    )


# -- pages -----------------------------------------------------------------------------------------------


@router.get("/{page}")
def page_shell(
    request: Request, page: str, user: UserParam = None, range_key: RangeParam = DEFAULT_RANGE
) -> Response:
    """The page's HTML: it paints at once; its script then asks ``/dashboard/data/{page}`` for the data."""
    signed_in = presented_secret(request) is not None
    problem = _bad_request(page, user, range_key)
    if problem is not None:
        status = 404 if page not in PAGES else 400
        return error_page(
            request, status, "Not found" if status == 404 else "Bad request", problem, signed_in=signed_in
        )
    try:
        viewer = authorize_viewer(request, user, lambda: _first_known_user(request))
        with _reader(request).cursor() as (cursor, info):
            users: frozenset[str] = per_generation(cursor, "known_users", known_users)
            generation = info.generation
    except SignInRequired as required:
        return sign_in_redirect(request, required.reason, page)
    except Refused as refused:
        heading = "Not your dashboard" if refused.status_code == 403 else "Slow down"
        response = error_page(request, refused.status_code, heading, refused.detail)
        if refused.retry_after is not None:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    except SnapshotUnavailable:
        return error_page(
            request, 503, "No data published yet", "Nothing has been published yet: run a sync, then reload."
        )
    if viewer.user_id is None or viewer.user_id not in users:
        return error_page(
            request,
            404,
            "No data yet",
            f"The serving snapshot has no data for user {viewer.user_id or '(none)'} yet.",
        )
    return html(request, "page.html", **_page_context(PAGES[page], viewer, range_key, users, generation))


def _page_context(
    page: Page, viewer: Viewer, range_key: str, users: frozenset[str], generation: int
) -> dict[str, Any]:
    assert viewer.user_id is not None
    data_query = urlencode({"user": viewer.user_id, "range": range_key})
    return {
        "title": page.title,
        "page": page,
        "slug": page.slug,
        "user_id": viewer.user_id,
        "users": sorted(users) if viewer.key.is_admin else None,
        "range_key": range_key,
        "generation": generation,
        "user_query": f"?{urlencode({'user': viewer.user_id})}" if viewer.key.is_admin else "",
        "pages": [
            {"slug": one.slug, "label": one.nav_label, "href": _href(one.slug, viewer, range_key)}
            for one in PAGES.values()
        ],
        "ranges": [
            {"key": key, "label": RANGE_LABELS[key], "href": _href(page.slug, viewer, key)} for key in RANGES
        ],
        "data_url": f"/dashboard/data/{page.slug}?{data_query}",
    }
