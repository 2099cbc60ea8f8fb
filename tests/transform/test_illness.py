"""The simulator's planted illness weeks show as HRV 'below' and critical ln(rMSSD) anomalies, and only there.

Tolerances (stated, not tuned per user):

* hrv_status must be 'below' from the 3rd illness day to the end of the illness: the 7-day mean needs a
  couple of sick nights before it leaves the band (in practice it is already 'below' on day 1 or 2).
* critical ln_rmssd anomalies on at least 3 of the 7 illness days, and every illness night with an HRV value
  is at least a 'below' warning: the planted drop tapers (x0.85 on the last day) while the first sick nights
  enter the trailing baseline, so the last days may be warnings instead of critical. The 1-3 prodrome nights
  before each illness (lower HRV) sit in that baseline too and lower its far-out fence a little, so one week
  of this warehouse has 3 critical days where the simulator without a prodrome gave 4.
* outside illness windows (plus the 5 recovery days the simulator models after each illness) no critical
  ln_rmssd anomaly while the baseline is 'ready'; at most one per user in the whole history otherwise (a
  partial baseline in the first three weeks is noisy by design).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.transform.conftest import SimWarehouse

RECOVERY_DAYS = 5


def _illnesses(sim: SimWarehouse, user: str) -> list[tuple[date, date]]:
    events = sim.events(user, "illness")
    assert all((start - sim.first_day).days >= 70 for start, _ in events), "illness needs 70 days of history"
    return events


def test_every_user_has_planted_illnesses(sim_marts: SimWarehouse) -> None:
    total = sum(len(_illnesses(sim_marts, user)) for user in sim_marts.users)
    assert total >= len(sim_marts.users)


def test_hrv_status_is_below_during_illness(sim_marts: SimWarehouse, read_only: Any) -> None:
    con = read_only(sim_marts.path)
    for user in sim_marts.users:
        for start, end in _illnesses(sim_marts, user):
            rows = con.execute(
                "SELECT day, status FROM marts.hrv_status WHERE user_id = ? AND day BETWEEN ? AND ? "
                "ORDER BY day",
                [user, start + timedelta(days=2), end],
            ).fetchall()
            assert len(rows) == (end - start).days - 1
            assert all(status == "below" for _, status in rows), (user, start, rows)


def test_critical_hrv_anomalies_on_illness_days(sim_marts: SimWarehouse, read_only: Any) -> None:
    con = read_only(sim_marts.path)
    for user in sim_marts.users:
        for start, end in _illnesses(sim_marts, user):
            flagged = dict(
                con.execute(
                    "SELECT day, severity FROM marts.anomalies WHERE user_id = ? AND metric = 'ln_rmssd' "
                    "AND direction = 'below' AND day BETWEEN ? AND ?",
                    [user, start, end],
                ).fetchall()
            )
            measured = {
                day
                for (day,) in con.execute(
                    "SELECT day FROM marts.daily_metrics WHERE user_id = ? AND day BETWEEN ? AND ? "
                    "AND ln_rmssd IS NOT NULL",
                    [user, start, end],
                ).fetchall()
            }
            assert measured <= set(flagged), (user, start, sorted(measured - set(flagged)))
            critical = [day for day, severity in flagged.items() if severity == "critical"]
            assert len(critical) >= 3, (user, start, flagged)


def test_no_critical_hrv_anomalies_outside_illness(sim_marts: SimWarehouse, read_only: Any) -> None:
    con = read_only(sim_marts.path)
    for user in sim_marts.users:
        sick = [(start, end + timedelta(days=RECOVERY_DAYS)) for start, end in _illnesses(sim_marts, user)]
        rows = con.execute(
            "SELECT a.day, b.status FROM marts.anomalies AS a "
            "JOIN marts.baselines AS b USING (user_id, day, metric) "
            "WHERE a.user_id = ? AND a.metric = 'ln_rmssd' AND a.severity = 'critical'",
            [user],
        ).fetchall()
        outside = [(day, status) for day, status in rows if not any(lo <= day <= hi for lo, hi in sick)]
        assert all(status != "ready" for _, status in outside), (user, outside)
        assert len(outside) <= 1, (user, outside)
