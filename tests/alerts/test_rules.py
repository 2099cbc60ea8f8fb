"""Each history rule fires on the simulator's planted events, and its twin without them stays quiet there.

The planted history is replayed day by day (the evaluation the daily refresh's publish triggers, at each
day's "today"), into a real store, so what is counted is what would have been sent. The null twin is the
same seed, personas and calendar with the event plan emptied. Every number an alert shows is checked
against a recomputation from marts.daily_metrics and marts.baselines with numpy, not against the rows the
alert was written from.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from polar_pipeline.alerts.evaluation import EvaluationReport, record_history
from polar_pipeline.alerts.rules import (
    CRITICAL_ANOMALY,
    HRV_BELOW_NORMAL,
    ILLNESS_WATCH,
    OVERTRAINING_RISK,
    Episode,
    Finding,
    group_episodes,
)
from polar_pipeline.alerts.store import AlertStore
from tests.alerts.conftest import TEST_KEY, History, Replayed, settings_for

PHYSIOLOGICAL = ("ln_rmssd", "overnight_hr_bpm", "breathing_rate")
AFTER_DAYS = 3
"""An event's window: its first prodrome (or first) day to this many days after its last day."""


def _window(event: dict[str, Any]) -> tuple[date, date]:
    first = date.fromisoformat(event["details"].get("prodrome_start") or event["start"])
    return first, date.fromisoformat(event["end"]) + timedelta(days=AFTER_DAYS)


def _subjects(episodes: list[Any]) -> set[str]:
    return {episode.subject.split("@")[0] for episode in episodes}


def test_every_planted_illness_sends_an_illness_alert_and_a_critical_anomaly(
    planted: History, planted_replay: Replayed
) -> None:
    illnesses = planted.planted("illness")
    assert len(illnesses) >= 6, "the planted history should hold several illnesses"
    for user, event in illnesses:
        first, last = _window(event)
        watch = planted_replay.within(user, ILLNESS_WATCH, first, last)
        assert len(watch) == 1, (user, event["start"], watch)  # one alert for the episode, not one per night
        assert first <= watch[0].first_day <= date.fromisoformat(event["end"])
        anomalies = planted_replay.within(user, CRITICAL_ANOMALY, first, last)
        assert _subjects(anomalies) & set(PHYSIOLOGICAL), (user, event["start"], _subjects(anomalies))


def test_overreaching_and_illness_send_an_overtraining_alert_and_a_reminder(
    planted: History, planted_replay: Replayed
) -> None:
    strains = planted.planted("overreaching") + planted.planted("illness")
    assert len(planted.planted("overreaching")) >= 2
    for user, event in strains:
        first, last = _window(event)
        risk = planted_replay.within(user, OVERTRAINING_RISK, first, last)
        assert "high" in _subjects(risk), (user, event["kind"], event["start"])
        high = next(ep for ep in risk if ep.subject == "high")
        reminder = [ep for ep in risk if ep.subject == "persisting-3d"]
        if reminder:  # it stayed high three days in a row: the reminder is the third day, once
            assert len(reminder) == 1 and reminder[0].first_day >= high.first_day + timedelta(days=2)
            assert "still high after" in reminder[0].title


