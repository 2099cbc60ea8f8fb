"""Wire-format rendering of ``/v3/exercises`` items, with 1-Hz sample series, HR zones and GPS routes.

Shapes follow ``exercises_real_sample.json``: snake_case keys, seconds-with-milliseconds durations
(``PT2460.605S``), integer ``sample_type``, five zones indexed 0-4 with limits at 50/60/70/80/90/100 % of
HRmax, ``training_load_pro`` with kebab-case inner keys, and ``distance`` / ``running_index`` only where they
apply. ``heart_rate.average`` / ``maximum`` and the zone times are computed from the same HR series that
``samples`` returns, so they always agree.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polar_pipeline.simulator.physiology import Session, UserModel
from polar_pipeline.simulator.seeding import rng_for, unit_interval
from polar_pipeline.simulator.timefmt import (
    iso_duration,
    iso_duration_seconds_ms,
    iso_utc_z,
    naive_seconds,
)

ZONE_FRACTIONS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
ROUTE_INTERVAL_SECONDS = 5
# Where a user trains while travelling (by UTC offset of the destination), else around home.
_TRAVEL_COORDINATES = {
    540: (35.68, 139.69),
    -300: (40.71, -74.0),
    480: (1.35, 103.82),
    -420: (37.77, -122.42),
    330: (19.07, 72.88),
    600: (-33.87, 151.21),
}
_RPE_SCALE = {"RPE_EASY": 2, "RPE_MODERATE": 3, "RPE_FAIRLY_HARD": 5, "RPE_HARD": 7}


@dataclass(frozen=True)
class ExerciseSeries:
    """One value per second for each sample type the sport records; ``None`` = sensor offline."""

    heart_rate: list[int | None]
    by_type: dict[int, list[str]]
    distance_m: float


@dataclass(frozen=True)
class ExerciseSummary:
    average_hr: int
    maximum_hr: int
    zone_limits: tuple[int, ...]
    zone_seconds: tuple[int, ...]
    distance_m: float


def polar_user_url_www(x_user_id: int) -> str:
    """Real exercises use the ``www.`` host (sleep/recharge do not)."""
    return f"https://www.polaraccesslink.com/v3/users/{x_user_id}"


def _noise_source(rng: random.Random, sd: float) -> Callable[[], float]:
    """Zero-mean uniform noise with standard deviation ``sd`` (much cheaper than ``gauss`` at 1 Hz)."""
    spread = sd * math.sqrt(12)
    draw = rng.random
    return lambda: (draw() - 0.5) * spread


@dataclass(frozen=True)
class Track:
    """HR and speed as 5-second knots, each held for ``weights[i]`` seconds (5, the last one possibly less).

    Real optical HR repeats values for a few seconds; holding knots keeps that look while letting summaries
    (average, maximum, zone times, distance) work on a fifth of the points and still match the 1-Hz series
    exactly.
    """

    heart_rate: list[int | None]  # bpm per knot, None = sensor offline
    speed_kmh: list[float]
    weights: list[int]

    def per_second(self) -> tuple[list[int | None], list[float]]:
        heart_rate: list[int | None] = []
        speeds: list[float] = []
        for value, speed, weight in zip(self.heart_rate, self.speed_kmh, self.weights, strict=True):
            heart_rate.extend([value] * weight)
            speeds.extend([speed] * weight)
        return heart_rate, speeds


KNOT_SECONDS = 5


def exercise_track(model: UserModel, session: Session) -> Track:
    """The HR and speed track of a session: warm-up, main part (intervals or drift), cool-down, AR noise."""
    profile = model.profile
    spec = session.spec
    rng = rng_for(model.seed, model.x_user_id, "series", session.exercise_id)
    count = int(session.duration_seconds)
    knots = -(-count // KNOT_SECONDS)
    weights = [KNOT_SECONDS] * knots
    weights[-1] = count - KNOT_SECONDS * (knots - 1)
    warm = max(60, int(count * 0.08))
    cool = max(30, int(count * 0.05))
    cool_start = count - cool
    target = float(session.average_hr)
    start_hr = profile.resting_hr + 28
    hr_max = profile.hr_max
    intervals = session.kind == "run_intervals"
    drifting = session.kind in ("run_long", "ride_long")
    draw = rng.random
    hr_spread = 1.25 * math.sqrt(12)
    heart_rate: list[int | None] = [0] * knots
    noise = 0.0
    for knot in range(knots):
        second = knot * KNOT_SECONDS
        if second < warm:
            base = start_hr + (target - start_hr) * (second / warm) ** 0.7
        elif second >= cool_start:
            base = target - 12 * (second - cool_start) / cool
        elif intervals:
            base = target + (11 if ((second - warm) % 360) < 240 else -12)
        elif drifting:
            base = target + 6 * second / count - 3
        else:
            base = target
        noise = 0.86 * noise + (draw() - 0.5) * hr_spread
        value = int(base + noise + 0.5)
        heart_rate[knot] = 50 if value < 50 else hr_max if value > hr_max else value
    if knots > 24 and draw() < 0.05:
        gap_start = rng.randint(6, knots - 12)
        for knot in range(gap_start, gap_start + rng.randint(1, 5)):
            heart_rate[knot] = None

    speeds = [0.0] * knots
    if spec.has_distance:
        fitness = profile.running_index / 50 if spec.is_running and profile.running_index else 1.0
        base_speed = spec.speed_kmh * (0.75 + 0.25 * fitness)
        speed_spread = 0.25 * math.sqrt(12)
        drift = 0.0
        for knot in range(knots):
            second = knot * KNOT_SECONDS
            hr = heart_rate[knot] or target
            ramp = 0.7 + 0.3 * second / warm if second < warm else 1.0
            drift = 0.77 * drift + (draw() - 0.5) * speed_spread
            speed = base_speed * ramp * (1 + 0.012 * (hr - target)) + drift
            speeds[knot] = speed if speed > 0 else 0.0
    return Track(heart_rate, speeds, weights)


def generate_series(model: UserModel, session: Session) -> ExerciseSeries:
    """Every sample type the sport records at 1 Hz, formatted like the real ``data`` strings."""
    profile = model.profile
    spec = session.spec
    heart_rate, speeds = exercise_track(model, session).per_second()
    count = len(heart_rate)
    rng = rng_for(model.seed, model.x_user_id, "series-extra", session.exercise_id)
    cumulative = 0.0
    distances: list[str] = []
    for speed in speeds:
        distances.append(f"{cumulative:.1f}")
        cumulative += speed / 3.6
    by_type: dict[int, list[str]] = {}
    for sample_type in spec.sample_types:
        if sample_type == 0:
            by_type[0] = ["null" if v is None else str(v) for v in heart_rate]
        elif sample_type == 1:
            by_type[1] = [f"{v:.4f}" if v else "0" for v in speeds]
        elif sample_type == 2:
            cadence_noise = _noise_source(rng, 2.0)
            by_type[2] = [str(max(0, round(spec.cadence + cadence_noise()))) if v else "0" for v in speeds]
        elif sample_type == 3:
            altitude = 45.0 + rng.uniform(-20, 60)
            altitude_noise = _noise_source(rng, 0.08)
            values = []
            for _ in range(count):
                altitude += altitude_noise()
                values.append(f"{altitude:.3f}")
            by_type[3] = values
        elif sample_type == 4:
            power_noise = _noise_source(rng, 8.0)
            watts_per_kmh = profile.weight_kg / 3.6 * 1.04
            by_type[4] = [str(round(watts_per_kmh * v + power_noise())) if v else "0" for v in speeds]
        elif sample_type == 9:
            indoor = not spec.has_route
            start, end = (24.5, 30.5) if indoor else (28.0, 14.0 + rng.uniform(-4, 8))
            temperature_noise = _noise_source(rng, 0.05)
            by_type[9] = [
                f"{end + (start - end) * math.exp(-second / 600) + temperature_noise():.1f}"
                for second in range(count)
            ]
        elif sample_type == 10:
            by_type[10] = distances if spec.has_distance else ["0"] * count
    return ExerciseSeries(heart_rate, by_type, cumulative)


def summarize(model: UserModel, session: Session) -> ExerciseSummary:
    """Average, maximum, zone times and distance, computed on the knots with their hold times."""
    track = exercise_track(model, session)
    measured = [(v, w) for v, w in zip(track.heart_rate, track.weights, strict=True) if v is not None]
    limits = tuple(round(model.profile.hr_max * fraction) for fraction in ZONE_FRACTIONS)
    # zone index per bpm: [lower, upper) for zones 0-3, [lower, upper] for zone 4; -1 = below zone 0
    zone_of = [-1] * (max(limits[-1], max((v for v, _ in measured), default=0)) + 1)
    for zone in range(5):
        for bpm in range(limits[zone], limits[zone + 1] + (1 if zone == 4 else 0)):
            zone_of[bpm] = zone
    seconds = [0] * 6  # zone -1 (below zone 0) lands in the spare last slot
    for value, weight in measured:
        seconds[zone_of[value]] += weight
    measured_seconds = sum(weight for _, weight in measured)
    total = sum(value * weight for value, weight in measured)
    distance = sum(speed * weight for speed, weight in zip(track.speed_kmh, track.weights, strict=True)) / 3.6
    return ExerciseSummary(
        average_hr=round(total / measured_seconds) if measured else session.average_hr,
        maximum_hr=max(v for v, _ in measured) if measured else session.average_hr,
        zone_limits=limits,
        zone_seconds=tuple(seconds[:5]),
        distance_m=round(distance),
    )


class ExerciseRenderer:
    """Renders exercises; caches the small per-exercise summary so lists without samples stay cheap."""

    def __init__(self) -> None:
        self._summaries: dict[tuple[int, str], ExerciseSummary] = {}

    def summary(self, model: UserModel, session: Session) -> ExerciseSummary:
        key = (model.x_user_id, session.exercise_id)
        cached = self._summaries.get(key)
        if cached is None:
            cached = summarize(model, session)
            self._summaries[key] = cached
        return cached

    def render(
        self,
        model: UserModel,
        session: Session,
        *,
        samples: bool = False,
        zones: bool = False,
        route: bool = False,
    ) -> dict[str, Any]:
        spec = session.spec
        series = generate_series(model, session) if samples else None
        summary = self.summary(model, session)
        payload: dict[str, Any] = {
            "id": session.exercise_id,
            "upload_time": iso_utc_z(session.upload_utc),
            "polar_user": polar_user_url_www(model.x_user_id),
            "device": session.device_model,
            "device_id": session.device_id,
            "start_time": naive_seconds(session.start_local),
            "start_time_utc_offset": session.offset_minutes,
            "duration": iso_duration_seconds_ms(session.duration_seconds),
        }
        if spec.has_distance:
            payload["distance"] = float(summary.distance_m)
        payload["heart_rate"] = {"average": summary.average_hr, "maximum": summary.maximum_hr}
        payload["sport"] = spec.sport
        payload["has_route"] = spec.has_route
        payload["detailed_sport_info"] = spec.detailed_sport_info
        payload["calories"] = session.calories
        if spec.is_running and unit_interval(model.seed, session.exercise_id, "running_index") >= 0.1:
            intensity_effect = round((session.intensity - 0.65) * 10)
            payload["running_index"] = model.profile.running_index + intensity_effect
        fat = min(max(round(88 - 80 * session.intensity), 8), 80)
        protein = 0 if session.duration_seconds < 5400 else 2
        payload["fat_percentage"] = fat
        payload["carbohydrate_percentage"] = 100 - fat - protein
        payload["protein_percentage"] = protein
        if zones:
            payload["heart_rate_zones"] = [
                {
                    "index": zone,
                    "lower_limit": summary.zone_limits[zone],
                    "upper_limit": summary.zone_limits[zone + 1],
                    "in_zone": iso_duration(summary.zone_seconds[zone]),
                }
                for zone in range(5)
            ]
        if series is not None:
            payload["samples"] = [
                {"recording_rate": 1, "sample_type": sample_type, "data": ",".join(values)}
                for sample_type, values in series.by_type.items()
            ]
        if route and spec.has_route:
            payload["route"] = self._route(model, session)
        payload["training_load_pro"] = self._training_load_pro(session, spec.is_running)
        return payload

    @staticmethod
    def _training_load_pro(session: Session, has_power: bool) -> dict[str, Any]:
        load = session.cardio_load
        minutes = session.duration_seconds / 60
        muscle = round(15.2 * minutes * session.intensity / 0.65, 3) if has_power else -1.0
        perceived = float(_RPE_SCALE[session.rpe] * round(minutes)) if session.rpe else 0.0
        return {
            "cardio-load": round(load, 5),
            "cardio-load-interpretation": _interpretation(load, (15, 35, 80, 150)),
            "muscle-load": muscle,
            "muscle-load-interpretation": _interpretation(muscle, (150, 400, 800, 1500))
            if has_power
            else "NOT_AVAILABLE",
            "perceived-load": perceived,
            "perceived-load-interpretation": (
                _interpretation(perceived, (60, 150, 300, 500)) if session.rpe else "NOT_AVAILABLE"
            ),
            "user-rpe": session.rpe or "UNKNOWN",
        }

    @staticmethod
    def _route(model: UserModel, session: Session) -> list[dict[str, Any]]:
        rng = rng_for(model.seed, model.x_user_id, "route", session.exercise_id)
        home = (model.profile.home_latitude, model.profile.home_longitude)
        travelling = session.offset_minutes != model.profile.home_offset_minutes
        latitude, longitude = _TRAVEL_COORDINATES.get(session.offset_minutes, home) if travelling else home
        heading = rng.uniform(0, 2 * math.pi)
        speed_ms = session.spec.speed_kmh / 3.6
        points = []
        for second in range(0, int(session.duration_seconds), ROUTE_INTERVAL_SECONDS):
            heading += rng.gauss(0, 0.08)
            step = speed_ms * ROUTE_INTERVAL_SECONDS
            latitude += step * math.cos(heading) / 111_320
            longitude += step * math.sin(heading) / (111_320 * math.cos(math.radians(latitude)))
            points.append(
                {
                    "latitude": round(latitude, 8),
                    "longitude": round(longitude, 8),
                    "time": iso_duration_seconds_ms(second + rng.uniform(0, 0.05)),
                    "satellites": rng.randint(6, 14),
                    "fix": 3 if rng.random() < 0.9 else 2,
                }
            )
        return points


def _interpretation(value: float, thresholds: tuple[float, float, float, float]) -> str:
    very_low, low, medium, high = thresholds
    if value < very_low:
        return "VERY_LOW"
    if value < low:
        return "LOW"
    if value < medium:
        return "MEDIUM"
    if value < high:
        return "HIGH"
    return "VERY_HIGH"
