"""Alert channels, settings, episodes and deliveries, in the control store's SQLite file beside the users.

* ``alert_channels``: a user's Apprise URLs, Fernet-encrypted with the key that encrypts the Polar tokens
  (``POLAR_ENCRYPTION_KEY`` or the 0600 key file), and their redacted form, the only one ever shown.
  Removing a channel erases its encrypted URL and keeps the redacted one for the history.
* ``alert_rule_settings`` and ``alert_quiet_hours``: per-user rule switches and options, and the hours (in
  the user's own time zone) during which deliveries are held.
* ``alert_episodes``: every episode recorded, keyed ``(user_id, rule, episode_key)``. Recording looks for
  an episode of the same user, rule and subject whose days overlap (or come within ``GAP_DAYS``) under the
  write lock first, so a re-evaluation extends that episode instead of opening a second one.
* ``alert_deliveries``: one row per episode and channel (unique), created with the episode. A delivery is
  ``pending`` until sent; a failed attempt waits ``backoff × 2^(attempts-1)`` and after ``retry_limit``
  retries becomes ``failed`` (shown by ``polar-flow status`` and the API's history); during quiet hours it
  is ``held`` until they end. A sender claims rows (``sending``) under the write lock before sending, so two
  senders never send one row; a claim left by a process that died while sending is marked ``failed``
  ("interrupted"), not sent again: it may have arrived, and an alert must never arrive twice.

Nothing here is dropped silently: a removed channel's pending deliveries become ``cancelled`` with the
reason, an episode recorded while a user had no channel says so in the history.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken

from polar_pipeline.alerts.channels import check_channel_url
from polar_pipeline.alerts.rules import GAP_DAYS, RULES, Episode, rule_spec
from polar_pipeline.alerts.texts import Message
from polar_pipeline.control_store import ControlTables, load_or_create_key, validate_user_id
from polar_pipeline.settings import Settings

DeliveryStatus = Literal["pending", "held", "sending", "sent", "failed", "cancelled"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "held", "sending", "sent", "failed", "cancelled")
DUE_STATUSES = ("pending", "held")
CLAIM_LEASE = timedelta(minutes=10)
"""A claim older than this was left by a sender that stopped: marked failed, never sent again."""
MAX_ERROR_CHARS = 1000
MAX_LABEL_CHARS = 100
HH_MM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_channels (
    channel_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    url_encrypted BLOB,
    redacted_url TEXT NOT NULL,
    scheme TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    removed_at TEXT
);
CREATE INDEX IF NOT EXISTS alert_channels_by_user ON alert_channels (user_id, created_at);
CREATE TABLE IF NOT EXISTS alert_rule_settings (
    user_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    options TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, rule)
);
CREATE TABLE IF NOT EXISTS alert_quiet_hours (
    user_id TEXT PRIMARY KEY,
    start_time TEXT NOT NULL,
    end_time TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_episodes (
    user_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    episode_key TEXT NOT NULL,
    subject TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}',
    recorded_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, rule, episode_key)
);
CREATE INDEX IF NOT EXISTS alert_episodes_by_subject ON alert_episodes (user_id, rule, subject, last_day);
CREATE INDEX IF NOT EXISTS alert_episodes_by_time ON alert_episodes (user_id, recorded_at);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    delivery_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    episode_key TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'held', 'sending', 'sent', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sent_at TEXT,
    UNIQUE (user_id, rule, episode_key, channel_id)
);
CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS alert_deliveries_by_episode ON alert_deliveries (user_id, rule, episode_key);
"""


class UnknownChannel(KeyError):
    """No such channel (or not this user's)."""


def _stamp(at: datetime) -> str:
    """Fixed-width UTC text, so stored instants sort as text."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _instant(text: object) -> datetime | None:
    return None if text is None else datetime.fromisoformat(str(text))


@dataclass(frozen=True)
class Channel:
    """A channel as it may be shown: never its URL."""

    channel_id: str
    user_id: str
    redacted_url: str
    scheme: str
    label: str
    created_at: datetime
    removed_at: datetime | None

    @property
    def active(self) -> bool:
        return self.removed_at is None


@dataclass(frozen=True)
class RuleSetting:
    """A user's switch and options for one rule (the defaults until they change them)."""

    rule: str
    enabled: bool
    options: dict[str, Any]
    description: str
    customised: bool


