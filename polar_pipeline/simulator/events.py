"""Planted events (illness, overreaching, travel, missing nights, a device switch), deterministic per user.

An illness week is preceded by a prodrome: 1-3 days (drawn per event) on which overnight heart rate and
breathing rate creep up and ln rMSSD down before the first symptom day, the pattern wearable studies saw
before symptom onset (Natarajan et al. 2020; Mishra et al. 2020; Miller et al. 2020; Alavi et al. 2022).
The prodrome is not an event of its own: its days keep ``event = None`` (they are not yet sick days), and
the illness event's ``details`` name them (``prodrome_start``, ``prodrome_days``, ``first_symptom_day``).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from polar_pipeline.simulator.personas import UserProfile
from polar_pipeline.simulator.seeding import rng_for

EVENT_HORIZON_YEARS = 3
MIN_HISTORY_BEFORE_EVENT_DAYS = 70
TRAVEL_DESTINATIONS = (540, -300, 480, -420, 330, 600)
DEVICE_SWITCH_LN_RMSSD_SHIFT = 0.06  # a new watch reads nightly HRV slightly differently
PRODROME_DAYS = (1, 3)
"""Inclusive range of the prodrome's length in days, drawn per illness event."""
PRODROME_HR_RISE = (2.0, 4.0)
"""bpm added to the overnight heart rate on the last prodrome night (the night before the first sick day)."""
PRODROME_BREATHING_RISE = (0.5, 1.0)
"""breaths/min added to the overnight breathing rate on the last prodrome night."""
PRODROME_LN_RMSSD_DROP = (0.06, 0.14)
"""taken from ln rMSSD on the last prodrome night (about 6-13 % lower rMSSD)."""


@dataclass(frozen=True)
class Event:
    """A planted episode, inclusive ``start``..``end`` dates, as exposed by ``/sim/ground-truth``."""

    kind: str
    start: dt.date
    end: dt.date
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "details": self.details,
        }


def plan_events(seed: int, profile: UserProfile, history_start: dt.date, horizon_days: int) -> list[Event]:
    """Non-overlapping planted events from day 70 of history to the horizon, in date order.

    Illness needs >= 60 clean days after any illness or overreaching block (so a 60-day baseline before it is
    clean) and >= 21 days after any other event; all events are separated by >= 10 days. So an illness's 1-3
    prodrome nights never fall inside another event.
    """
    rng = rng_for(seed, profile.x_user_id, "events")
    first = MIN_HISTORY_BEFORE_EVENT_DAYS
    next_start: dict[str, float] = {
        "illness": first + rng.uniform(20, 130),
        "travel": first + rng.uniform(0, 90),
        "missing_nights": first + rng.uniform(30, 180),
        "device_switch": first + rng.uniform(120, 260),
    }
    if profile.persona.can_overreach:
        next_start["overreaching"] = first + rng.uniform(60, 200)
    intervals = {
        "illness": (150, 250),
        "travel": (120, 220),
        "missing_nights": (150, 260),
        "overreaching": (180, 300),
    }
    events: list[Event] = []
    cursor = first
    last_strain_end = -10_000  # end of the last illness or overreaching block (day index)
    while next_start:
        kind = min(next_start, key=lambda name: next_start[name])
        start = max(int(next_start[kind]), cursor)
        if kind == "illness":
            start = max(start, last_strain_end + 61, cursor + 11)
        elif kind == "overreaching":
            start = max(start, last_strain_end + 45)
        length = {"illness": 7, "travel": rng.randint(5, 10), "missing_nights": rng.randint(3, 6)}.get(
            kind, 1
        )
        if kind == "overreaching":
            length = rng.randint(10, 14)
        if start + length > horizon_days:
            del next_start[kind]
            continue
        start_day = history_start + dt.timedelta(days=start)
        end_day = start_day + dt.timedelta(days=length - 1)
        details = _event_details(kind, rng, profile)
        if kind == "illness":
            details |= _prodrome_details(seed, profile, start_day)
        events.append(Event(kind, start_day, end_day, details))
        cursor = start + length + 10
        if kind in ("illness", "overreaching"):
            last_strain_end = start + length - 1
        if kind == "device_switch":
            del next_start[kind]
        else:
            low, high = intervals[kind]
            next_start[kind] = start + rng.uniform(low, high)
    return events


def _prodrome_details(seed: int, profile: UserProfile, first_symptom_day: dt.date) -> dict[str, Any]:
    """The prodrome before an illness week, from its own seed so the event plan's draws stay as they were.

    Effects are the peak, on the last prodrome night; the nights before it get k/n of it (k = 1..n), so a
    3-day prodrome rises in thirds towards the first symptom day.
    """
    rng = rng_for(seed, profile.x_user_id, "prodrome", first_symptom_day.isoformat())
    days = rng.randint(*PRODROME_DAYS)
    return {
        "first_symptom_day": first_symptom_day.isoformat(),
        "prodrome_start": (first_symptom_day - dt.timedelta(days=days)).isoformat(),
        "prodrome_days": days,
        "prodrome_hr_rise": round(rng.uniform(*PRODROME_HR_RISE), 2),
        "prodrome_breathing_rise": round(rng.uniform(*PRODROME_BREATHING_RISE), 2),
        "prodrome_ln_rmssd_drop": round(rng.uniform(*PRODROME_LN_RMSSD_DROP), 3),
    }


def _event_details(kind: str, rng: random.Random, profile: UserProfile) -> dict[str, Any]:
    if kind == "illness":
        drop = max(rng.uniform(0.6, 0.7), 5.5 * profile.persona.ln_rmssd_sd)
        return {"ln_rmssd_drop": round(drop, 3), "resting_hr_rise": round(rng.uniform(6, 10), 1)}
    if kind == "travel":
        choices = [o for o in TRAVEL_DESTINATIONS if abs(o - profile.home_offset_minutes) >= 180]
        return {"utc_offset_minutes": rng.choice(choices), "home_offset_minutes": profile.home_offset_minutes}
    if kind == "missing_nights":
        return {"reason": "not worn"}
    if kind == "overreaching":
        return {"load_factor": 1.8}
    return {"ln_rmssd_shift": DEVICE_SWITCH_LN_RMSSD_SHIFT}
