"""The weekly digest: its numbers recomputed with numpy from the marts, its chart attached, its timing."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from polar_pipeline.alerts.delivery import deliver_due
from polar_pipeline.alerts.digest import compose_digest, digest_episode
from polar_pipeline.alerts.evaluation import due_digests
from polar_pipeline.alerts.rules import WEEKLY_DIGEST
from polar_pipeline.alerts.store import AlertStore
from polar_pipeline.alerts.texts import Message
from polar_pipeline.settings import Settings
from tests.alerts.conftest import TEST_KEY, History, Smtp, Webhook, attachment_bytes, settings_for

PNG = b"\x89PNG\r\n\x1a\n"


def _digest_day(planted: History) -> tuple[str, date]:
    """A Monday three days after the first planted illness began: its week holds the sick days."""
    user, event = planted.planted("illness")[0]
    day = date.fromisoformat(event["start"]) + timedelta(days=3)
    return user, day + timedelta(days=(7 - day.weekday()) % 7)


def _numpy_digest(planted: History, user: str, day: date) -> dict[str, tuple[str, str]]:
    """(this week, the 4 weeks before) as the digest should show them, from the marts with numpy."""
    rows = planted.query(
        "SELECT d.day, d.sleep_seconds, d.ln_rmssd, d.overnight_hr_bpm, d.training_load, r.score "
        "FROM marts.daily_metrics d LEFT JOIN analytics.recovery r USING (user_id, day) "
        "WHERE d.user_id = ? ORDER BY d.day",
        [user],
    )
    days = np.array([row[0] for row in rows])
    week = (days >= day - timedelta(days=7)) & (days <= day - timedelta(days=1))
    before = (days >= day - timedelta(days=35)) & (days <= day - timedelta(days=8))
    columns = {name: np.array([np.nan if row[i] is None else float(row[i]) for row in rows]) for i, name in
               enumerate(("sleep", "hrv", "resting_hr", "load", "recovery"), start=1)}  # fmt: skip

    def shown(mask: np.ndarray) -> dict[str, str]:
        def mean(name: str) -> float:
            return float(np.nanmean(columns[name][mask]))

        return {
            "sleep": f"{mean('sleep') / 3600:.1f}",
            "hrv": f"{math.exp(mean('hrv')):.0f}",
            "resting_hr": f"{mean('resting_hr'):.1f}",
            "load": f"{7 * mean('load'):.0f}",
            "recovery": f"{mean('recovery'):.0f}",
        }

    this, reference = shown(week), shown(before)
    return {name: (this[name], reference[name]) for name in this}


LINES = {
    "sleep": r"- Sleep: ([\d.]+) h a night against ([\d.]+) h a night over the 4 weeks before: (.*)\.",
    "hrv": r"- HRV: (\d+) ms against (\d+) ms over the 4 weeks before: (.*)\.",
    "resting_hr": r"- Resting heart rate: ([\d.]+) bpm against ([\d.]+) bpm over the 4 weeks before: (.*)\.",
    "load": r"- Training load: (\d+) a week against (\d+) a week over the 4 weeks before: (.*)\.",
    "recovery": r"- Recovery: (\d+)/100 against (\d+)/100 over the 4 weeks before: (.*)\.",
}
POLARITY = {"sleep": "good", "hrv": "good", "resting_hr": "bad", "recovery": "good", "load": "neutral"}


def test_the_digest_numbers_equal_a_numpy_recomputation_from_the_marts(planted: History) -> None:
    user, day = _digest_day(planted)
    con = planted.connect()
    try:
        digest = compose_digest(con, user, day)
    finally:
        con.close()
    expected = _numpy_digest(planted, user, day)
    body = digest.message.body
    assert body.startswith(
        f"Your week {day - timedelta(days=7)} to {day - timedelta(days=1)} against the 4 weeks"
    )
    for name, pattern in LINES.items():
        found = re.search(pattern, body)
        assert found is not None, (name, body)
        assert (found.group(1), found.group(2)) == expected[name], name
        week, before = float(found.group(1)), float(found.group(2))
        change = found.group(3)
        if week == before:
            assert change == "about the same"
            continue
        assert change.startswith("+" if week > before else "-"), (name, change)
        favourable = (week > before) == (POLARITY[name] == "good")
        if POLARITY[name] == "neutral":
            assert "favourable" not in change, (name, change)
        else:
            assert change.endswith("the favourable direction" if favourable else "the unfavourable direction")
    # The illness week: HRV down against the 4 weeks before.
    hrv = re.search(LINES["hrv"], body)
    assert hrv is not None and float(hrv.group(1)) < float(hrv.group(2))
    insights_rows = planted.query(
        "SELECT day, observations FROM analytics.insights WHERE user_id = ? AND day BETWEEN ? AND ? "
        "ORDER BY day DESC LIMIT 1",
        [user, day - timedelta(days=7), day - timedelta(days=1)],
    )
    newest_day, observations = insights_rows[0]
    assert f"Insights of {newest_day}:" in body
    facts = [item["fact"] for item in json.loads(observations)]
    assert facts
    assert sum(f"- {fact}" in body for fact in facts) == min(len(facts), 5)
    assert len(digest.details["days"]) == 35 and digest.details["week_start"] == str(day - timedelta(days=7))


def test_the_digest_arrives_with_its_chart_by_webhook_and_by_email(
    planted: History, webhook: Webhook, smtp: Smtp, tmp_path: Path
) -> None:
    user, day = _digest_day(planted)
    con = planted.connect()
    try:
        digest = compose_digest(con, user, day)
    finally:
        con.close()
    store = AlertStore(tmp_path / "control.sqlite3", TEST_KEY)
    store.add_channel(user, webhook.url())
    store.add_channel(user, smtp.url())
    episode = digest_episode(user, day)
    now = datetime.now(UTC)
    assert store.record_episode(episode, digest.message, now=now, details=digest.details) is not None
    assert store.record_episode(episode, digest.message, now=now, details=digest.details) is None
    report = deliver_due(settings_for(tmp_path, day), store, {})
    assert len(report.sent) == 2
    (post,) = webhook.wait_for(1)
    assert post.body["title"] == digest.message.title and post.body["message"] == digest.message.body
    (chart,) = attachment_bytes(post)
    assert chart.startswith(PNG) and 5_000 < len(chart) < 500_000
    (mail,) = smtp.wait_for(1)
    images = [part for part in mail.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_payload(decode=True) == chart


def _due(settings: Settings, store: AlertStore, now: datetime, zone: str | None) -> list[tuple[str, date]]:
    return due_digests(settings, store, now, {"alice": zone})


def test_the_digest_is_due_once_a_week_after_its_local_time(tmp_path: Path, webhook: Webhook) -> None:
    settings = Settings(home=tmp_path, today=None, digest_weekday="mon", digest_time="08:00")
    store = AlertStore(tmp_path / "control.sqlite3", TEST_KEY)
    assert _due(settings, store, datetime(2030, 1, 6, 19, tzinfo=UTC), "Pacific/Auckland") == []  # no channel
    store.add_channel("alice", webhook.url())
    monday_8am_auckland = datetime(2030, 1, 6, 19, 0, tzinfo=UTC)  # NZDT is UTC+13
    assert _due(settings, store, monday_8am_auckland - timedelta(minutes=1), "Pacific/Auckland") == []
    assert _due(settings, store, monday_8am_auckland, "Pacific/Auckland") == [("alice", date(2030, 1, 7))]
    assert _due(settings, store, monday_8am_auckland, "UTC") == []  # still Sunday evening there
    episode = digest_episode("alice", date(2030, 1, 7))
    store.record_episode(episode, _message(), now=monday_8am_auckland)
    later = [monday_8am_auckland + timedelta(hours=hours) for hours in (1, 5, 23, 30)]
    assert all(_due(settings, store, at, "Pacific/Auckland") == [] for at in later)  # recorded; then too late
    next_week = monday_8am_auckland + timedelta(days=7, minutes=5)
    assert _due(settings, store, next_week, "Pacific/Auckland") == [("alice", date(2030, 1, 14))]
    store.set_rule("alice", WEEKLY_DIGEST, options={"weekday": "sun", "time": "19:30"})
    sunday = datetime(2030, 1, 13, 19, 30, tzinfo=UTC)
    assert _due(settings, store, sunday, "UTC") == [("alice", date(2030, 1, 13))]
    store.set_rule("alice", WEEKLY_DIGEST, enabled=False)
    assert _due(settings, store, sunday, "UTC") == []
    with pytest.raises(ValueError, match="weekday"):
        store.set_rule("alice", WEEKLY_DIGEST, options={"weekday": "funday"})


def _message() -> Message:
    return Message("t", "b")
