"""/api/v1/users/{user_id}/alerts/...: a user's alert channels, rules, quiet hours and history.

Settings live in the control store (``polar_pipeline.alerts.store``), which the API may write, as it writes
API keys and sync requests; the Dagster sensors read them. A channel URL is checked by Apprise before it is
stored (encrypted, with the key that encrypts the Polar tokens) and never returned, logged or put in an
error message: every answer shows its redacted form. A user's key manages only that user's alerts.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request

from polar_api.deps import UserId
from polar_api.errors import error_response
from polar_api.read.alerts import (
    ChannelIn,
    ChannelList,
    ChannelTestResult,
    ChannelView,
    HistoryView,
    QuietHoursIn,
    QuietHoursView,
    RulesView,
    RuleUpdate,
    RuleView,
    channel_view,
    history_view,
    quiet_hours_view,
    rule_view,
)
from polar_api.read.users import user_exists
from polar_pipeline.alerts.channels import InvalidChannelUrl
from polar_pipeline.alerts.delivery import send_test
from polar_pipeline.alerts.rules import RULES
from polar_pipeline.alerts.store import DELIVERY_STATUSES, AlertStore, UnknownChannel, open_alert_store
from polar_pipeline.connections import open_control_store
from polar_pipeline.control_store import UnknownUser
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.snapshot import SnapshotReader, SnapshotUnavailable

router = APIRouter(prefix="/users/{user_id}/alerts", tags=["alerts"])

ChannelId = Annotated[str, Path(pattern=r"^ch_[0-9a-f]{12}$", description="a channel id (ch_…)")]
RuleName = Annotated[str, Path(max_length=50, description=f"one of {', '.join(RULES)}")]
UNKNOWN_USER = error_response("Unknown user: neither connected nor in the serving snapshot.")
UNKNOWN_CHANNEL = error_response("Unknown user, or no such channel of this user.")


def alert_store(request: Request) -> AlertStore:
    """The app's alert store, opened on first use (its tables are created then)."""
    store: AlertStore | None = getattr(request.app.state, "alert_store", None)
    if store is None:
        store = open_alert_store(request.app.state.settings)
        request.app.state.alert_store = store
    return store


def _zone(settings: Settings, user_id: str) -> str | None:
    try:
        return open_control_store(settings).get_user(user_id).time_zone
    except UnknownUser:
        return None


def require_known(request: Request, user_id: str) -> None:
    """404 unless the user is connected (control store) or has data in the serving snapshot."""
    try:
        open_control_store(request.app.state.settings).get_user(user_id)
        return
    except UnknownUser:
        pass
    reader: SnapshotReader = request.app.state.reader
    try:
        with reader.cursor() as (cursor, _):
            if user_exists(cursor, user_id):
                return
    except SnapshotUnavailable:
        pass
    raise HTTPException(status_code=404, detail=f"unknown user {user_id}: connect them first")


@router.get("/channels", summary="The user's alert channels (redacted)", responses={404: UNKNOWN_USER})
def list_channels(
    request: Request,
    user_id: UserId,
    include_removed: Annotated[bool, Query(description="removed channels too")] = False,
) -> ChannelList:
    require_known(request, user_id)
    channels = alert_store(request).channels(user_id, include_removed=include_removed)
    return ChannelList(user_id=user_id, channels=[channel_view(channel) for channel in channels])


@router.post(
    "/channels",
    status_code=201,
    summary="Add an alert channel (an Apprise URL)",
    description=(
        "Checks the URL with Apprise and stores it encrypted; the answer shows it redacted. Every alert and "
        "weekly digest of the user goes to each of their channels. 400 when Apprise cannot use the URL (the "
        "message says why without repeating it)."
    ),
    responses={
        400: error_response("Apprise cannot use the URL (the reason, never the URL)"),
        404: UNKNOWN_USER,
    },
)
def add_channel(request: Request, user_id: UserId, channel: ChannelIn) -> ChannelView:
    require_known(request, user_id)
    try:
        added = alert_store(request).add_channel(user_id, channel.url, channel.label)
    except (InvalidChannelUrl, ValueError) as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    return channel_view(added)


