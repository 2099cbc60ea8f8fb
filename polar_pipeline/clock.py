"""What day it is, in one place: so a test or a demo can freeze the calendar with ``POLAR_TODAY``.

Every "today" the system uses (a sync's last day, the first-setup history start, the demo's end, the API's
"last N nights") comes from here. Without the setting it is the real date: in a person's own time zone when
one is known (a night belongs to the local day its owner woke up on), else the machine's.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from polar_pipeline.settings import Settings


def today(settings: Settings, zone: str | None = None, *, at: datetime | None = None) -> date:
    """``POLAR_TODAY`` if set; else the date in ``zone`` (an IANA name), else the local date, of ``at`` (an
    aware instant; default now)."""
    if settings.today is not None:
        return settings.today
    if at is not None:
        return at.astimezone(ZoneInfo(zone) if zone else None).date()
    if zone:
        return datetime.now(ZoneInfo(zone)).date()
    return date.today()
