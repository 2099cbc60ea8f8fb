"""The latent daily state of each simulated user: sleep timing, autonomic state, training and activity.

Everything here is cheap floats computed sequentially from the user's history start and cached, so a request
for a date computes only the days it has not seen. Heavy payload details (hypnograms, sample series) are
rendered on demand in ``payloads`` / ``exercises`` from per-(user, day) seeds.

Day ``D`` in this module means: the night that ends on the morning of ``D`` (Polar's sleep ``date``) plus the
activity and training during the calendar day ``D``. Night ``D`` is therefore affected by training on ``D-1``.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from polar_pipeline.simulator.events import (
    DEVICE_SWITCH_LN_RMSSD_SHIFT,
    EVENT_HORIZON_YEARS,
    Event,
    plan_events,
)
from polar_pipeline.simulator.personas import (
    ATHLETE_WEEK,
    CASUAL_WEEK,
    DEVICE_MODELS,
    IRREGULAR_KINDS,
    NIGHT_OWL,
    NIGHT_OWL_START_MINUTES,
    NIGHT_OWL_WEEK,
    PERIODISATION,
    SESSION_INTENSITY,
    SPORTS,
    SportSpec,
    build_profile,
)
from polar_pipeline.simulator.seeding import base62_id, hex_token, rng_for
from polar_pipeline.simulator.zones import (
    local_to_utc,
    offset_minutes_at,
    offset_minutes_of_local,
    utc_to_local,
)

AR_COEFFICIENT = 0.45
USUAL_LEVEL_NIGHTS = 28
MIN_RECHARGE_SLEEP_SECONDS = 4 * 3600
EARLIEST_BEDTIME_MINUTES = -210  # 20:30 the evening before
LATEST_BEDTIME_MINUTES = 210  # 03:30

ILLNESS_PROFILE = (0.85, 1.0, 1.1, 1.1, 1.0, 0.95, 0.85)


@dataclass(frozen=True)
class Device:
    device_id: str
    model: str
    first_day: dt.date
    last_day: dt.date | None


@dataclass(frozen=True, slots=True)
class Session:
    """One planned exercise; its sample series are rendered on demand from ``exercise_id``."""

    exercise_id: str
    kind: str
    start_local: dt.datetime  # naive watch wall clock
    offset_minutes: int
    duration_seconds: float
    intensity: float  # fraction of heart-rate reserve
    average_hr: int
    cardio_load: float
    calories: int
    upload_utc: dt.datetime
    device_id: str
    device_model: str
    rpe: str | None

    @property
    def spec(self) -> SportSpec:
        return SPORTS[self.kind]

    @property
    def end_local(self) -> dt.datetime:
        return self.start_local + dt.timedelta(seconds=self.duration_seconds)

    @property
    def start_utc(self) -> dt.datetime:
        """UTC = local - offset (no session crosses a DST change: they never run at 03:00-04:00)."""
        return (self.start_local - dt.timedelta(minutes=self.offset_minutes)).replace(tzinfo=dt.UTC)


@dataclass(slots=True)
class DayState:
    """The latent values of one day; the ground truth the payloads are rendered from.

    ``offset_minutes`` is the day's UTC offset (at local noon). The night keeps its own offsets: with a fixed
    offset both equal the day's, and in a DST zone (``zone``) a night that spans the change starts with the
    old offset and ends with the new one. ``span_minutes`` is always elapsed time.
    """

    date: dt.date
    index: int
    event_kind: str | None
    offset_minutes: int
    zone: str | None  # the home zone whose clock the day follows; None: a fixed offset (also when travelling)
    sleep_start_offset_minutes: int
    sleep_end_offset_minutes: int
    device_id: str
    device_model: str
    # night ending this morning
    worn: bool
    has_recharge: bool
    sleep_start_local: dt.datetime
    span_minutes: int
    wake_minutes: tuple[int, ...]
    unrecognized_minutes: int
    deep_fraction: float
    rem_fraction: float
    cycles: int
    continuity: float
    sleep_score: int
    duration_score: float
    solidity_score: float
    regeneration_score: float
    sleep_charge: int
    sleep_rating: int
    sleep_goal_seconds: int
    ln_rmssd: float
    resting_hr: float
    breathing_rate: float
    ans_charge: float
    # the calendar day
    sessions: tuple[Session, ...]
    training_load: float
    steps: int
    active_calories: int
    calories: int
    prodrome_of: dt.date | None = None  # a prodrome night: the first symptom day of the illness it precedes

    @property
    def sleep_start_utc(self) -> dt.datetime:
        start = self.sleep_start_local - dt.timedelta(minutes=self.sleep_start_offset_minutes)
        return start.replace(tzinfo=dt.UTC)

    @property
    def sleep_end_utc(self) -> dt.datetime:
        return self.sleep_start_utc + dt.timedelta(minutes=self.span_minutes)

    @property
    def sleep_end_local(self) -> dt.datetime:
        """The wall clock on waking: span minutes after the start, read with the end's own offset."""
        return self.sleep_end_utc.replace(tzinfo=None) + dt.timedelta(minutes=self.sleep_end_offset_minutes)

    @property
    def sleep_seconds(self) -> int:
        """Actual sleep (light + deep + REM + unrecognized) = span minus the awake minutes, exactly."""
        return (self.span_minutes - sum(self.wake_minutes)) * 60

    @property
    def rmssd_ms(self) -> int:
        return round(math.exp(self.ln_rmssd))

    def to_ground_truth(self) -> dict[str, Any]:
        truth: dict[str, Any] = {
            "date": self.date.isoformat(),
            "event": self.event_kind,
            "tz_offset_minutes": self.offset_minutes,
            "device_id": self.device_id,
            "worn": self.worn,
            "has_recharge": self.has_recharge,
            "ln_rmssd": round(self.ln_rmssd, 4),
            "rmssd_ms": self.rmssd_ms,
            "resting_hr": round(self.resting_hr, 2),
            "breathing_rate": round(self.breathing_rate, 2),
            "ans_charge": self.ans_charge,
            "sleep_start": self.sleep_start_local.isoformat(timespec="seconds"),
            "sleep_end": self.sleep_end_local.isoformat(timespec="seconds"),
            "sleep_seconds": self.sleep_seconds,
            "sleep_score": self.sleep_score,
            "sleep_charge": self.sleep_charge,
            "continuity": self.continuity,
            "training_load": round(self.training_load, 2),
            "exercises": [session.exercise_id for session in self.sessions],
            "steps": self.steps,
            "active_calories": self.active_calories,
            "calories": self.calories,
        }
        if self.prodrome_of is not None:  # only prodrome nights: every other day's truth stays as it was
            truth["prodrome_of"] = self.prodrome_of.isoformat()
        if self.zone is not None:  # a DST zone: the instants, so a reader needs no offset arithmetic
            truth |= {
                "time_zone": self.zone,
                "sleep_start_utc": _iso_z(self.sleep_start_utc),
                "sleep_end_utc": _iso_z(self.sleep_end_utc),
                "sleep_start_offset_minutes": self.sleep_start_offset_minutes,
                "sleep_end_offset_minutes": self.sleep_end_offset_minutes,
                "exercise_times": [
                    {"id": s.exercise_id, "start_utc": _iso_z(s.start_utc), "seconds": s.duration_seconds}
                    for s in self.sessions
                ],
            }
        return truth


