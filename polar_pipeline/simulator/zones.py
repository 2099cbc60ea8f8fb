"""Wall clocks in a home zone that observes daylight saving time (the opt-in Helsinki persona).

A watch writes its local wall clock plus a UTC offset; across a DST change that offset changes, so the
start and the end of one night may carry different offsets. These helpers turn naive wall clocks into UTC
instants and back, the way ``zoneinfo`` resolves them: a clock inside the skipped spring hour is read with
the offset before the change (``fold=0``), which moves it an hour later on the new clock; a clock inside the
repeated autumn hour is its first occurrence.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

_MINUTE = dt.timedelta(minutes=1)


def local_to_utc(local: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of the naive wall clock ``local`` in ``zone`` (aware, UTC)."""
    return local.replace(tzinfo=zone).astimezone(dt.UTC)


def utc_to_local(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The naive wall clock of the aware ``instant`` in ``zone``."""
    return instant.astimezone(zone).replace(tzinfo=None)


def offset_minutes_at(instant: dt.datetime, zone: ZoneInfo) -> int:
    """The UTC offset of ``zone`` at the aware ``instant``, in minutes east of UTC."""
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset // _MINUTE


def offset_minutes_of_local(local: dt.datetime, zone: ZoneInfo) -> int:
    """The UTC offset a watch in ``zone`` writes beside the naive wall clock ``local``."""
    return offset_minutes_at(local_to_utc(local, zone), zone)


def standard_offset_minutes(zone: ZoneInfo) -> int:
    """The zone's offset outside DST: the smaller of its mid-January and mid-July offsets."""
    return min(
        offset_minutes_of_local(dt.datetime(2025, 1, 15, 12), zone),
        offset_minutes_of_local(dt.datetime(2025, 7, 15, 12), zone),
    )


def skipped_local_minutes(day: dt.date, zone: ZoneInfo) -> tuple[int, int] | None:
    """``(first, end)`` minutes after local midnight of ``day`` that the wall clock skips (spring), or None.

    Found by walking the day's UTC instants minute by minute where the offset changes; a day without a
    forward jump (every other day, and the autumn day, whose repeated hour skips nothing) gives None.
    """
    start = local_to_utc(dt.datetime.combine(day, dt.time()), zone)
    end = local_to_utc(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()), zone)
    before = offset_minutes_at(start, zone)
    if offset_minutes_at(end, zone) <= before:
        return None
    instant = start
    while offset_minutes_at(instant + 15 * _MINUTE, zone) == before:  # coarse steps, then minutes
        instant += 15 * _MINUTE
    while offset_minutes_at(instant, zone) == before:
        instant += _MINUTE
    first = (instant - start) // _MINUTE  # the old clock ran since midnight, so this is its wall time
    return first, first + offset_minutes_at(instant, zone) - before
