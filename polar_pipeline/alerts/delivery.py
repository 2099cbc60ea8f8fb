"""Sending: each due delivery through Apprise, with back-off, quiet hours and the digest's chart attached.

``deliver_due`` claims what is due in small batches (``store.claim_due``: two senders never send one row),
and for each delivery: holds it until the end of the user's quiet hours (in their own zone) if it falls
inside them, else sends it; a success is ``sent``, a failure is retried after the back-off or, past the
retry limit, ``failed``. A sender stops claiming when its time budget is spent (a sensor tick must end);
what it claimed but did not try goes back to ``pending`` untouched.

Apprise answers with a result object carrying its warnings: they become the delivery's error, ``scrub``-bed
of the URL's secrets. Our own log lines name a delivery by its ids and the channel's redacted URL only.
"""

from __future__ import annotations

import logging
import tempfile
import time as monotonic_time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from polar_pipeline.alerts.channels import in_use, redact_url, scrub
from polar_pipeline.alerts.chart import CHART_NAME, render_digest_chart
from polar_pipeline.alerts.rules import WEEKLY_DIGEST
from polar_pipeline.alerts.store import AlertStore, Delivery, DueDelivery, QuietHours
from polar_pipeline.settings import Settings

logger = logging.getLogger(__name__)
CLAIM_BATCH = 10
SEND_TIMEOUT_SECONDS = 30.0
DEFAULT_BUDGET_SECONDS = 40.0
"""A sensor tick's share of sending: Dagster stops a tick after 60 s."""


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None


def send_notification(
    url: str,
    title: str,
    body: str,
    attachments: Sequence[Path] = (),
    *,
    timeout: float = SEND_TIMEOUT_SECONDS,
) -> SendResult:
    """One notification through Apprise; the error, if any, never holds the URL's secrets."""
    with in_use(url):
        from apprise import Apprise

        notifier = Apprise()
        if not notifier.add(url):
            return SendResult(False, "Apprise cannot use this channel URL any more")
        result = notifier.notify(
            body=body, title=title, attach=[str(path) for path in attachments] or None, timeout=timeout
        )
        if result:
            return SendResult(True)
        reasons = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
        reason = "; ".join(dict.fromkeys(reasons)) or f"not delivered ({result.status.name.lower()})"
        return SendResult(False, scrub(reason, [url]))


def quiet_until(hours: QuietHours | None, zone: str | None, now: datetime) -> datetime | None:
    """When the quiet hours around ``now`` end (UTC), or None when ``now`` is outside them."""
    if hours is None:
        return None
    tz = ZoneInfo(zone) if zone else UTC
    local = now.astimezone(tz)
    start, end = (time.fromisoformat(text) for text in (hours.start, hours.end))
    moment = local.time().replace(tzinfo=None)
    if start < end:
        inside, end_day = start <= moment < end, local.date()
    else:  # spans midnight: 22:00-07:00
        inside = moment >= start or moment < end
        end_day = local.date() + timedelta(days=1) if moment >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tz).astimezone(UTC)


@dataclass
class DeliveryReport:
    """What one ``deliver_due`` did."""

    sent: list[Delivery] = field(default_factory=list)
    retrying: list[Delivery] = field(default_factory=list)
    failed: list[Delivery] = field(default_factory=list)
    held: list[Delivery] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.sent)} sent, {len(self.retrying)} to retry, {len(self.failed)} failed, "
            f"{len(self.held)} held for quiet hours"
        )


def _attachments(due: DueDelivery, folder: Path) -> list[Path]:
    if due.delivery.rule != WEEKLY_DIGEST or "series" not in due.details:
        return []
    return [render_digest_chart(due.details, folder / CHART_NAME)]


def deliver_due(
    settings: Settings,
    store: AlertStore,
    zones: Mapping[str, str | None],
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
) -> DeliveryReport:
    """Send every delivery due now (``now()`` is read before each batch), within ``budget_seconds``."""
    report = DeliveryReport()
    deadline = monotonic_time.monotonic() + budget_seconds
    backoff = timedelta(seconds=settings.alert_retry_backoff_seconds)
    quiet: dict[str, QuietHours | None] = {}
    while monotonic_time.monotonic() < deadline:
        claimed = store.claim_due(now(), CLAIM_BATCH)
        if not claimed:
            break
        for index, due in enumerate(claimed):
            delivery, at = due.delivery, now()
            if monotonic_time.monotonic() >= deadline:
                for rest in claimed[index:]:
                    store.release(rest.delivery.delivery_id, at)
                return report
            where = (
                f"delivery {delivery.delivery_id} ({delivery.user_id}, {delivery.rule}) "
                f"to {redact_url(due.url)}"
            )
            if delivery.user_id not in quiet:
                quiet[delivery.user_id] = store.quiet_hours(delivery.user_id)
            until = quiet_until(quiet[delivery.user_id], zones.get(delivery.user_id), at)
            if until is not None:
                report.held.append(store.mark_held(delivery.delivery_id, until, at))
                logger.info(f"{where}: held for quiet hours until {until:%Y-%m-%d %H:%M} UTC")
                continue
            with tempfile.TemporaryDirectory(prefix="polar-alert-") as folder:
                result = send_notification(due.url, due.title, due.body, _attachments(due, Path(folder)))
            if result.ok:
                report.sent.append(store.mark_sent(delivery.delivery_id, now()))
                logger.info(f"{where}: sent")
                continue
            error = result.error or "not delivered"
            updated = store.mark_attempt_failed(
                delivery, error, now(), retry_limit=settings.alert_retry_limit, backoff=backoff
            )
            if updated.status == "failed":
                report.failed.append(updated)
                logger.warning(f"{where}: failed after {updated.attempts} attempts, giving up: {error}")
            else:
                report.retrying.append(updated)
                logger.warning(
                    f"{where}: attempt {updated.attempts} failed, retry at "
                    f"{updated.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC: {error}"
                )
    return report


def send_test(store: AlertStore, channel_id: str, user_id: str | None = None) -> SendResult:
    """A test notification to one channel, now, outside the delivery history and quiet hours."""
    channel = store.channel(channel_id, user_id)
    url = store.channel_url(channel.channel_id)
    return send_notification(
        url,
        "polar-flow: test notification",
        f"This channel ({channel.redacted_url}) receives the alerts and weekly digest of user "
        f"{channel.user_id}. Sent {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
    )
