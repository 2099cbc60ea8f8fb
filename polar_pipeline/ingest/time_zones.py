"""Each user's default time zone, read from their newest records (docs/time-zones.md).

AccessLink gives UTC offsets, never zone names. So until the person names their zone
(``polar-flow users set-zone``), a user's zone is a zone with the offset of their newest record that carries
one: the end of the newest night (``sleep_end_time``) or the start of the newest exercise, whichever is
later. For a whole-hour offset that is IANA's fixed-offset ``Etc/GMT±N`` (POSIX signs: ``Etc/GMT-2`` is
UTC+02:00); IANA has no fixed-offset zone for the half- and quarter-hour offsets, so those map to the zone
that uses that offset. ``user_zones.record_time_zones`` feeds this the rows ``warehouse.schema`` reads and
keeps the result in the control store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from polar_pipeline.accesslink.errors import PayloadError
from polar_pipeline.accesslink.parsing import parse_timestamp

ZONES_FOR_PART_HOUR_OFFSETS: dict[int, str] = {
    -570: "Pacific/Marquesas",
    -210: "America/St_Johns",  # Newfoundland standard time (its summer -02:30 is below)
    -150: "America/St_Johns",
    210: "Asia/Tehran",
    270: "Asia/Kabul",
    330: "Asia/Kolkata",
    345: "Asia/Kathmandu",
    390: "Asia/Yangon",
    525: "Australia/Eucla",
    570: "Australia/Darwin",
    630: "Australia/Lord_Howe",
    765: "Pacific/Chatham",
    825: "Pacific/Chatham",
}
"""Offsets that are not whole hours, and the zone that uses each (no IANA zone is fixed at them)."""


def zone_for_offset(offset_minutes: int) -> str | None:
    """A zone whose offset is ``offset_minutes`` east of UTC, or None when none is known."""
    hours, minutes = divmod(offset_minutes, 60)
    if minutes == 0 and -12 <= hours <= 14:
        return "Etc/UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"
    return ZONES_FOR_PART_HOUR_OFFSETS.get(offset_minutes)


@dataclass(frozen=True)
class SeenOffset:
    """The UTC offset of a user's newest record that has one, and that record's instant."""

    offset_minutes: int
    seen_at: datetime


def offset_of(time_text: str | None, offset_text: str | None) -> SeenOffset | None:
    """The instant and offset of a zoned time, or of a naive one with its offset in minutes; else None."""
    try:
        moment = parse_timestamp(time_text)
        offset = moment.utcoffset()
        if offset is not None:  # a zoned time decides by itself, as in the sync client
            return SeenOffset(offset // timedelta(minutes=1), moment.astimezone(UTC))
        minutes = int(offset_text) if offset_text is not None else None
    except (PayloadError, ValueError):
        return None  # the raw row's validation reason is the quarantine's business, not the zone's
    if minutes is None:
        return None
    return SeenOffset(minutes, (moment - timedelta(minutes=minutes)).replace(tzinfo=UTC))


def newest_offsets(rows: Iterable[tuple[str, str | None, str | None]]) -> dict[str, SeenOffset]:
    """Per user, the offset at the latest instant among ``(user_id, time text, offset text)`` rows."""
    newest: dict[str, SeenOffset] = {}
    for user_id, time_text, offset_text in rows:
        seen = offset_of(time_text, offset_text)
        if seen is not None and (user_id not in newest or seen.seen_at > newest[user_id].seen_at):
            newest[user_id] = seen
    return newest