@router.delete(
    "/channels/{channel_id}",
    summary="Remove an alert channel",
    description="Erases the URL; its deliveries not sent yet are cancelled (shown so in the history).",
    responses={404: UNKNOWN_CHANNEL},
)
def remove_channel(request: Request, user_id: UserId, channel_id: ChannelId) -> ChannelView:
    try:
        return channel_view(alert_store(request).remove_channel(channel_id, user_id))
    except UnknownChannel:
        raise HTTPException(status_code=404, detail=f"no channel {channel_id} of user {user_id}") from None


@router.post(
    "/channels/{channel_id}/test",
    summary="Send a test notification to a channel now",
    description="Outside quiet hours and the history; 502 with the redacted reason when not delivered.",
    responses={404: UNKNOWN_CHANNEL, 502: error_response("The channel did not accept the notification.")},
)
def test_channel(request: Request, user_id: UserId, channel_id: ChannelId) -> ChannelTestResult:
    try:
        result = send_test(alert_store(request), channel_id, user_id)
    except UnknownChannel:
        raise HTTPException(status_code=404, detail=f"no channel {channel_id} of user {user_id}") from None
    if not result.ok:
        raise HTTPException(status_code=502, detail=f"not delivered: {result.error}")
    return ChannelTestResult(channel_id=channel_id, sent=True)


@router.get("/rules", summary="The alert rules, on or off, with their options", responses={404: UNKNOWN_USER})
def list_rules(request: Request, user_id: UserId) -> RulesView:
    require_known(request, user_id)
    settings = alert_store(request).rule_settings(user_id)
    return RulesView(user_id=user_id, rules=[rule_view(setting) for setting in settings.values()])


@router.put(
    "/rules/{rule}",
    summary="Turn a rule on or off, or change its options",
    responses={
        400: error_response("An option the rule does not have, or a value it does not allow."),
        404: error_response("Unknown user or unknown rule."),
    },
)
def update_rule(request: Request, user_id: UserId, rule: RuleName, update: RuleUpdate) -> RuleView:
    if rule not in RULES:
        raise HTTPException(status_code=404, detail=f"unknown rule {rule[:50]!r}: one of {', '.join(RULES)}")
    require_known(request, user_id)
    try:
        setting = alert_store(request).set_rule(user_id, rule, enabled=update.enabled, options=update.options)
    except ValueError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    return rule_view(setting)


@router.get("/quiet-hours", summary="The user's quiet hours", responses={404: UNKNOWN_USER})
def get_quiet_hours(request: Request, user_id: UserId) -> QuietHoursView:
    require_known(request, user_id)
    settings: Settings = request.app.state.settings
    return quiet_hours_view(user_id, alert_store(request).quiet_hours(user_id), _zone(settings, user_id))


@router.put(
    "/quiet-hours",
    summary="Set quiet hours (alerts are held, then delivered when they end)",
    description="HH:MM to HH:MM in the user's own time zone; a start after the end spans midnight.",
    responses={400: error_response("start and end are the same time."), 404: UNKNOWN_USER},
)
def set_quiet_hours(request: Request, user_id: UserId, hours: QuietHoursIn) -> QuietHoursView:
    require_known(request, user_id)
    try:
        stored = alert_store(request).set_quiet_hours(user_id, hours.start, hours.end)
    except ValueError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    return quiet_hours_view(user_id, stored, _zone(request.app.state.settings, user_id))


@router.delete("/quiet-hours", summary="Remove the user's quiet hours", responses={404: UNKNOWN_USER})
def clear_quiet_hours(request: Request, user_id: UserId) -> QuietHoursView:
    require_known(request, user_id)
    alert_store(request).clear_quiet_hours(user_id)
    return quiet_hours_view(user_id, None, _zone(request.app.state.settings, user_id))


@router.get(
    "/history",
    summary="The user's alerts and digests, newest first, with each delivery's outcome",
    responses={404: UNKNOWN_USER},
)
def get_history(
    request: Request,
    user_id: UserId,
    limit: Annotated[int, Query(ge=1, le=500, description="how many of the newest")] = 50,
    rule: Annotated[str | None, Query(max_length=50, description="only this rule")] = None,
    status: Annotated[
        str | None,
        Query(max_length=20, description=f"only with a delivery in: {', '.join(DELIVERY_STATUSES)}"),
    ] = None,
) -> HistoryView:
    require_known(request, user_id)
    store = alert_store(request)
    episodes = store.history(user_id, limit=limit, rule=rule, status=status)
    return history_view(user_id, episodes, store.channels(user_id, include_removed=True))