def test_the_null_twin_is_silent_where_the_planted_twin_alerts(
    planted: History, planted_replay: Replayed, null_replay: Replayed
) -> None:
    """Same person, same days, no planted event: the physiological anomalies never fire, and the illness
    and overtraining alerts fire in at most a quarter of the windows (the watch's own false-alarm rate),
    against every window for the planted twin."""
    windows = [(user, event, *_window(event)) for user, event in planted.planted("illness")]
    windows += [(user, event, *_window(event)) for user, event in planted.planted("overreaching")]
    counts: dict[str, dict[str, int]] = {"planted": {}, "null": {}}
    for name, replayed in (("planted", planted_replay), ("null", null_replay)):
        for rule in (ILLNESS_WATCH, OVERTRAINING_RISK, HRV_BELOW_NORMAL):
            counts[name][rule] = sum(
                bool(replayed.within(user, rule, first, last)) for user, _, first, last in windows
            )
        counts[name]["physiological_anomaly"] = sum(
            bool(_subjects(replayed.within(user, CRITICAL_ANOMALY, first, last)) & set(PHYSIOLOGICAL))
            for user, _, first, last in windows
        )
    illness_windows = len(planted.planted("illness"))
    assert counts["planted"][ILLNESS_WATCH] >= illness_windows, counts
    assert counts["planted"][OVERTRAINING_RISK] == len(windows), counts
    assert counts["planted"][HRV_BELOW_NORMAL] == len(windows), counts
    assert counts["planted"]["physiological_anomaly"] == illness_windows, counts
    assert counts["null"]["physiological_anomaly"] == 0, counts
    for rule in (ILLNESS_WATCH, OVERTRAINING_RISK, HRV_BELOW_NORMAL):
        assert counts["null"][rule] <= len(windows) // 4, (rule, counts)
    overreaching = [(u, f, la) for u, e, f, la in windows if e["kind"] == "overreaching"]
    assert not any(null_replay.within(u, OVERTRAINING_RISK, f, la) for u, f, la in overreaching)
    print(f"\nalerts in {len(windows)} planted-event windows: {counts}")


def test_the_null_twin_illness_alerts_stay_within_the_watch_false_alarm_bar(
    null_twin: History, null_replay: Replayed
) -> None:
    """At most one illness alert per user per 90 days without any planted illness (docs/methods.md)."""
    days = (null_twin.sim.last_day - null_twin.sim.first_day).days + 1
    alerts = [ep for _, ep in null_replay.episodes if ep.rule == ILLNESS_WATCH]
    assert len(alerts) <= len(null_twin.sim.users) * days / 90, len(alerts)


def _daily(history: History, user: str) -> dict[date, dict[str, Any]]:
    rows = history.query(
        "SELECT day, ln_rmssd, overnight_hr_bpm, breathing_rate, device_id FROM marts.daily_metrics "
        "WHERE user_id = ? ORDER BY day",
        [user],
    )
    return {
        row[0]: dict(
            zip(("ln_rmssd", "overnight_hr_bpm", "breathing_rate", "device_id"), row[1:], strict=True)
        )
        for row in rows
    }


def _baseline(daily: dict[date, dict[str, Any]], metric: str, day: date) -> tuple[float, float]:
    """(median, robust SD) of the 60 days before ``day`` measured with the day's device or none (numpy)."""
    window = [day - timedelta(days=k) for k in range(60, 0, -1)]
    devices = [daily[d]["device_id"] for d in [*window, day] if d in daily and daily[d]["device_id"]]
    device = devices[-1] if devices else None
    values = np.array(
        [
            daily[d][metric]
            for d in window
            if d in daily and daily[d][metric] is not None and daily[d]["device_id"] in (device, None)
        ],
        dtype=float,
    )
    median = float(np.percentile(values, 50))
    mad = float(np.median(np.abs(values - median)))
    return median, 1.4826 * mad


def test_an_illness_alert_shows_each_signal_against_the_baseline_recomputed_with_numpy(
    planted: History, planted_replay: Replayed
) -> None:
    user, event = planted.planted("illness")[0]
    first, last = _window(event)
    (alert,) = planted_replay.within(user, ILLNESS_WATCH, first, last)
    daily = _daily(planted, user)
    day = alert.last_day
    assert f"on {day}" in alert.body and f"Since: {alert.first_day}" in alert.body
    shown = dict(
        re.findall(r"(overnight heart rate|breathing rate|HRV) (?:up|down) \(([+-]\d+\.\d) SD\)", alert.body)
    )
    assert shown, alert.body
    labels = {
        "overnight heart rate": "overnight_hr_bpm",
        "breathing rate": "breathing_rate",
        "HRV": "ln_rmssd",
    }
    for label, text in shown.items():
        metric = labels[label]
        median, robust_sd = _baseline(daily, metric, day)
        assert text == f"{(daily[day][metric] - median) / robust_sd:+.1f}", (label, text)
    heart = re.search(r"overnight heart rate (\d+) bpm \(usual (\d+) bpm\)", alert.body)
    assert heart is not None
    assert int(heart.group(1)) == round(daily[day]["overnight_hr_bpm"])
    assert int(heart.group(2)) == round(_baseline(daily, "overnight_hr_bpm", day)[0])
    assert "What to look at:" in alert.body and "rising resting heart rate" not in alert.body.lower()