@dataclass(frozen=True)
class QuietHours:
    """``start``..``end`` (HH:MM) in the user's own zone; ``start > end`` spans midnight."""

    start: str
    end: str


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    user_id: str
    rule: str
    episode_key: str
    channel_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class RecordedEpisode:
    """An episode as stored, with what was (or will be) sent and its deliveries."""

    user_id: str
    rule: str
    episode_key: str
    subject: str
    first_day: date
    last_day: date
    title: str
    body: str
    details: dict[str, Any]
    recorded_at: datetime
    deliveries: tuple[Delivery, ...] = ()


@dataclass(frozen=True)
class FailedDelivery:
    """A delivery that gave up, for ``polar-flow status``: what it was, where to, and why."""

    delivery_id: str
    user_id: str
    rule: str
    title: str
    channel: str
    attempts: int
    last_error: str | None
    failed_at: datetime


@dataclass(frozen=True)
class DueDelivery:
    """A claimed delivery with what a sender needs; ``url`` is decrypted only for the send."""

    delivery: Delivery
    url: str
    title: str
    body: str
    details: dict[str, Any]


_DELIVERY_COLUMNS = (
    "delivery_id, user_id, rule, episode_key, channel_id, status, attempts, next_attempt_at, last_error, "
    "created_at, updated_at, sent_at"
)
_EPISODE_COLUMNS = (
    "user_id, rule, episode_key, subject, first_day, last_day, title, body, details, recorded_at"
)
_CLAIM_COLUMNS = ", ".join("d." + column.strip() for column in _DELIVERY_COLUMNS.split(","))
_CHANNEL_COLUMNS = "channel_id, user_id, redacted_url, scheme, label, created_at, removed_at"


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        delivery_id=str(row[0]),
        user_id=str(row[1]),
        rule=str(row[2]),
        episode_key=str(row[3]),
        channel_id=str(row[4]),
        status=row[5],
        attempts=int(row[6]),
        next_attempt_at=_instant(row[7]),
        last_error=None if row[8] is None else str(row[8]),
        created_at=datetime.fromisoformat(str(row[9])),
        updated_at=datetime.fromisoformat(str(row[10])),
        sent_at=_instant(row[11]),
    )


def _episode(row: Sequence[Any], deliveries: Sequence[Delivery] = ()) -> RecordedEpisode:
    return RecordedEpisode(
        user_id=str(row[0]),
        rule=str(row[1]),
        episode_key=str(row[2]),
        subject=str(row[3]),
        first_day=date.fromisoformat(str(row[4])),
        last_day=date.fromisoformat(str(row[5])),
        title=str(row[6]),
        body=str(row[7]),
        details=json.loads(str(row[8])),
        recorded_at=datetime.fromisoformat(str(row[9])),
        deliveries=tuple(deliveries),
    )


def _channel(row: Sequence[Any]) -> Channel:
    return Channel(
        channel_id=str(row[0]),
        user_id=str(row[1]),
        redacted_url=str(row[2]),
        scheme=str(row[3]),
        label=str(row[4]),
        created_at=datetime.fromisoformat(str(row[5])),
        removed_at=_instant(row[6]),
    )


def check_quiet_hours(start: str, end: str) -> QuietHours:
    for name, value in (("start", start), ("end", end)):
        if not HH_MM.fullmatch(value):
            raise ValueError(f"quiet hours {name} must be HH:MM (00:00-23:59), got {value[:20]!r}")
    if start == end:
        raise ValueError("quiet hours start and end must differ (the same time would hold alerts forever)")
    return QuietHours(start, end)


