"""The rules judged at this moment rather than from the tables' days: data going stale, Polar access lost.

Both read what ``polar-flow status`` reads (``status.collect_status``): the live control store (the account's
status, set to ``reauthorize`` on a 401 and ``not_registered`` on a 403 by the sync, and the sync outcomes)
and the snapshot's ``analytics.data_health``, judged again at ``now`` by ``health.judge``. So an alert says
the same as the status report, and comes even when no run happens (the ``alert_deliveries`` sensor looks
every minute).

* ``data_stale``: no new data for ``freshness_warn_hours`` (36 h), with the cause ``health`` tells apart:
  ``not_worn`` (syncs succeed, nothing new), ``sync_failing`` / ``sync_failed`` (the sync itself fails),
  ``sync_overdue`` (nothing ran). The subject is the instant new data last arrived: the staleness ends when
  data comes again, and the next one is a new episode.
* ``access_lost``: the account must be re-authorized. The subject names the status and the last successful
  sync, so losing access again after a reconnection and a good sync is a new episode.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

from polar_pipeline import clock
from polar_pipeline.alerts.channels import scrub
from polar_pipeline.alerts.rules import ACCESS_LOST, DATA_STALE, Episode, Finding, group_episodes
from polar_pipeline.health import NOT_WORN, REAUTHORIZE, SYNC_FAILED, SYNC_FAILING, SYNC_OVERDUE, WARN
from polar_pipeline.settings import Settings
from polar_pipeline.status import UserStatus

STALE_STATES = (NOT_WORN, SYNC_OVERDUE, SYNC_FAILING, SYNC_FAILED)
MAX_ERROR_CHARS = 300


def _stamp(at: datetime | None) -> str:
    return "never" if at is None else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def live_findings(
    settings: Settings,
    statuses: Sequence[UserStatus],
    zones: Mapping[str, str | None],
    enabled: Mapping[str, Collection[str]],
    now: datetime,
) -> list[Finding]:
    """A finding per user whose account or data is in trouble at ``now``, for the rules they have on."""
    found = []
    for status in statuses:
        rules = enabled.get(status.user_id, ())
        zone = zones.get(status.user_id)
        today = clock.today(settings, zone, at=now)
        last_new = status.data.last_new_data_at if status.data else None
        facts = {
            "state": status.state,
            "account_status": status.account_status,
            "hours_without_new_data": status.hours_without_new_data,
            "warn_hours": settings.freshness_warn_hours,
            "last_new_data_at": last_new,
            "last_data_day": status.data.last_data_day if status.data else None,
            "last_sync_at": status.last_sync_at,
            "consecutive_failures": status.consecutive_failures,
            "error": scrub(status.last_error or "no error recorded")[:MAX_ERROR_CHARS],
            "action": status.action,
            "zone": zone,
        }
        if status.state == REAUTHORIZE and ACCESS_LOST in rules:
            subject = f"{status.account_status} after {_stamp(status.last_sync_at)}"
            found.append(Finding(status.user_id, ACCESS_LOST, subject, today, facts))
        elif (
            status.state in STALE_STATES
            and status.freshness == WARN
            and status.hours_without_new_data is not None
            and DATA_STALE in rules
        ):
            subject = f"no new data since {_stamp(last_new)}"
            found.append(Finding(status.user_id, DATA_STALE, subject, today, facts))
    return found


def live_episodes(findings: Sequence[Finding]) -> list[Episode]:
    return group_episodes(findings)
