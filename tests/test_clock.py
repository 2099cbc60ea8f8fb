"""One clock for every "today": POLAR_TODAY freezes it; otherwise a person's own zone decides the date."""

from datetime import date, timedelta

from polar_pipeline import clock
from polar_pipeline.settings import Settings


def test_polar_today_freezes_the_calendar_in_every_zone() -> None:
    frozen = Settings(today=date(2025, 10, 26))
    assert clock.today(frozen) == date(2025, 10, 26)
    assert clock.today(frozen, "Pacific/Kiritimati") == date(2025, 10, 26)


def test_without_it_the_date_is_the_persons_local_date() -> None:
    live = Settings(today=None)
    # UTC+14 and UTC-12 are 26 hours apart: their dates always differ, by one or two days.
    ahead, behind = clock.today(live, "Pacific/Kiritimati"), clock.today(live, "Etc/GMT+12")
    assert ahead - behind in (timedelta(days=1), timedelta(days=2))
    assert behind <= clock.today(live, "UTC") <= ahead