def _json_default(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class AlertStore(ControlTables):
    """The alert tables of the control store file."""

    SCHEMA = SCHEMA

    def __init__(self, path: Path, key: bytes) -> None:
        self._fernet = Fernet(key)
        super().__init__(path)

    # -- channels ---------------------------------------------------------------------------------------

    def add_channel(self, user_id: str, url: str, label: str = "", *, now: datetime | None = None) -> Channel:
        """Check ``url`` with Apprise and store it encrypted; ``InvalidChannelUrl`` when it cannot be used."""
        validate_user_id(user_id)
        label = label.strip()
        if len(label) > MAX_LABEL_CHARS or not label.isprintable():
            raise ValueError(f"a channel label is at most {MAX_LABEL_CHARS} printable characters")
        checked = check_channel_url(url)
        channel_id = "ch_" + secrets.token_hex(6)
        stamp = _stamp(now or datetime.now(UTC))
        with self._connect() as con:
            con.execute(
                "INSERT INTO alert_channels (channel_id, user_id, url_encrypted, redacted_url, scheme, "
                "label, created_at, removed_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    channel_id,
                    user_id,
                    self._fernet.encrypt(checked.url.encode()),
                    checked.redacted,
                    checked.scheme,
                    label,
                    stamp,
                ),
            )
        return self.channel(channel_id)

    def channel(self, channel_id: str, user_id: str | None = None) -> Channel:
        with self._connect() as con:
            row = con.execute(
                f"SELECT {_CHANNEL_COLUMNS} FROM alert_channels WHERE channel_id = ? "
                "AND (? IS NULL OR user_id = ?)",
                (channel_id, user_id, user_id),
            ).fetchone()
        if row is None:
            raise UnknownChannel(channel_id)
        return _channel(row)

    def channels(self, user_id: str | None = None, *, include_removed: bool = False) -> list[Channel]:
        """A user's channels (or everyone's), oldest first; removed ones only when asked."""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {_CHANNEL_COLUMNS} FROM alert_channels WHERE (? IS NULL OR user_id = ?) "
                "AND (? OR removed_at IS NULL) ORDER BY user_id, created_at, channel_id",
                (user_id, user_id, include_removed),
            ).fetchall()
        return [_channel(row) for row in rows]

    def channel_url(self, channel_id: str) -> str:
        """The decrypted URL, for sending only: never log or return it."""
        with self._connect() as con:
            row = con.execute(
                "SELECT url_encrypted FROM alert_channels WHERE channel_id = ? AND removed_at IS NULL",
                (channel_id,),
            ).fetchone()
        if row is None or row[0] is None:
            raise UnknownChannel(channel_id)
        try:
            return self._fernet.decrypt(row[0]).decode()
        except InvalidToken:
            raise RuntimeError(
                f"channel {channel_id} cannot be decrypted with the current key (POLAR_ENCRYPTION_KEY)"
            ) from None

    def remove_channel(
        self, channel_id: str, user_id: str | None = None, *, now: datetime | None = None
    ) -> Channel:
        """Erase the URL (keeping the redacted form for the history); its pending deliveries are cancelled."""
        stamp = _stamp(now or datetime.now(UTC))
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            updated = con.execute(
                "UPDATE alert_channels SET url_encrypted = NULL, removed_at = ? WHERE channel_id = ? "
                "AND removed_at IS NULL AND (? IS NULL OR user_id = ?)",
                (stamp, channel_id, user_id, user_id),
            ).rowcount
            if not updated:
                raise UnknownChannel(channel_id)
            con.execute(
                "UPDATE alert_deliveries SET status = 'cancelled', last_error = 'the channel was removed', "
                "next_attempt_at = NULL, updated_at = ? WHERE channel_id = ? "
                "AND status IN ('pending', 'held')",
                (stamp, channel_id),
            )
        return self.channel(channel_id)

    # -- rule settings and quiet hours --------------------------------------------------------------------

    def rule_settings(self, user_id: str) -> dict[str, RuleSetting]:
        """Every rule for the user, by name: stored choices over the defaults (every rule on)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT rule, enabled, options FROM alert_rule_settings WHERE user_id = ?", (user_id,)
            ).fetchall()
        stored = {str(rule): (bool(enabled), json.loads(str(options))) for rule, enabled, options in rows}
        settings = {}
        for name, spec in RULES.items():
            enabled, options = stored.get(name, (True, {}))
            known = {key: value for key, value in options.items() if key in spec.defaults()}
            settings[name] = RuleSetting(
                name, enabled, spec.defaults() | known, spec.description, customised=name in stored
            )
        return settings

    def set_rule(
        self,
        user_id: str,
        rule: str,
        *,
        enabled: bool | None = None,
        options: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> RuleSetting:
        """Turn a rule on or off and/or change some of its options (each checked, else ``ValueError``)."""
        validate_user_id(user_id)
        spec = rule_spec(rule)
        current = self.rule_settings(user_id)[rule]
        merged = spec.checked_options({**current.options, **(options or {})})
        with self._connect() as con:
            con.execute(
                "INSERT INTO alert_rule_settings (user_id, rule, enabled, options, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, rule) DO UPDATE SET "
                "enabled = excluded.enabled, options = excluded.options, updated_at = excluded.updated_at",
                (
                    user_id,
                    rule,
                    int(current.enabled if enabled is None else enabled),
                    json.dumps(merged, sort_keys=True),
                    _stamp(now or datetime.now(UTC)),
                ),
            )
        return self.rule_settings(user_id)[rule]

    def quiet_hours(self, user_id: str) -> QuietHours | None:
        with self._connect() as con:
            row = con.execute(
                "SELECT start_time, end_time FROM alert_quiet_hours WHERE user_id = ?", (user_id,)
            ).fetchone()
        return None if row is None else QuietHours(str(row[0]), str(row[1]))

    def set_quiet_hours(
        self, user_id: str, start: str, end: str, *, now: datetime | None = None
    ) -> QuietHours:
        validate_user_id(user_id)
        hours = check_quiet_hours(start, end)
        with self._connect() as con:
            con.execute(
                "INSERT INTO alert_quiet_hours (user_id, start_time, end_time, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET start_time = excluded.start_time, "
                "end_time = excluded.end_time, updated_at = excluded.updated_at",
                (user_id, hours.start, hours.end, _stamp(now or datetime.now(UTC))),
            )
        return hours

    def clear_quiet_hours(self, user_id: str) -> bool:
        with self._connect() as con:
            return bool(con.execute("DELETE FROM alert_quiet_hours WHERE user_id = ?", (user_id,)).rowcount)

    # -- episodes and deliveries ----------------------------------------------------------------------------

    def record_episode(
        self,
        episode: Episode,
        message: Message,
        *,
        now: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> RecordedEpisode | None:
        """Record ``episode`` and a pending delivery per active channel of its user, unless the store has
        it already (same user, rule and subject, days overlapping or within ``GAP_DAYS``): then its last day
        is moved on and None is returned. One transaction under the write lock: a concurrent evaluator
        waits and then finds this episode.
        """
        stamp = _stamp(now)
        first, last = episode.first_day.isoformat(), episode.last_day.isoformat()
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            existing = con.execute(
                "SELECT episode_key, last_day FROM alert_episodes WHERE user_id = ? AND rule = ? "
                "AND subject = ? AND first_day <= ? AND last_day >= ? ORDER BY first_day LIMIT 1",
                (
                    episode.user_id,
                    episode.rule,
                    episode.subject,
                    (episode.last_day + timedelta(days=GAP_DAYS + 1)).isoformat(),
                    (episode.first_day - timedelta(days=GAP_DAYS + 1)).isoformat(),
                ),
            ).fetchone()
            if existing is not None:
                if str(existing[1]) < last:
                    con.execute(
                        "UPDATE alert_episodes SET last_day = ?, updated_at = ? WHERE user_id = ? "
                        "AND rule = ? AND episode_key = ?",
                        (last, stamp, episode.user_id, episode.rule, existing[0]),
                    )
                return None
            inserted = con.execute(
                f"INSERT OR IGNORE INTO alert_episodes ({_EPISODE_COLUMNS}, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    episode.user_id,
                    episode.rule,
                    episode.key,
                    episode.subject,
                    first,
                    last,
                    message.title,
                    message.body,
                    json.dumps(dict(details or {}), default=_json_default, sort_keys=True),
                    stamp,
                    stamp,
                ),
            ).rowcount
            if not inserted:
                return None
            channels = con.execute(
                "SELECT channel_id FROM alert_channels WHERE user_id = ? AND removed_at IS NULL",
                (episode.user_id,),
            ).fetchall()
            for (channel_id,) in channels:
                con.execute(
                    f"INSERT OR IGNORE INTO alert_deliveries ({_DELIVERY_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, NULL, ?, ?, NULL)",
                    (
                        "dl_" + secrets.token_hex(8),
                        episode.user_id,
                        episode.rule,
                        episode.key,
                        channel_id,
                        stamp,
                        stamp,
                        stamp,
                    ),
                )
        return self.episode(episode.user_id, episode.rule, episode.key)

    def episode(self, user_id: str, rule: str, episode_key: str) -> RecordedEpisode | None:
        with self._connect() as con:
            row = con.execute(
                f"SELECT {_EPISODE_COLUMNS} FROM alert_episodes WHERE user_id = ? AND rule = ? "
                "AND episode_key = ?",
                (user_id, rule, episode_key),
            ).fetchone()
            if row is None:
                return None
            deliveries = con.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM alert_deliveries WHERE user_id = ? AND rule = ? "
                "AND episode_key = ? ORDER BY created_at, channel_id",
                (user_id, rule, episode_key),
            ).fetchall()
        return _episode(row, [_delivery(d) for d in deliveries])

    def has_episode(self, user_id: str, rule: str, episode_key: str) -> bool:
        with self._connect() as con:
            return (
                con.execute(
                    "SELECT 1 FROM alert_episodes WHERE user_id = ? AND rule = ? AND episode_key = ?",
                    (user_id, rule, episode_key),
                ).fetchone()
                is not None
            )

    def history(
        self, user_id: str, *, limit: int = 50, rule: str | None = None, status: str | None = None
    ) -> list[RecordedEpisode]:
        """The user's episodes, newest first, each with its deliveries; ``status``: only episodes with a
        delivery in that status."""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {_EPISODE_COLUMNS} FROM alert_episodes e WHERE user_id = ? "
                "AND (? IS NULL OR rule = ?) AND (? IS NULL OR EXISTS (SELECT 1 FROM alert_deliveries d "
                "WHERE d.user_id = e.user_id AND d.rule = e.rule AND d.episode_key = e.episode_key "
                "AND d.status = ?)) "
                "ORDER BY recorded_at DESC, rule, episode_key LIMIT ?",
                (user_id, rule, rule, status, status, limit),
            ).fetchall()
            deliveries = con.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM alert_deliveries WHERE user_id = ? ORDER BY created_at, "
                "channel_id",
                (user_id,),
            ).fetchall()
        by_episode: dict[tuple[str, str], list[Delivery]] = {}
        for row in deliveries:
            delivery = _delivery(row)
            by_episode.setdefault((delivery.rule, delivery.episode_key), []).append(delivery)
        return [_episode(row, by_episode.get((str(row[1]), str(row[2])), [])) for row in rows]

    def deliveries(self, user_id: str | None = None, status: str | None = None) -> list[Delivery]:
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM alert_deliveries WHERE (? IS NULL OR user_id = ?) "
                "AND (? IS NULL OR status = ?) ORDER BY created_at, delivery_id",
                (user_id, user_id, status, status),
            ).fetchall()
        return [_delivery(row) for row in rows]

    def _expire_claims(self, con: sqlite3.Connection, now: datetime) -> None:
        con.execute(
            "UPDATE alert_deliveries SET status = 'failed', next_attempt_at = NULL, updated_at = ?, "
            "last_error = 'interrupted while sending (the sender stopped): not sent again, since it may have "
            "arrived' WHERE status = 'sending' AND updated_at < ?",
            (_stamp(now), _stamp(now - CLAIM_LEASE)),
        )

    def claim_due(self, now: datetime, limit: int = 50) -> list[DueDelivery]:
        """Claim up to ``limit`` deliveries due at ``now`` (``sending``), oldest first, with their URLs."""
        stamp = _stamp(now)
        claimed: list[tuple[Delivery, bytes | None, str, str, str]] = []
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            self._expire_claims(con, now)
            rows = con.execute(
                f"SELECT {_CLAIM_COLUMNS}, c.url_encrypted, e.title, e.body, e.details "
                "FROM alert_deliveries d "
                "JOIN alert_episodes e USING (user_id, rule, episode_key) "
                "JOIN alert_channels c ON c.channel_id = d.channel_id "
                "WHERE d.status IN ('pending', 'held') AND d.next_attempt_at <= ? "
                "ORDER BY d.next_attempt_at, d.delivery_id LIMIT ?",
                (stamp, limit),
            ).fetchall()
            for row in rows:
                con.execute(
                    "UPDATE alert_deliveries SET status = 'sending', updated_at = ? WHERE delivery_id = ?",
                    (stamp, row[0]),
                )
                claimed.append((_delivery(row[:12]), row[12], str(row[13]), str(row[14]), str(row[15])))
        due = []
        for delivery, encrypted, title, body, details in claimed:
            if encrypted is None:  # removed between the episode and now
                self._finish(delivery.delivery_id, "cancelled", now, error="the channel was removed")
                continue
            try:
                url = self._fernet.decrypt(encrypted).decode()
            except InvalidToken:
                error = "the channel URL cannot be decrypted with the current key (POLAR_ENCRYPTION_KEY)"
                self._finish(delivery.delivery_id, "failed", now, error=error)
                continue
            due.append(DueDelivery(delivery, url, title, body, json.loads(details)))
        return due

    def _finish(
        self,
        delivery_id: str,
        status: DeliveryStatus,
        now: datetime,
        *,
        error: str | None = None,
        attempts_delta: int = 0,
        next_attempt_at: datetime | None = None,
    ) -> Delivery:
        stamp = _stamp(now)
        with self._connect() as con:
            con.execute(
                "UPDATE alert_deliveries SET status = ?, attempts = attempts + ?, last_error = ?, "
                "next_attempt_at = ?, updated_at = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END "
                "WHERE delivery_id = ?",
                (
                    status,
                    attempts_delta,
                    None if error is None else error[:MAX_ERROR_CHARS],
                    None if next_attempt_at is None else _stamp(next_attempt_at),
                    stamp,
                    status,
                    stamp,
                    delivery_id,
                ),
            )
            row = con.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM alert_deliveries WHERE delivery_id = ?", (delivery_id,)
            ).fetchone()
        return _delivery(row)

    def release(self, delivery_id: str, now: datetime) -> Delivery:
        """Give back a claimed delivery that was not tried: due again at once, no attempt counted."""
        return self._finish(delivery_id, "pending", now, next_attempt_at=now)

    def mark_sent(self, delivery_id: str, now: datetime) -> Delivery:
        return self._finish(delivery_id, "sent", now, attempts_delta=1)

    def mark_held(self, delivery_id: str, until: datetime, now: datetime) -> Delivery:
        return self._finish(delivery_id, "held", now, error="quiet hours", next_attempt_at=until)

    def mark_attempt_failed(
        self, delivery: Delivery, error: str, now: datetime, *, retry_limit: int, backoff: timedelta
    ) -> Delivery:
        """Count a failed attempt: retry after ``backoff × 2^(attempts-1)``, or ``failed`` past the limit."""
        attempts = delivery.attempts + 1
        if attempts > retry_limit:
            return self._finish(delivery.delivery_id, "failed", now, error=error, attempts_delta=1)
        wait = backoff * (1 << (attempts - 1))
        return self._finish(
            delivery.delivery_id, "pending", now, error=error, attempts_delta=1, next_attempt_at=now + wait
        )

    def next_due_at(self) -> datetime | None:
        """When the earliest pending or held delivery is due (None: nothing waits)."""
        with self._connect() as con:
            row = con.execute(
                "SELECT min(next_attempt_at) FROM alert_deliveries WHERE status IN ('pending', 'held')"
            ).fetchone()
        return None if row is None or row[0] is None else datetime.fromisoformat(str(row[0]))

    def failed_deliveries(self, since: datetime) -> list[FailedDelivery]:
        """Deliveries that ended ``failed`` at or after ``since``, newest first."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT d.delivery_id, d.user_id, d.rule, e.title, c.redacted_url, d.attempts, d.last_error, "
                "d.updated_at FROM alert_deliveries d "
                "JOIN alert_episodes e USING (user_id, rule, episode_key) "
                "JOIN alert_channels c ON c.channel_id = d.channel_id WHERE d.status = 'failed' "
                "AND d.updated_at >= ? ORDER BY d.updated_at DESC, d.delivery_id",
                (_stamp(since),),
            ).fetchall()
        return [
            FailedDelivery(
                str(row[0]),
                str(row[1]),
                str(row[2]),
                str(row[3]),
                str(row[4]),
                int(row[5]),
                None if row[6] is None else str(row[6]),
                datetime.fromisoformat(str(row[7])),
            )
            for row in rows
        ]

    def iter_users(self) -> Iterator[str]:
        """Users with an active channel."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT DISTINCT user_id FROM alert_channels WHERE removed_at IS NULL ORDER BY user_id"
            ).fetchall()
        return (str(row[0]) for row in rows)


def open_alert_store(settings: Settings) -> AlertStore:
    """The alert tables of ``settings``' control store, with the token encryption key."""
    return AlertStore(
        settings.control_store_path, load_or_create_key(settings.key_file, settings.encryption_key)
    )