def test_an_anomaly_alert_states_value_usual_and_change_from_the_marts(
    planted: History, planted_replay: Replayed
) -> None:
    user, event = planted.planted("illness")[0]
    first, last = _window(event)
    alert = next(
        ep
        for ep in planted_replay.within(user, CRITICAL_ANOMALY, first, last)
        if ep.subject == "overnight_hr_bpm"
    )
    daily = _daily(planted, user)
    value = daily[alert.last_day]["overnight_hr_bpm"]
    median, robust_sd = _baseline(daily, "overnight_hr_bpm", alert.last_day)
    change, z = 100 * (value - median) / median, (value - median) / robust_sd
    expected = (
        f"Overnight heart rate was well above your normal range on {alert.last_day}: {value:.0f} bpm "
        f"against a usual {median:.0f} bpm ({change:+.0f} %, {z:+.1f} robust SD from your 60-day baseline)."
    )
    assert expected in alert.body
    # Direction-aware: a higher overnight heart rate is the unfavourable direction, never an improvement.
    assert "Higher is the unfavourable direction for overnight heart rate." in alert.body


def test_an_hrv_alert_shows_the_seven_day_mean_recomputed(planted: History, planted_replay: Replayed) -> None:
    user, event = planted.planted("illness")[0]
    first, last = _window(event)
    (alert,) = planted_replay.within(user, HRV_BELOW_NORMAL, first, last)
    daily = _daily(planted, user)
    week = [daily[alert.last_day - timedelta(days=k)]["ln_rmssd"] for k in range(7)]
    nights = [value for value in week if value is not None]
    assert (
        f"Your 7-day HRV is below its normal band on {alert.last_day}: {math.exp(np.mean(nights)):.0f} ms"
        in alert.body
    )
    run = re.search(r"below the band (\d+) days in a row", alert.body)
    assert (
        run is not None
        and int(run.group(1)) >= 3
        and "Lower is the unfavourable direction for HRV." in alert.body
    )


def _finding(day: int, subject: str = "x") -> Finding:
    return Finding("u", CRITICAL_ANOMALY, subject, date(2026, 1, 1) + timedelta(days=day))


def test_episodes_survive_two_quiet_days_and_end_on_the_third() -> None:
    episodes = group_episodes([_finding(0), _finding(1), _finding(4), _finding(8), _finding(8, "y")])
    spans = [(ep.subject, ep.first_day.day, ep.last_day.day, len(ep.findings)) for ep in episodes]
    assert spans == [("x", 1, 5, 3), ("x", 9, 9, 1), ("y", 9, 9, 1)]
    assert isinstance(episodes[0], Episode) and episodes[0].key == "x:2026-01-01"


def test_repeat_daily_sends_once_a_day_while_an_episode_lasts(planted: History, tmp_path: Path) -> None:
    user, first = next(
        (user, row["day"])
        for user, rows in planted.inputs.illness.items()
        for row in rows
        if any(other["day"] == row["day"] + timedelta(days=1) for other in rows)
    )
    counts: dict[bool, list[str]] = {}
    for repeat in (False, True):
        home = tmp_path / f"repeat-{repeat}"
        home.mkdir()
        store = AlertStore(home / "control.sqlite3", TEST_KEY)
        store.set_rule(user, ILLNESS_WATCH, options={"repeat_daily": repeat})
        sent = []
        for day in (first, first + timedelta(days=1)):
            report = EvaluationReport()
            now = datetime.combine(day, datetime.min.time(), UTC)
            record_history(settings_for(home, day), store, planted.inputs, [user], now, {}, report)
            sent += [ep.episode_key for ep in report.recorded if ep.rule == ILLNESS_WATCH]
        counts[repeat] = sent
    assert len(counts[False]) == 1
    assert counts[True] == [
        f"illness@{first}:{first}",
        f"illness@{first + timedelta(days=1)}:{first + timedelta(days=1)}",
    ]
