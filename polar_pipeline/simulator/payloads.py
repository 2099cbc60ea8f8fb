"""Wire-format rendering of sleep, Nightly Recharge, daily activity, continuous HR and cardio load.

Payloads are rendered on demand from a day's latent state plus a per-(user, day, resource) seed, so the same
request always yields the same bytes and nothing large is cached. Key sets and value styles follow the real
payloads in ``tests/fixtures/accesslink-real`` (docs/accesslink.md §5.4, §6, §7).

Sleep invariants hold exactly because every duration is derived from the hypnogram: the night spans a whole
number of minutes (start and end share their seconds and milliseconds), each hypnogram key starts a segment of
whole minutes, and the stage fields are the per-stage segment sums × 60. Awake runs of one minute count as
short interruptions (< 90 s), longer runs as long interruptions.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from typing import Any

from polar_pipeline.simulator.physiology import DayState, UserModel
from polar_pipeline.simulator.seeding import rng_for
from polar_pipeline.simulator.timefmt import iso_duration, iso_local_ms, naive_short
from polar_pipeline.simulator.zones import skipped_local_minutes

WAKE, REM, N1, N2, N3, UNKNOWN = 0, 1, 2, 3, 4, 5
SAMPLE_GRID_MINUTES = 5
EPOCH_SECONDS = 30
EPOCHS_PER_DAY = 86400 // EPOCH_SECONDS
STEP_INTERVAL_MS = 60000


def polar_user_url(x_user_id: int) -> str:
    """The host style real sleep, recharge and CHR payloads use (no ``www``)."""
    return f"https://polaraccesslink.com/v3/users/{x_user_id}"


# ------------------------------------------------------------------------------------------------ sleep


def build_hypnogram(state: DayState, rng: random.Random) -> list[tuple[int, int]]:
    """Segments ``(stage, minutes)`` in order, summing to the span; wake minutes match the latent total."""
    wake_total = sum(state.wake_minutes)
    staged = state.span_minutes - wake_total - state.unrecognized_minutes
    cycles = max(1, min(state.cycles, staged // 45 or 1))
    deep = round(staged * state.deep_fraction)
    rem = round(staged * state.rem_fraction)
    lighter = round(staged * 0.04)
    light = staged - deep - rem - lighter
    deep_split = _split(deep, [(cycles - k) ** 1.6 for k in range(cycles)])
    rem_split = _split(rem, [(k + 1) ** 1.2 for k in range(cycles)])
    lighter_split = _split(lighter, [1.0 + rng.random() for _ in range(cycles)])
    light_split = _split(light, [1.0 + 0.3 * rng.random() for _ in range(cycles)])
    segments: list[tuple[int, int]] = []
    for k in range(cycles):
        first_light = light_split[k] // 2 if deep_split[k] else light_split[k]
        for stage, minutes in (
            (N1, lighter_split[k]),
            (N2, first_light),
            (N3, deep_split[k]),
            (N2, light_split[k] - first_light),
            (REM, rem_split[k]),
        ):
            if minutes > 0:
                segments.append((stage, minutes))
    segments = _fragment_deep_sleep(segments, rng)
    if state.unrecognized_minutes:
        segments = _insert(segments, rng.randint(1, max(1, staged - 1)), UNKNOWN, state.unrecognized_minutes)
    asleep = staged + state.unrecognized_minutes
    for minutes in state.wake_minutes:
        segments = _insert(segments, rng.randint(min(5, asleep - 1), max(5, asleep - 2)), WAKE, minutes)
    if rng.random() < 0.2:
        segments = _split_one_segment(segments, rng)
    return segments


def _fragment_deep_sleep(segments: list[tuple[int, int]], rng: random.Random) -> list[tuple[int, int]]:
    """Real deep-sleep blocks are broken by brief arousals: carve 1-3 min of N2 out of long ones."""
    result: list[tuple[int, int]] = []
    for stage, minutes in segments:
        if stage != N3 or minutes < 16:
            result.append((stage, minutes))
            continue
        remaining = minutes
        for _ in range(rng.randint(1, 2)):
            if remaining < 12:
                break
            before = rng.randint(5, remaining - 6)
            arousal = rng.randint(1, 3)
            result.extend([(N3, before), (N2, arousal)])
            remaining -= before + arousal
        result.append((N3, remaining))
    return result


def _split(total: int, weights: list[float]) -> list[int]:
    """Integer shares of ``total`` proportional to ``weights`` (largest remainder: the sum stays exact)."""
    weight_sum = sum(weights) or 1.0
    raw = [total * w / weight_sum for w in weights]
    shares = [math.floor(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - shares[i], reverse=True)
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _insert(
    segments: list[tuple[int, int]], position: int, stage: int, minutes: int
) -> list[tuple[int, int]]:
    """Insert a block at ``position`` minutes into the non-wake timeline (wake blocks do not count)."""
    result: list[tuple[int, int]] = []
    elapsed = 0
    inserted = False
    for seg_stage, seg_minutes in segments:
        counts = seg_stage != WAKE
        if not inserted and counts and elapsed + seg_minutes > position:
            before = position - elapsed
            if before > 0:
                result.append((seg_stage, before))
            result.append((stage, minutes))
            if seg_minutes - before > 0:
                result.append((seg_stage, seg_minutes - before))
            inserted = True
        else:
            result.append((seg_stage, seg_minutes))
        if counts:
            elapsed += seg_minutes
    if not inserted:
        result.append((stage, minutes))
    return result


def _split_one_segment(segments: list[tuple[int, int]], rng: random.Random) -> list[tuple[int, int]]:
    """Real hypnograms sometimes repeat a value on consecutive keys."""
    long_ones = [i for i, (stage, minutes) in enumerate(segments) if minutes >= 6 and stage != WAKE]
    if not long_ones:
        return segments
    i = rng.choice(long_ones)
    stage, minutes = segments[i]
    cut = rng.randint(2, minutes - 2)
    return [*segments[:i], (stage, cut), (stage, minutes - cut), *segments[i + 1 :]]


@dataclass(frozen=True)
class NightTotals:
    light: int
    deep: int
    rem: int
    unrecognized: int
    short_interruptions: int
    long_interruptions: int

    @property
    def total_interruptions(self) -> int:
        return self.short_interruptions + self.long_interruptions


def night_totals(segments: list[tuple[int, int]]) -> NightTotals:
    by_stage = {stage: 0 for stage in range(6)}
    short = long = 0
    wake_run = 0
    for stage, minutes in [*segments, (N2, 0)]:
        by_stage[stage] += minutes
        if stage == WAKE:
            wake_run += minutes
            continue
        if wake_run:
            if wake_run * 60 < 90:
                short += wake_run * 60
            else:
                long += wake_run * 60
            wake_run = 0
    return NightTotals(
        light=(by_stage[N1] + by_stage[N2]) * 60,
        deep=by_stage[N3] * 60,
        rem=by_stage[REM] * 60,
        unrecognized=by_stage[UNKNOWN] * 60,
        short_interruptions=short,
        long_interruptions=long,
    )


_TRIANGULAR_SCALE = math.sqrt(6)


def _jitter(rng: random.Random, sd: float) -> float:
    """Cheap bell-shaped sample noise (triangular, standard deviation ``sd``) for per-sample series."""
    return (rng.random() + rng.random() - 1.0) * sd * _TRIANGULAR_SCALE


# "HH:MM" of every minute of the day, so series keys are a list lookup rather than a strftime.
_CLOCK_LABELS = [f"{minute // 60:02d}:{minute % 60:02d}" for minute in range(1440)]


@dataclass(frozen=True)
class NightLayout:
    """The hypnogram of one night plus per-minute lookups shared by the sleep and recharge renderers."""

    segments: list[tuple[int, int]]
    stage_by_minute: list[int]  # index = minutes since the sleep-start minute
    first_minute_of_day: int

    def label(self, minute: int) -> str:
        """The ``HH:MM`` key ``minute`` minutes after the start minute (wrapping past midnight).

        Keys keep the clock of ``sleep_start_time`` (its offset) all night, also through a DST change, so
        they never skip or repeat; how real watches label that hour is unconfirmed (docs/time-zones.md).
        """
        return _CLOCK_LABELS[(self.first_minute_of_day + minute) % 1440]


def night_layout(model: UserModel, state: DayState) -> NightLayout:
    segments = build_hypnogram(state, rng_for(model.seed, model.x_user_id, "sleep", state.date.isoformat()))
    stage_by_minute: list[int] = []
    for stage, minutes in segments:
        stage_by_minute.extend([stage] * minutes)
    start = state.sleep_start_local
    return NightLayout(segments, stage_by_minute, start.hour * 60 + start.minute)


def render_sleep(model: UserModel, state: DayState) -> dict[str, Any]:
    layout = night_layout(model, state)
    rng = rng_for(model.seed, model.x_user_id, "sleep-hr", state.date.isoformat())
    totals = night_totals(layout.segments)
    start = state.sleep_start_local
    hypnogram: dict[str, int] = {}
    elapsed = 0
    for stage, minutes in layout.segments:
        hypnogram[layout.label(elapsed)] = stage
        elapsed += minutes
    hypnogram[layout.label(elapsed)] = WAKE
    heart_rate_samples: dict[str, int] = {}
    for minute in range(2, state.span_minutes, SAMPLE_GRID_MINUTES):
        stage = layout.stage_by_minute[minute]
        value = state.resting_hr + _HR_STAGE_OFFSET[stage] + 5 * math.exp(-minute / 40)
        value += 2 * minute / state.span_minutes + _jitter(rng, 1.2)
        heart_rate_samples[layout.label(minute)] = 0 if rng.random() < 0.006 else round(value)
    return {
        "polar_user": polar_user_url(model.x_user_id),
        "date": state.date.isoformat(),
        "sleep_start_time": iso_local_ms(start, state.sleep_start_offset_minutes),
        "sleep_end_time": iso_local_ms(state.sleep_end_local, state.sleep_end_offset_minutes),
        "device_id": state.device_id,
        "continuity": state.continuity,
        "continuity_class": int(state.continuity),
        "light_sleep": totals.light,
        "deep_sleep": totals.deep,
        "rem_sleep": totals.rem,
        "unrecognized_sleep_stage": totals.unrecognized,
        "sleep_score": state.sleep_score,
        "total_interruption_duration": totals.total_interruptions,
        "sleep_charge": state.sleep_charge,
        "sleep_goal": state.sleep_goal_seconds,
        "sleep_rating": state.sleep_rating,
        "short_interruption_duration": totals.short_interruptions,
        "long_interruption_duration": totals.long_interruptions,
        "sleep_cycles": state.cycles,
        "group_duration_score": state.duration_score,
        "group_solidity_score": state.solidity_score,
        "group_regeneration_score": state.regeneration_score,
        "hypnogram": hypnogram,
        "heart_rate_samples": heart_rate_samples,
    }


_HR_STAGE_OFFSET = {WAKE: 8.0, REM: 3.0, N1: 4.0, N2: 0.5, N3: -2.5, UNKNOWN: 1.0}
_HRV_STAGE_OFFSET = {WAKE: -0.25, REM: -0.08, N1: -0.05, N2: 0.0, N3: 0.12, UNKNOWN: 0.0}
_BREATHING_STAGE_OFFSET = {WAKE: 1.0, REM: 0.6, N1: 0.3, N2: 0.0, N3: -0.4, UNKNOWN: 0.0}


def render_sleep_available(state: DayState) -> dict[str, Any]:
    return {
        "date": state.date.isoformat(),
        "start_time": iso_local_ms(state.sleep_start_local, state.sleep_start_offset_minutes),
        "end_time": iso_local_ms(state.sleep_end_local, state.sleep_end_offset_minutes),
    }


# ------------------------------------------------------------------------------------------------ recharge


def ans_charge_status(ans_charge: float) -> int:
    """Synthetic mapping (Polar's thresholds are unpublished, docs/accesslink.md §12.2)."""
    if ans_charge <= -5:
        return 1
    if ans_charge <= -1.5:
        return 2
    if ans_charge < 1.5:
        return 3
    if ans_charge < 5:
        return 4
    return 5


def nightly_recharge_status(ans_charge: float, sleep_charge: int) -> int:
    """Synthetic: clamp(round((ANS status + sleep charge) / 2 + 0.5 * sign(ANS charge)), 1, 6)."""
    sleep_part = sleep_charge if sleep_charge > 0 else 3
    sign = (ans_charge > 0) - (ans_charge < 0)
    value = (ans_charge_status(ans_charge) + sleep_part) / 2 + 0.5 * sign
    return min(max(math.floor(value + 0.5), 1), 6)


def render_recharge(model: UserModel, state: DayState) -> dict[str, Any]:
    layout = night_layout(model, state)
    rng = rng_for(model.seed, model.x_user_id, "recharge", state.date.isoformat())
    hrv_samples: dict[str, int] = {}
    for minute in range(2, state.span_minutes, SAMPLE_GRID_MINUTES):
        stage = layout.stage_by_minute[minute]
        log_value = (
            state.ln_rmssd + _HRV_STAGE_OFFSET[stage] - 0.15 * math.exp(-minute / 40) + _jitter(rng, 0.16)
        )
        hrv_samples[layout.label(minute)] = max(5, round(math.exp(log_value)))
    breathing_samples: dict[str, float] = {}
    for minute in range(0, state.span_minutes, SAMPLE_GRID_MINUTES):
        stage = layout.stage_by_minute[minute]
        value = state.breathing_rate + _BREATHING_STAGE_OFFSET[stage] + _jitter(rng, 0.25)
        breathing_samples[layout.label(minute)] = round(value, 1)
    return {
        "polar_user": polar_user_url(model.x_user_id),
        "date": state.date.isoformat(),
        "heart_rate_avg": round(state.resting_hr),
        "beat_to_beat_avg": round(60000 / state.resting_hr),
        "heart_rate_variability_avg": state.rmssd_ms,
        "breathing_rate_avg": round(state.breathing_rate, 1),
        "nightly_recharge_status": nightly_recharge_status(state.ans_charge, state.sleep_charge),
        "ans_charge": state.ans_charge,
        "ans_charge_status": ans_charge_status(state.ans_charge),
        "hrv_samples": hrv_samples,
        "breathing_samples": breathing_samples,
    }


# ------------------------------------------------------------------------------------------------ activity

SLEEP, SEDENTARY, LIGHT, MODERATE, VIGOROUS = "SLEEP", "SEDENTARY", "LIGHT", "MODERATE", "VIGOROUS"
_STEP_WEIGHT = {SLEEP: 0.0, SEDENTARY: 0.04, LIGHT: 1.0, MODERATE: 2.4, VIGOROUS: 2.4}


@dataclass(frozen=True)
class DayTimeline:
    """Activity zones of one local day as ``(first_epoch, zone)`` change points of 30-s epochs."""

    blocks: list[tuple[int, int, str]]  # (first epoch, end epoch exclusive, zone)
    session_blocks: list[tuple[int, int, float]]  # (first epoch, end epoch, steps per minute)

    def seconds_in(self, zones: tuple[str, ...], until_epoch: int = EPOCHS_PER_DAY) -> int:
        total = 0
        for first, end, zone in self.blocks:
            if zone in zones and first < until_epoch:
                total += (min(end, until_epoch) - first) * EPOCH_SECONDS
        return total

    def zone_at(self, epoch: int) -> str:
        for first, end, zone in self.blocks:
            if first <= epoch < end:
                return zone
        return SEDENTARY


def _epoch_of(day_start: dt.datetime, moment: dt.datetime) -> int:
    seconds = (moment - day_start).total_seconds()
    return min(max(int(seconds // EPOCH_SECONDS), 0), EPOCHS_PER_DAY)


def day_timeline(model: UserModel, state: DayState) -> DayTimeline:
    """Sleep at both ends, the day's sessions, and alternating sedentary / light / moderate blocks between."""
    rng = rng_for(model.seed, model.x_user_id, "timeline", state.date.isoformat())
    day_start = dt.datetime.combine(state.date, dt.time())
    wake_epoch = (
        _epoch_of(day_start, state.sleep_end_local)
        if state.worn
        else _epoch_of(day_start, day_start + dt.timedelta(hours=7))
    )
    following = model.day(state.date + dt.timedelta(days=1))
    bed_epoch = EPOCHS_PER_DAY
    if following is not None and following.worn:
        shift = dt.timedelta(minutes=state.offset_minutes - following.sleep_start_offset_minutes)
        bed_epoch = _epoch_of(day_start, following.sleep_start_local + shift)
    bed_epoch = max(bed_epoch, wake_epoch + 120)
    fixed: list[tuple[int, int, str, float]] = []
    for session in state.sessions:
        first = _epoch_of(day_start, session.start_local)
        end = max(first + 1, _epoch_of(day_start, session.end_local))
        zone = VIGOROUS if session.intensity >= 0.68 else MODERATE if session.intensity >= 0.42 else LIGHT
        first = min(max(first, wake_epoch), bed_epoch)
        fixed.append((first, min(end, bed_epoch), zone, session.spec.steps_per_minute))
    blocks: list[tuple[int, int, str]] = []
    if wake_epoch > 0:
        blocks.append((0, wake_epoch, SLEEP))
    active_share = min(max(0.25 + state.steps / 40000, 0.2), 0.7)
    cursor = wake_epoch
    for first, end, zone, _ in [*sorted(fixed), (bed_epoch, bed_epoch, SLEEP, 0.0)]:
        while cursor < first:
            sedentary = max(1, round(rng.expovariate(1 / (30 * (1 - active_share)))))
            blocks.append((cursor, min(cursor + sedentary, first), SEDENTARY))
            cursor = min(cursor + sedentary, first)
            if cursor >= first:
                break
            active = max(1, round(rng.expovariate(1 / (30 * active_share))))
            zone_here = MODERATE if rng.random() < 0.12 else LIGHT
            blocks.append((cursor, min(cursor + active, first), zone_here))
            cursor = min(cursor + active, first)
        if end > first and first >= cursor:
            blocks.append((first, end, zone))
            cursor = end
    if bed_epoch < EPOCHS_PER_DAY:
        blocks.append((bed_epoch, EPOCHS_PER_DAY, SLEEP))
    merged: list[tuple[int, int, str]] = []
    for block in blocks:
        if block[1] <= block[0]:
            continue
        if merged and merged[-1][2] == block[2] and merged[-1][1] == block[0]:
            merged[-1] = (merged[-1][0], block[1], block[2])
        else:
            merged.append(block)
    return DayTimeline(merged, [(f, e, spm) for f, e, _, spm in fixed])


def local_now_epoch(state: DayState, now_utc: dt.datetime) -> int:
    """How much of the local day ``state.date`` has passed at ``now_utc`` (0 … EPOCHS_PER_DAY)."""
    local_now = now_utc.replace(tzinfo=None) + dt.timedelta(minutes=state.offset_minutes)
    return _epoch_of(dt.datetime.combine(state.date, dt.time()), local_now)


def render_activity(
    model: UserModel,
    state: DayState,
    now_utc: dt.datetime,
    *,
    steps: bool = False,
    activity_zones: bool = False,
    inactivity_stamps: bool = False,
) -> dict[str, Any]:
    """A day summary; for the current local day only the part up to "now" (steps and calories so far)."""
    timeline = day_timeline(model, state)
    until = local_now_epoch(state, now_utc)
    fraction = until / EPOCHS_PER_DAY
    day_start = dt.datetime.combine(state.date, dt.time())
    minute_steps = _minute_steps(model, state, timeline) if steps or until < EPOCHS_PER_DAY else None
    step_count = sum(minute_steps[: until // 2]) if minute_steps is not None else state.steps
    active_share = step_count / state.steps if state.steps else fraction
    active_calories = round(state.active_calories * active_share)
    bmr = state.calories - state.active_calories
    calories = round(bmr * fraction) + active_calories
    goal = 0.62 * model.profile.bmr_kcal(state.date)
    sedentary_blocks = [
        (first, min(end, until))
        for first, end, zone in timeline.blocks
        if zone == SEDENTARY and first < until
    ]
    alert_epochs = [
        first + 110 + 120 * k for first, end in sedentary_blocks for k in range((end - first) // 120)
    ]
    payload: dict[str, Any] = {
        "start_time": naive_short(day_start),
        "end_time": naive_short(day_start + dt.timedelta(seconds=86399)),
        "active_duration": iso_duration(timeline.seconds_in((LIGHT, MODERATE, VIGOROUS), until)),
        "inactive_duration": iso_duration(timeline.seconds_in((SEDENTARY,), until)),
        "daily_activity": round(100 * active_calories / goal, 2),
        "calories": calories,
        "active_calories": active_calories,
        "steps": step_count,
        "inactivity_alert_count": len(alert_epochs),
        "distance_from_steps": round(step_count * model.profile.stride_m, 2),
    }
    if steps or activity_zones or inactivity_stamps:
        samples: dict[str, Any] = {"date": state.date.isoformat()}
        if steps and minute_steps is not None:
            step_samples = []
            last: int | None = None
            for minute, count in enumerate(minute_steps[: until // 2]):
                if count != last:
                    stamp = naive_short(day_start + dt.timedelta(minutes=minute))
                    step_samples.append({"steps": count, "timestamp": stamp})
                    last = count
            samples["steps"] = {
                "interval_ms": STEP_INTERVAL_MS,
                "total_steps": step_count,
                "samples": step_samples,
            }
        if activity_zones:
            samples["activity_zones"] = {
                "samples": [
                    {
                        "timestamp": naive_short(day_start + dt.timedelta(seconds=first * EPOCH_SECONDS)),
                        "zone": zone,
                    }
                    for first, _, zone in timeline.blocks
                    if first < until
                ]
            }
        if inactivity_stamps:
            samples["inactivity_stamps"] = [
                {"stamp": naive_short(day_start + dt.timedelta(seconds=epoch * EPOCH_SECONDS))}
                for epoch in alert_epochs
            ]
        payload["samples"] = samples
    return payload


def _minute_steps(model: UserModel, state: DayState, timeline: DayTimeline) -> list[int]:
    """The day's steps spread over its minutes by zone weight; sums exactly to the day's total."""
    rng = rng_for(model.seed, model.x_user_id, "steps", state.date.isoformat())
    weights = [0.0] * (EPOCHS_PER_DAY // 2)
    for first, end, zone in timeline.blocks:
        for epoch in range(first, end):
            weights[epoch // 2] += _STEP_WEIGHT[zone] * (0.5 + rng.random())
    for first, end, per_minute in timeline.session_blocks:
        for epoch in range(first, end):
            weights[epoch // 2] += per_minute / 40
    return _split(state.steps, weights)


# -------------------------------------------------------------------------------------------- continuous HR


def render_continuous_hr(model: UserModel, state: DayState, now_utc: dt.datetime) -> dict[str, Any]:
    """~5-min samples drifting by a second, 0 = off-wrist, sometimes a dense 1-s stretch.

    Shape: docs/accesslink.md §5.4.
    """
    rng = rng_for(model.seed, model.x_user_id, "chr", state.date.isoformat())
    timeline = day_timeline(model, state)
    until_seconds = local_now_epoch(state, now_utc) * EPOCH_SECONDS
    session_hr = {}
    for session in state.sessions:
        first = int((session.start_local - dt.datetime.combine(state.date, dt.time())).total_seconds())
        session_hr[(first, first + int(session.duration_seconds))] = session.average_hr
    dense_start = dense_end = -1
    if rng.random() < 0.15:
        dense_start = rng.randint(8 * 3600, 19 * 3600)
        dense_end = dense_start + rng.randint(20, 60) * 60
    samples: list[dict[str, Any]] = []
    second = rng.randint(0, 299)
    level = 0.0
    skipped = (0, 0)  # wall-clock seconds that do not exist (the spring DST hour of a zone user's day)
    if state.zone is not None and model.zone is not None:
        gap = skipped_local_minutes(state.date, model.zone)
        skipped = (gap[0] * 60, gap[1] * 60) if gap else skipped
    while second < min(until_seconds, 86400):
        zone = timeline.zone_at(second // EPOCH_SECONDS)
        worn = state.worn or second >= timeline.blocks[0][1]
        if worn and not skipped[0] <= second < skipped[1]:
            during_session = [hr for (a, b), hr in session_hr.items() if a <= second < b]
            base = float(during_session[0]) if during_session else state.resting_hr + _CHR_ZONE_OFFSET[zone]
            level = 0.7 * level + _jitter(rng, 2.5)
            value = 0 if rng.random() < 0.01 else max(35, round(base + level))
            hours, rest = divmod(second, 3600)
            samples.append(
                {"heart_rate": value, "sample_time": f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"}
            )
        if dense_start <= second < dense_end:
            second += 1
        else:
            second += 300 + (1 if rng.random() < 0.04 else 0)
    return {
        "polar_user": polar_user_url(model.x_user_id),
        "date": state.date.isoformat(),
        "heart_rate_samples": samples,
    }


_CHR_ZONE_OFFSET = {SLEEP: 0.0, SEDENTARY: 16.0, LIGHT: 30.0, MODERATE: 48.0, VIGOROUS: 70.0}


# ------------------------------------------------------------------------------------------------ cardio load


def render_cardio_load(model: UserModel, day: dt.date) -> dict[str, Any]:
    """Daily TRIMP, strain (7-d mean), tolerance (28-d mean); -1.0 sentinels when not available.

    Shape and sentinels: docs/accesslink.md §5.4, §7.
    """
    index = (day - model.history_start).days
    state = model.day(day)
    if state is None or index < 27:
        return _cardio_not_available(day)
    window = model.days(day - dt.timedelta(days=89), day)
    loads = [s.training_load for s in window]
    strain = sum(loads[-7:]) / 7
    tolerance = sum(loads[-28:]) / 28
    if tolerance <= 0:
        return _cardio_not_available(day)
    ratio = strain / tolerance
    status = (
        "DETRAINING"
        if ratio < 0.8
        else "MAINTAINING"
        if ratio < 1.0
        else "PRODUCTIVE"
        if ratio < 1.3
        else "PRODUCTIVE_ALMOST_OVERREACHING"
        if ratio < 1.5
        else "OVERREACHING"
    )
    sessions = [session.cardio_load for s in window for session in s.sessions]
    typical = sum(sessions) / len(sessions) if sessions else 0.0
    return {
        "date": day.isoformat(),
        "cardio_load_status": status,
        "cardio_load": round(state.training_load, 1),
        "strain": round(strain, 1),
        "tolerance": round(tolerance, 1),
        "cardio_load_ratio": round(ratio, 2),
        "cardio_load_level": {
            "very_low": round(typical * 0.3, 1),
            "low": round(typical * 0.6, 1),
            "medium": round(typical * 1.0, 1),
            "high": round(typical * 1.5, 1),
            "very_high": round(typical * 2.2, 1),
        },
    }


def _cardio_not_available(day: dt.date) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "cardio_load_status": "LOAD_STATUS_NOT_AVAILABLE",
        "cardio_load": -1.0,
        "strain": 0.0,
        "tolerance": -1.0,
        "cardio_load_ratio": -1.0,
        "cardio_load_level": {"very_low": 0.0, "low": 0.0, "medium": 0.0, "high": 0.0, "very_high": 0.0},
    }