def _iso_z(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class _DayContext:
    """What the computation of one day needs to know about its place in the timeline."""

    index: int
    day: dt.date
    rng: random.Random
    event: Event | None
    day_in_event: int
    offset: int
    zone: ZoneInfo | None  # the home DST zone on a day at home; None: the fixed ``offset`` rules the day
    previous: DayState | None
    load_1: float  # training load of the day before
    load_2: float  # and of the day before that

    @property
    def kind(self) -> str | None:
        return self.event.kind if self.event else None

    @property
    def weekend_morning(self) -> bool:
        return self.day.weekday() >= 5


@dataclass(frozen=True)
class _NightStructure:
    continuity: float
    wake_minutes: tuple[int, ...]
    unrecognized_minutes: int
    deep_fraction: float
    rem_fraction: float


@dataclass(frozen=True)
class _SleepScores:
    sleep_score: int
    duration_score: float
    solidity_score: float
    regeneration_score: float
    sleep_charge: int
    sleep_rating: int


class UserModel:
    """One simulated user: profile, events, devices and the lazily computed latent days."""

    def __init__(
        self, seed: int, index: int, history_start: dt.date, history_days: int, persona: str | None = None
    ) -> None:
        self.seed = seed
        self.profile = build_profile(seed, index, persona)
        self.persona = self.profile.persona
        self.zone = ZoneInfo(self.profile.home_zone) if self.profile.home_zone else None
        self.history_start = history_start
        self.horizon_days = history_days + EVENT_HORIZON_YEARS * 365
        self.events = plan_events(seed, self.profile, history_start, self.horizon_days)
        self._event_by_date: dict[dt.date, Event] = {}
        for event in self.events:
            day = event.start
            while day <= event.end:
                self._event_by_date[day] = event
                day += dt.timedelta(days=1)
        self._prodrome_by_date: dict[dt.date, tuple[Event, float]] = {}
        for event in self.events:
            if event.kind == "illness":
                days = int(event.details["prodrome_days"])
                for k in range(1, days + 1):  # k = 1 is the first prodrome night, k = days the last
                    self._prodrome_by_date[event.start - dt.timedelta(days=days + 1 - k)] = (event, k / days)
        self.devices = self._plan_devices()
        self._days: list[DayState] = []
        self._exercise_index: dict[str, tuple[int, int]] = {}
        self._hrv_noise = 0.0
        self._hr_noise = 0.0
        # (ln rMSSD, heart rate) of every computed night without prodrome signs: the usual level the ANS
        # charge and the illness ceiling compare against, so a prodrome changes its own nights and no other.
        self._usual_autonomic: list[tuple[float, float]] = []

    @property
    def x_user_id(self) -> int:
        return self.profile.x_user_id

    @property
    def days_computed(self) -> int:
        return len(self._days)

    def _plan_devices(self) -> list[Device]:
        rng = rng_for(self.seed, self.x_user_id, "devices")
        models = rng.sample(DEVICE_MODELS, 2)
        ids = [hex_token(self.seed, self.x_user_id, "device", n, length=8).upper() for n in range(2)]
        switch = next((event.start for event in self.events if event.kind == "device_switch"), None)
        if switch is None:
            return [Device(ids[0], models[0], self.history_start, None)]
        return [
            Device(ids[0], models[0], self.history_start, switch - dt.timedelta(days=1)),
            Device(ids[1], models[1], switch, None),
        ]

    def device_on(self, day: dt.date) -> Device:
        return self.devices[-1] if day >= self.devices[-1].first_day else self.devices[0]

    def offset_on(self, day: dt.date) -> int:
        """The day's UTC offset: the travel destination's, else home's (a DST zone's at local noon)."""
        event = self._event_by_date.get(day)
        if event is not None and event.kind == "travel":
            return int(event.details["utc_offset_minutes"])
        if self.zone is not None:
            return offset_minutes_of_local(dt.datetime.combine(day, dt.time(12)), self.zone)
        return self.profile.home_offset_minutes

    def zone_on(self, day: dt.date) -> ZoneInfo | None:
        """The home DST zone on a day at home; None for fixed-offset users and while travelling."""
        event = self._event_by_date.get(day)
        return None if event is not None and event.kind == "travel" else self.zone

    def day(self, day: dt.date) -> DayState | None:
        """The latent state of ``day`` (computing every earlier day first); None before the history start."""
        index = (day - self.history_start).days
        if index < 0:
            return None
        while len(self._days) <= index:
            self._days.append(self._compute_day(len(self._days)))
        return self._days[index]

    def days(self, first: dt.date, last: dt.date) -> list[DayState]:
        states = []
        day = max(first, self.history_start)
        while day <= last:
            state = self.day(day)
            if state is not None:
                states.append(state)
            day += dt.timedelta(days=1)
        return states

    def find_exercise(self, exercise_id: str, computed_until: dt.date) -> tuple[DayState, Session] | None:
        self.day(computed_until)
        position = self._exercise_index.get(exercise_id)
        if position is None:
            return None
        state = self._days[position[0]]
        return state, state.sessions[position[1]]

    # ----------------------------------------------------------------- sequential latent computation

    def _compute_day(self, index: int) -> DayState:
        """One day from the previous days' state; the order of random draws defines the data (keep it)."""
        day = self.history_start + dt.timedelta(days=index)
        event = self._event_by_date.get(day)
        context = _DayContext(
            index=index,
            day=day,
            rng=rng_for(self.seed, self.x_user_id, "day", day.isoformat()),
            event=event,
            day_in_event=(day - event.start).days if event else 0,
            offset=self.offset_on(day),
            zone=self.zone_on(day),
            previous=self._days[index - 1] if index >= 1 else None,
            load_1=self._days[index - 1].training_load if index >= 1 else 0.0,
            load_2=self._days[index - 2].training_load if index >= 2 else 0.0,
        )
        rng = context.rng
        bedtime_minutes, span_minutes = self._sleep_window(context)
        night = self._night_structure(context, span_minutes)
        start_local = dt.datetime.combine(day, dt.time()) + dt.timedelta(
            minutes=bedtime_minutes, seconds=rng.randint(0, 59), milliseconds=rng.randint(0, 999)
        )
        start_offset = end_offset = context.offset
        wake_local = start_local + dt.timedelta(minutes=span_minutes)
        if context.zone is not None:
            # Elapsed time is the span; each end reads its own offset (a bedtime in the skipped spring hour
            # becomes the same instant on the new clock).
            start_utc = local_to_utc(start_local, context.zone)
            end_utc = start_utc + dt.timedelta(minutes=span_minutes)
            start_local = utc_to_local(start_utc, context.zone)
            wake_local = utc_to_local(end_utc, context.zone)
            start_offset = offset_minutes_at(start_utc, context.zone)
            end_offset = offset_minutes_at(end_utc, context.zone)
        sleep_seconds = (span_minutes - sum(night.wake_minutes)) * 60
        scattered_gap = event is None and rng.random() < 0.03
        worn = context.kind != "missing_nights" and not scattered_gap
        recharge_dropped = event is None and rng.random() < 0.05
        has_recharge = worn and sleep_seconds >= MIN_RECHARGE_SLEEP_SECONDS and not recharge_dropped
        ln_rmssd, resting_hr, breathing = self._autonomic_state(context, sleep_seconds)
        self._usual_autonomic.append((ln_rmssd, resting_hr))
        prodrome = self._prodrome_by_date.get(day)
        if prodrome is not None:
            ln_rmssd, resting_hr, breathing = _prodrome_signs(prodrome, ln_rmssd, resting_hr, breathing)
        first_usual = max(0, index - USUAL_LEVEL_NIGHTS)
        usual = self._days[first_usual:index]
        ans_charge = _ans_charge(
            ln_rmssd,
            resting_hr,
            [self._usual_autonomic[first_usual + n] for n, s in enumerate(usual) if s.has_recharge],
        )
        scores = self._sleep_scores(context, night, sleep_seconds, [s.sleep_score for s in usual if s.worn])
        sessions = self._plan_sessions(context, wake_local)
        for number, session in enumerate(sessions):
            self._exercise_index[session.exercise_id] = (index, number)
        steps, active_calories, calories = self._activity_totals(context, sessions)
        device = self.device_on(day)
        return DayState(
            date=day,
            index=index,
            event_kind=context.kind,
            offset_minutes=context.offset,
            zone=self.profile.home_zone if context.zone is not None else None,
            sleep_start_offset_minutes=start_offset,
            sleep_end_offset_minutes=end_offset,
            device_id=device.device_id,
            device_model=device.model,
            worn=worn,
            has_recharge=has_recharge,
            sleep_start_local=start_local,
            span_minutes=span_minutes,
            wake_minutes=night.wake_minutes,
            unrecognized_minutes=night.unrecognized_minutes,
            deep_fraction=night.deep_fraction,
            rem_fraction=night.rem_fraction,
            cycles=min(max(round(sleep_seconds / 60 / 92), 3), 7),
            continuity=night.continuity,
            sleep_score=scores.sleep_score,
            duration_score=scores.duration_score,
            solidity_score=scores.solidity_score,
            regeneration_score=scores.regeneration_score,
            sleep_charge=scores.sleep_charge,
            sleep_rating=scores.sleep_rating,
            sleep_goal_seconds=self.persona.sleep_goal_seconds,
            ln_rmssd=ln_rmssd,
            resting_hr=resting_hr,
            breathing_rate=breathing,
            ans_charge=ans_charge,
            sessions=tuple(sessions),
            training_load=sum(session.cardio_load for session in sessions),
            steps=steps,
            active_calories=active_calories,
            calories=calories,
            prodrome_of=prodrome[0].start if prodrome is not None else None,
        )

    def _sleep_window(self, context: _DayContext) -> tuple[int, int]:
        """Bedtime (minutes from local midnight of the wake-up day) and span of the night, whole minutes."""
        persona = self.persona
        rng = context.rng
        kind = context.kind
        weekend = context.weekend_morning
        bedtime = persona.bedtime_minutes + (45 if weekend else 0) + rng.gauss(0, persona.bedtime_sd)
        span = persona.sleep_span_minutes + (35 if weekend else 0) + rng.gauss(0, persona.sleep_span_sd)
        if rng.random() < persona.short_night_rate:
            span = rng.uniform(230, 330)
        if kind == "travel" and context.day_in_event < 3:
            bedtime += rng.uniform(-90, 90) * (3 - context.day_in_event) / 3
            span -= 60 - 20 * context.day_in_event
        if kind == "illness":
            span += 25
        previous = context.previous
        if previous is not None and previous.training_load > 120:
            span += 15
        bedtime = min(max(bedtime, EARLIEST_BEDTIME_MINUTES), LATEST_BEDTIME_MINUTES)
        span = min(max(span, 210.0), 660.0)
        if bedtime < 0:
            span = max(span, -bedtime + 20)  # wake up after midnight: the night's date is this day
        bedtime_minutes = round(bedtime)
        span_minutes = round(span)
        if previous is not None:
            # After a time-zone change, keep at least 3 h awake (in UTC) between two nights and 1 h after
            # yesterday's last session.
            awake_from = previous.sleep_end_utc + dt.timedelta(hours=3)
            for session in previous.sessions:
                session_end = session.start_utc + dt.timedelta(seconds=session.duration_seconds)
                awake_from = max(awake_from, session_end + dt.timedelta(hours=1))
            midnight_utc = dt.datetime.combine(context.day, dt.time(), tzinfo=dt.UTC) - dt.timedelta(
                minutes=context.offset
            )
            if context.zone is not None:  # on a DST day midnight has the offset before the change
                midnight_utc = local_to_utc(dt.datetime.combine(context.day, dt.time()), context.zone)
            earliest = (awake_from - midnight_utc) // dt.timedelta(minutes=1)
            if bedtime_minutes < earliest:
                span_minutes = max(210, span_minutes - (earliest + 1 - bedtime_minutes))
                bedtime_minutes = earliest + 1
        return bedtime_minutes, span_minutes

    def _night_structure(self, context: _DayContext, span_minutes: int) -> _NightStructure:
        """Continuity, awake blips, unrecognized minutes and stage fractions the hypnogram is built from."""
        persona = self.persona
        rng = context.rng
        continuity = persona.continuity + rng.gauss(0, 0.35)
        if context.kind == "illness":
            continuity -= 0.9
        elif context.kind == "overreaching":
            continuity -= 0.3
        continuity = round(min(max(continuity, 1.0), 4.9), 1)
        wake_count = max(0, round(rng.gauss((5.6 - continuity) * 2.6, 1.3)))
        wake_minutes: list[int] = []
        for _ in range(wake_count):
            draw = rng.random()
            wake_minutes.append(
                1 if draw < 0.55 else rng.randint(2, 5) if draw < 0.88 else rng.randint(5, 20)
            )
        while sum(wake_minutes) > span_minutes * 0.25:
            wake_minutes.pop()
        unrecognized = rng.randint(3, 25) if rng.random() < 0.08 else 0
        deep_fraction = persona.deep_fraction + rng.gauss(0, 0.025) + 0.00012 * context.load_1
        rem_fraction = 0.22 + rng.gauss(0, 0.03)
        if context.kind == "illness":
            deep_fraction -= 0.03
            rem_fraction -= 0.04
        return _NightStructure(
            continuity=continuity,
            wake_minutes=tuple(wake_minutes),
            unrecognized_minutes=unrecognized,
            deep_fraction=min(max(deep_fraction, 0.06), 0.28),
            rem_fraction=min(max(rem_fraction, 0.10), 0.32),
        )

    def _autonomic_state(self, context: _DayContext, sleep_seconds: int) -> tuple[float, float, float]:
        """lnRMSSD, overnight HR and breathing rate: AR(1) noise plus training, sleep-loss, event effects."""
        persona = self.persona
        profile = self.profile
        rng = context.rng
        kind = context.kind
        event = context.event
        previous = context.previous
        goal = persona.sleep_goal_seconds
        deficit_hours = max(0.0, (goal - sleep_seconds) / 3600)
        previous_deficit = max(0.0, (goal - previous.sleep_seconds) / 3600) if previous else 0.0
        innovation_sd = persona.ln_rmssd_sd * math.sqrt(1 - AR_COEFFICIENT**2)
        self._hrv_noise = AR_COEFFICIENT * self._hrv_noise + rng.gauss(0, innovation_sd)
        self._hr_noise = 0.5 * self._hr_noise + rng.gauss(0, 0.9)
        noise_scale = 0.5 if kind == "illness" else 1.0
        ln_rmssd = profile.ln_rmssd + self._hrv_noise * noise_scale
        ln_rmssd -= 0.0009 * context.load_1 + 0.0004 * context.load_2
        coupling = persona.sleep_ln_rmssd_per_hour
        if coupling is None:
            ln_rmssd -= 0.035 * deficit_hours + 0.02 * previous_deficit
        else:
            tonight, night_before = coupling
            ln_rmssd += tonight * _hours_past_goal(sleep_seconds, goal)
            if previous is not None:
                ln_rmssd += night_before * _hours_past_goal(previous.sleep_seconds, goal)
        if context.weekend_morning:
            ln_rmssd += persona.weekend_ln_rmssd
        resting_hr = (
            profile.resting_hr + 0.012 * context.load_1 + 0.004 * context.load_2 + 0.5 * deficit_hours
        )
        resting_hr += self._hr_noise - 6.0 * self._hrv_noise
        breathing = profile.breathing_rate + rng.gauss(0, 0.35)
        day_in_event = context.day_in_event
        if event is not None and kind == "illness":
            factor = ILLNESS_PROFILE[day_in_event]
            ln_rmssd -= float(event.details["ln_rmssd_drop"]) * factor
            resting_hr += float(event.details["resting_hr_rise"]) * factor
            breathing += 1.8 * factor
        elif kind == "overreaching":
            ln_rmssd -= min(0.03 * (day_in_event + 1), 0.35)
            resting_hr += min(0.4 * (day_in_event + 1), 5.0)
        elif kind == "travel" and day_in_event < 3:
            ln_rmssd -= (0.12, 0.08, 0.04)[day_in_event]
            resting_hr += (2.5, 1.5, 0.5)[day_in_event]
        recovery = self._recent_event_residual(context.day)
        ln_rmssd -= recovery
        resting_hr += 10 * recovery
        if len(self.devices) > 1 and context.day >= self.devices[-1].first_day:
            ln_rmssd += DEVICE_SWITCH_LN_RMSSD_SHIFT
        if event is not None and kind == "illness":
            ln_rmssd = min(ln_rmssd, self._illness_ceiling(event, rng))
        return ln_rmssd, resting_hr, breathing

    def _sleep_scores(
        self, context: _DayContext, night: _NightStructure, sleep_seconds: int, usual_scores: list[int]
    ) -> _SleepScores:
        """Polar-style group scores (duration, solidity, regeneration), the sleep score, charge and rating."""
        rng = context.rng
        duration_ratio = sleep_seconds / self.persona.sleep_goal_seconds
        duration = 100.0 if duration_ratio >= 1 else max(1.0, 100 - (1 - duration_ratio) * 160)
        long_wake = sum(minutes for minutes in night.wake_minutes if minutes >= 2)
        solidity = min(max(25 + 15 * night.continuity - 0.3 * long_wake + rng.gauss(0, 3), 1.0), 100.0)
        regeneration = 30 + (night.deep_fraction - 0.08) * 220 + (night.rem_fraction - 0.12) * 180
        regeneration = min(max(regeneration + rng.gauss(0, 4), 1.0), 100.0)
        score = min(max(round(0.45 * duration + 0.30 * solidity + 0.25 * regeneration), 1), 100)
        rating = 0
        if self.profile.rates_sleep and rng.random() < 0.6:
            rating = min(max(round(score / 20 + rng.gauss(0, 0.7)), 1), 5)
        return _SleepScores(
            sleep_score=score,
            duration_score=round(duration, 4),
            solidity_score=round(solidity, 4),
            regeneration_score=round(regeneration, 4),
            sleep_charge=_sleep_charge(score, usual_scores),
            sleep_rating=rating,
        )

    def _activity_totals(self, context: _DayContext, sessions: list[Session]) -> tuple[int, int, int]:
        """Steps, active calories and total calories (BMR + active) of the calendar day."""
        profile = self.profile
        rng = context.rng
        steps = self.persona.daily_steps * (1.1 if context.day.weekday() >= 5 else 1.0)
        steps *= math.exp(rng.gauss(0, 0.22))
        steps += sum(session.spec.steps_per_minute * session.duration_seconds / 60 for session in sessions)
        if context.kind == "illness":
            steps *= 0.35
        elif context.kind == "travel" and context.day_in_event == 0:
            steps *= 0.6
        step_count = round(steps)
        active = step_count * 0.042 * profile.weight_kg / 70
        active += 0.85 * sum(session.calories for session in sessions) + rng.gauss(0, 40)
        active_calories = max(60, round(active))
        calories = round(profile.bmr_kcal(context.day)) + active_calories + rng.randint(-20, 20)
        return step_count, active_calories, calories

    def _illness_ceiling(self, event: Event, rng: random.Random) -> float:
        """Keep every illness night below the far-out Tukey fence (Q1 - 3 IQR) of the 60 nights before it
        (their values without prodrome signs, so a prodrome does not move the illness nights).

        For noisy personas a fixed -0.6 drop would not always be "critical"; the spec wants illness weeks that
        a 60-day Tukey baseline flags, so the night is capped a little below that fence.
        """
        first = (event.start - self.history_start).days
        nights = range(max(0, first - 60), first)
        baseline = [self._usual_autonomic[n][0] for n in nights if self._days[n].has_recharge]
        if len(baseline) < 8:
            return math.inf
        q1, _, q3 = statistics.quantiles(baseline, n=4)
        return q1 - 3 * (q3 - q1) - rng.uniform(0.03, 0.08)

    def _recent_event_residual(self, day: dt.date) -> float:
        """HRV still below normal for a few days after an illness or an overreaching block."""
        for back in range(1, 6):
            event = self._event_by_date.get(day - dt.timedelta(days=back))
            if event is not None and event.kind in ("illness", "overreaching") and event.end < day:
                return 0.12 * (6 - back) / 5
        return 0.0

    def _plan_sessions(self, context: _DayContext, wake: dt.datetime) -> list[Session]:
        """The day's sessions (after waking at the naive local ``wake``) from the persona's weekly template,
        periodisation and events. A late session may start after midnight: it is still planned here, and
        its own start decides which local day it is dated by."""
        index, day, rng, offset = context.index, context.day, context.rng, context.offset
        persona = self.persona.name
        kind = context.kind
        if not self.persona.trains or kind == "illness" or self._recently_ill(day):
            return []
        weekday = day.weekday()
        overreaching = kind == "overreaching"
        # An overreaching block: ~1.8x the usual load (fewer skipped sessions, longer and harder ones).
        week_factor = 1.0 if overreaching else PERIODISATION[(index // 7) % 4]
        overreach_duration = 1.3 if persona == "endurance_athlete" else 1.1
        planned: list[tuple[str, float, float]] = []
        if persona == "endurance_athlete":
            for sport, minutes, skip in ATHLETE_WEEK.get(weekday, ()):
                if week_factor < 0.7 and sport == "run_intervals":
                    sport = "run_easy"
                planned.append((sport, minutes * week_factor, skip))
        elif persona == "casual_exerciser":
            planned = [(s, m, p) for s, m, p in CASUAL_WEEK.get(weekday, ())]
        elif persona == NIGHT_OWL:
            planned = [(s, m, p) for s, m, p in NIGHT_OWL_WEEK.get(weekday, ())]
        elif rng.random() < 2 / 7:
            sport, minutes = rng.choice(IRREGULAR_KINDS)
            planned.append((sport, minutes, 0.0))
        intensity_bonus = 0.05 if overreaching else 0.0
        if persona != "endurance_athlete":
            intensity_bonus += 0.05

        day_start = dt.datetime.combine(day, dt.time())
        earliest = max(wake + dt.timedelta(minutes=25), day_start + dt.timedelta(hours=5, minutes=30))
        latest_end = day_start + dt.timedelta(minutes=self.persona.latest_session_end_minutes)
        sessions: list[Session] = []
        busy_until = earliest
        for number, (sport, minutes, skip) in enumerate(planned):
            skip_probability = 0.0 if overreaching else skip
            if kind == "travel":
                skip_probability = max(skip_probability, 0.5)
            if rng.random() < skip_probability:
                continue
            minutes *= rng.uniform(0.85, 1.15) * (overreach_duration if overreaching else 1.0)
            preferred = self._preferred_start(day_start, weekday, rng, number)
            start = max(preferred, busy_until).replace(microsecond=0)
            duration_seconds = round(minutes * 60 + rng.uniform(0, 59.999), 3)
            duration = dt.timedelta(seconds=duration_seconds)
            if start + duration > latest_end:
                start = (latest_end - duration).replace(microsecond=0)
                if start < busy_until:
                    continue
            intensity = min(SESSION_INTENSITY[sport] + intensity_bonus + rng.gauss(0, 0.03), 0.92)
            if context.zone is not None:  # the watch writes the offset in force when the session starts
                offset = offset_minutes_of_local(start, context.zone)
            sessions.append(
                self._make_session(day, len(sessions), sport, start, offset, duration_seconds, intensity)
            )
            busy_until = start + duration + dt.timedelta(hours=2)
        return sessions

    def _recently_ill(self, day: dt.date) -> bool:
        for back in (1, 2):
            event = self._event_by_date.get(day - dt.timedelta(days=back))
            if event is not None and event.kind == "illness":
                return True
        return False

    def _preferred_start(
        self, day_start: dt.datetime, weekday: int, rng: random.Random, number: int
    ) -> dt.datetime:
        persona = self.persona.name
        if persona == NIGHT_OWL:
            mean, sd, latest = NIGHT_OWL_START_MINUTES
            minutes = min(rng.gauss(mean, sd), latest)
        elif persona == "irregular_sleeper":
            minutes = rng.uniform(7 * 60, 20 * 60)
        elif weekday >= 5:
            minutes = rng.gauss(9 * 60, 30)
        elif persona == "endurance_athlete" and number == 0 and rng.random() < 0.5:
            minutes = rng.gauss(6 * 60 + 40, 15)
        else:
            minutes = rng.gauss(17 * 60 + 30, 30)
        return day_start + dt.timedelta(minutes=minutes, seconds=rng.randint(0, 59))

    def _make_session(
        self,
        day: dt.date,
        number: int,
        sport: str,
        start: dt.datetime,
        offset: int,
        duration_seconds: float,
        intensity: float,
    ) -> Session:
        profile = self.profile
        rng = rng_for(self.seed, self.x_user_id, "session", day.isoformat(), number)
        reserve = profile.hr_max - profile.resting_hr
        average_hr = round(profile.resting_hr + 8 + intensity * reserve)
        minutes = duration_seconds / 60
        # Banister TRIMP, the daily "cardio load" Polar derives from heart rate
        cardio_load = minutes * intensity * 0.64 * math.exp(1.92 * intensity)
        age = profile.age_on(day)
        if profile.gender == "MALE":
            per_minute = (-55.0969 + 0.6309 * average_hr + 0.1988 * profile.weight_kg + 0.2017 * age) / 4.184
        else:
            per_minute = (-20.4022 + 0.4472 * average_hr - 0.1263 * profile.weight_kg + 0.074 * age) / 4.184
        calories = max(10, round(per_minute * minutes))
        low, high = self.persona.upload_delay_minutes
        end_utc = (start - dt.timedelta(minutes=offset)).replace(tzinfo=dt.UTC) + dt.timedelta(
            seconds=duration_seconds
        )
        upload = (end_utc + dt.timedelta(minutes=rng.uniform(low, high))).replace(microsecond=0)
        device = self.device_on(day)
        rpe = None
        if rng.random() < 0.15:
            rpe = rng.choice(("RPE_EASY", "RPE_MODERATE", "RPE_FAIRLY_HARD", "RPE_HARD"))
        return Session(
            exercise_id=base62_id(self.seed, self.x_user_id, "exercise", day.isoformat(), number),
            kind=sport,
            start_local=start,
            offset_minutes=offset,
            duration_seconds=duration_seconds,
            intensity=intensity,
            average_hr=average_hr,
            cardio_load=round(cardio_load, 4),
            calories=calories,
            upload_utc=upload,
            device_id=device.device_id,
            device_model=device.model,
            rpe=rpe,
        )


def _sleep_charge(score: int, previous_scores: list[int]) -> int:
    """Sleep score versus the usual level of the previous 28 nights (1 much below … 5 much above, -1 n/a)."""
    if len(previous_scores) < 3:
        return -1
    difference = score - sum(previous_scores) / len(previous_scores)
    if difference <= -12:
        return 1
    if difference <= -4:
        return 2
    if difference < 4:
        return 3
    if difference < 12:
        return 4
    return 5


def _hours_past_goal(sleep_seconds: int, goal_seconds: int) -> float:
    """Hours slept beyond the goal (negative when short of it); a surplus counts up to one hour."""
    return min((sleep_seconds - goal_seconds) / 3600, 1.0)


def _prodrome_signs(
    prodrome: tuple[Event, float], ln_rmssd: float, resting_hr: float, breathing: float
) -> tuple[float, float, float]:
    """A prodrome night before an illness week: ``share`` (k/n) of the event's peak early signs."""
    illness, share = prodrome
    return (
        ln_rmssd - float(illness.details["prodrome_ln_rmssd_drop"]) * share,
        resting_hr + float(illness.details["prodrome_hr_rise"]) * share,
        breathing + float(illness.details["prodrome_breathing_rise"]) * share,
    )


def _ans_charge(ln_rmssd: float, resting_hr: float, history: list[tuple[float, float]]) -> float:
    """HRV and HR of the night versus the usual level of the previous 28 nights, on a -10..+10 scale.

    ``history`` holds (ln rMSSD, heart rate) of those nights with a recharge, prodrome signs left out.
    """
    if len(history) < 3:
        return 0.0
    ln_values = [ln for ln, _ in history]
    hr_values = [hr for _, hr in history]
    ln_mean = sum(ln_values) / len(ln_values)
    hr_mean = sum(hr_values) / len(hr_values)
    ln_sd = max(math.sqrt(sum((v - ln_mean) ** 2 for v in ln_values) / len(ln_values)), 0.06)
    hr_sd = max(math.sqrt(sum((v - hr_mean) ** 2 for v in hr_values) / len(hr_values)), 1.5)
    charge = 2.4 * (ln_rmssd - ln_mean) / ln_sd - 1.2 * (resting_hr - hr_mean) / hr_sd
    return round(min(max(charge, -10.0), 10.0), 1)
