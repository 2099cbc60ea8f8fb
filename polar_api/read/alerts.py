"""A user's alert channels, rules, quiet hours and history as the API shows them, from the control store.

Like ``sync``, this module reads the control store (``polar_pipeline.alerts.store``), not the serving
snapshot: alert settings change between publishes, and the API may write them. A channel is only ever shown
redacted (``channels.redact_url``): its URL and secrets never leave the store except to be sent to.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from polar_pipeline.alerts.store import (
    Channel,
    Delivery,
    DeliveryStatus,
    QuietHours,
    RecordedEpisode,
    RuleSetting,
)


class ChannelView(BaseModel):
    """A notification channel (an Apprise URL), shown redacted."""

    channel_id: str
    redacted_url: str = Field(
        description="scheme and host only when the host is a network address; every other part masked"
    )
    scheme: str = Field(description="the Apprise service, e.g. json, mailto, ntfy, tgram")
    label: str
    created_at: datetime
    removed_at: datetime | None = Field(description="set once removed (the URL is erased then)")


class ChannelList(BaseModel):
    user_id: str
    channels: list[ChannelView]


class ChannelIn(BaseModel):
    """A new channel: an Apprise URL, checked by Apprise before it is stored encrypted."""

    url: str = Field(
        min_length=1,
        max_length=2000,
        description=(
            "an Apprise URL, e.g. json://host:port/path, mailto://user:password@example.com?to=..., "
            "ntfy://topic, tgram://bot_token/chat_id (https://appriseit.com/services/); never echoed back"
        ),
    )
    label: str = Field(default="", max_length=100, description="a name to recognise the channel by")


class ChannelTestResult(BaseModel):
    channel_id: str
    sent: bool


class RuleView(BaseModel):
    rule: str
    enabled: bool
    options: dict[str, Any] = Field(description="the rule's options with their current values")
    description: str
    customised: bool = Field(description="false while the user has kept the defaults")


class RulesView(BaseModel):
    user_id: str
    rules: list[RuleView]


class RuleUpdate(BaseModel):
    """Turn a rule on or off, and/or change some of its options (the others keep their values)."""

    enabled: bool | None = None
    options: dict[str, bool | int | str | None] | None = Field(
        default=None, description='e.g. {"persist_days": 5} or {"weekday": "sun", "time": "19:00"}'
    )


class QuietHoursIn(BaseModel):
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM in the user's zone")
    end: str = Field(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM; before start spans midnight"
    )


class QuietHoursView(BaseModel):
    user_id: str
    start: str | None = Field(description="HH:MM in the user's time zone; null: no quiet hours")
    end: str | None
    time_zone: str | None = Field(description="the user's IANA zone (null: UTC until one is known)")


class DeliveryView(BaseModel):
    delivery_id: str
    channel_id: str
    channel: str = Field(description="the channel's redacted URL")
    status: DeliveryStatus = Field(
        description=(
            "pending: to be sent (retried after a back-off when an attempt failed); held: until quiet hours "
            "end; sending; sent; failed: every retry failed, or the sender stopped while sending; cancelled: "
            "the channel was removed first"
        )
    )
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class EpisodeView(BaseModel):
    """One alert (or weekly digest) as recorded, with its deliveries."""

    rule: str
    episode_key: str = Field(description="with the user and rule, what makes an alert unique")
    first_day: date
    last_day: date = Field(description="the latest day the condition was seen on")
    title: str
    body: str
    recorded_at: datetime
    deliveries: list[DeliveryView] = Field(description="one per channel the user had then; none: no channel")


class HistoryView(BaseModel):
    user_id: str
    episodes: list[EpisodeView]


def channel_view(channel: Channel) -> ChannelView:
    return ChannelView(
        channel_id=channel.channel_id,
        redacted_url=channel.redacted_url,
        scheme=channel.scheme,
        label=channel.label,
        created_at=channel.created_at,
        removed_at=channel.removed_at,
    )


def rule_view(setting: RuleSetting) -> RuleView:
    return RuleView(
        rule=setting.rule,
        enabled=setting.enabled,
        options=setting.options,
        description=setting.description,
        customised=setting.customised,
    )


def quiet_hours_view(user_id: str, hours: QuietHours | None, zone: str | None) -> QuietHoursView:
    return QuietHoursView(
        user_id=user_id,
        start=hours.start if hours else None,
        end=hours.end if hours else None,
        time_zone=zone,
    )


def _delivery_view(delivery: Delivery, channels: dict[str, Channel]) -> DeliveryView:
    channel = channels.get(delivery.channel_id)
    return DeliveryView(
        delivery_id=delivery.delivery_id,
        channel_id=delivery.channel_id,
        channel=channel.redacted_url if channel else "?",
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        sent_at=delivery.sent_at,
    )


def history_view(user_id: str, episodes: list[RecordedEpisode], channels: list[Channel]) -> HistoryView:
    by_id = {channel.channel_id: channel for channel in channels}
    return HistoryView(
        user_id=user_id,
        episodes=[
            EpisodeView(
                rule=episode.rule,
                episode_key=episode.episode_key,
                first_day=episode.first_day,
                last_day=episode.last_day,
                title=episode.title,
                body=episode.body,
                recorded_at=episode.recorded_at,
                deliveries=[_delivery_view(delivery, by_id) for delivery in episode.deliveries],
            )
            for episode in episodes
        ],
    )
