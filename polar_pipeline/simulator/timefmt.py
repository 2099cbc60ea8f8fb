"""Wire formats of AccessLink timestamps and durations (styles differ per resource: docs/accesslink.md §6)."""

from __future__ import annotations

import datetime as dt


def offset_suffix(offset_minutes: int) -> str:
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def iso_local_ms(local: dt.datetime, offset_minutes: int) -> str:
    """Sleep style: ``2025-09-30T23:33:22.675+01:00`` (local wall clock, milliseconds, numeric offset)."""
    millis = local.microsecond // 1000
    return f"{local.strftime('%Y-%m-%dT%H:%M:%S')}.{millis:03d}{offset_suffix(offset_minutes)}"


def iso_utc_z(instant: dt.datetime) -> str:
    """Exercise ``upload_time`` style: ``2026-02-22T10:25:50Z`` (UTC, no milliseconds)."""
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc_ms_z(instant: dt.datetime) -> str:
    """User ``registration-date`` style: ``2011-10-14T12:50:37.000Z``."""
    utc = instant.astimezone(dt.UTC)
    return f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}.{utc.microsecond // 1000:03d}Z"


def naive_seconds(local: dt.datetime) -> str:
    """Exercise ``start_time`` style: naive local wall clock with seconds."""
    return local.strftime("%Y-%m-%dT%H:%M:%S")


def naive_short(local: dt.datetime) -> str:
    """Activity style: naive local, ``:SS`` dropped when the seconds are zero (``2025-09-26T00:49``)."""
    if local.second == 0:
        return local.strftime("%Y-%m-%dT%H:%M")
    return local.strftime("%Y-%m-%dT%H:%M:%S")


def iso_duration(total_seconds: int) -> str:
    """Activity / zone style: ``PT7H22M``, ``PT8H33M30S``, ``PT0S``."""
    hours, rest = divmod(int(total_seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if seconds or text == "PT":
        text += f"{seconds}S"
    return text


def iso_duration_seconds_ms(seconds: float) -> str:
    """Real exercise style: seconds only, with milliseconds (``PT2460.605S``)."""
    return f"PT{seconds:.3f}S"
