"""Personas and stable per-user attributes: the population parameters every simulated user starts from."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from polar_pipeline.simulator.config import FIRST_USER_ID, PERSONAS
from polar_pipeline.simulator.seeding import rng_for
from polar_pipeline.simulator.zones import standard_offset_minutes

NIGHT_OWL = "helsinki_night_owl"
SLEEP_SENSITIVE = "sleep_sensitive"
SLEEP_NEUTRAL = "sleep_neutral"


@dataclass(frozen=True)
class Persona:
    """Population-level parameters; each user gets a small personal deviation from these."""

    name: str
    ln_rmssd: float
    ln_rmssd_sd: float
    resting_hr: float
    breathing_rate: float
    bedtime_minutes: float  # relative to midnight of the wake-up day; negative = the evening before
    bedtime_sd: float
    sleep_span_minutes: float
    sleep_span_sd: float
    short_night_rate: float
    continuity: float
    deep_fraction: float
    sleep_goal_seconds: int
    daily_steps: float
    running_index: int
    can_overreach: bool
    upload_delay_minutes: tuple[float, float]
    weekend_ln_rmssd: float
    home_zone: str | None = None  # an IANA zone with DST; None: a fixed home UTC offset drawn per user
    latest_session_end_minutes: int = 20 * 60 + 15  # after midnight of the session's day; > 1440: next day
    trains: bool = True  # False: no exercise sessions at all
    # ln rMSSD per hour of sleep above the goal (below it: negative), for the night itself and the night
    # before; the surplus counts up to one hour. None: the deficit-only rule every default persona has
    # (physiology.UserModel._autonomic_state); (0, 0): sleep never reaches HRV.
    sleep_ln_rmssd_per_hour: tuple[float, float] | None = None


PERSONA_TABLE: dict[str, Persona] = {
    "endurance_athlete": Persona(
        name="endurance_athlete",
        ln_rmssd=4.38,
        ln_rmssd_sd=0.09,
        resting_hr=47.0,
        breathing_rate=12.6,
        bedtime_minutes=-70,
        bedtime_sd=28,
        sleep_span_minutes=485,
        sleep_span_sd=32,
        short_night_rate=0.02,
        continuity=3.6,
        deep_fraction=0.17,
        sleep_goal_seconds=28800,
        daily_steps=11500,
        running_index=55,
        can_overreach=True,
        upload_delay_minutes=(2, 180),
        weekend_ln_rmssd=0.0,
    ),
    "casual_exerciser": Persona(
        name="casual_exerciser",
        ln_rmssd=3.72,
        ln_rmssd_sd=0.11,
        resting_hr=60.0,
        breathing_rate=14.2,
        bedtime_minutes=-40,
        bedtime_sd=38,
        sleep_span_minutes=450,
        sleep_span_sd=40,
        short_night_rate=0.04,
        continuity=3.2,
        deep_fraction=0.14,
        sleep_goal_seconds=27000,
        daily_steps=8200,
        running_index=42,
        can_overreach=True,
        upload_delay_minutes=(5, 480),
        weekend_ln_rmssd=-0.04,
    ),
    "irregular_sleeper": Persona(
        name="irregular_sleeper",
        ln_rmssd=3.9,
        ln_rmssd_sd=0.14,
        resting_hr=56.0,
        breathing_rate=14.8,
        bedtime_minutes=15,
        bedtime_sd=90,
        sleep_span_minutes=410,
        sleep_span_sd=75,
        short_night_rate=0.16,
        continuity=2.7,
        deep_fraction=0.13,
        sleep_goal_seconds=28800,
        daily_steps=7000,
        running_index=44,
        can_overreach=False,
        upload_delay_minutes=(10, 1800),
        weekend_ln_rmssd=-0.05,
    ),
    "no_workouts": Persona(
        name="no_workouts",
        ln_rmssd=3.5,
        ln_rmssd_sd=0.11,
        resting_hr=64.0,
        breathing_rate=15.1,
        bedtime_minutes=-55,
        bedtime_sd=35,
        sleep_span_minutes=440,
        sleep_span_sd=38,
        short_night_rate=0.03,
        continuity=3.1,
        deep_fraction=0.13,
        sleep_goal_seconds=28800,
        daily_steps=5600,
        running_index=0,
        can_overreach=False,
        upload_delay_minutes=(5, 60),
        weekend_ln_rmssd=-0.02,
        trains=False,
    ),
    # Opt-in (SimulatorConfig.personas): lives in Helsinki, so its clock follows EET/EEST, goes to bed after
    # midnight and runs late in the evening, often past midnight. Its nights span the 03:00/04:00 DST
    # changes and some sessions start on a local day whose UTC date is the day before.
    NIGHT_OWL: Persona(
        name=NIGHT_OWL,
        ln_rmssd=3.85,
        ln_rmssd_sd=0.11,
        resting_hr=57.0,
        breathing_rate=14.0,
        bedtime_minutes=70,
        bedtime_sd=25,
        sleep_span_minutes=460,
        sleep_span_sd=35,
        short_night_rate=0.03,
        continuity=3.3,
        deep_fraction=0.15,
        sleep_goal_seconds=27000,
        daily_steps=8800,
        running_index=46,
        can_overreach=False,
        upload_delay_minutes=(5, 240),
        weekend_ln_rmssd=-0.03,
        home_zone="Europe/Helsinki",
        latest_session_end_minutes=24 * 60 + 120,
    ),
    # Opt-in twins for the correlation analytics (docs/methods.md §9.8): one person model, without workouts or
    # a weekend HRV shift, so nothing but the planted rule links their sleep and their HRV. The sensitive
    # one's ln rMSSD rises 0.06 per hour slept above the goal that night and 0.03 per hour the night before
    # (and falls as much per hour short); the neutral one's HRV ignores sleep entirely.
    SLEEP_SENSITIVE: Persona(
        name=SLEEP_SENSITIVE,
        ln_rmssd=3.8,
        ln_rmssd_sd=0.10,
        resting_hr=59.0,
        breathing_rate=14.4,
        bedtime_minutes=-35,
        bedtime_sd=40,
        sleep_span_minutes=455,
        sleep_span_sd=50,
        short_night_rate=0.05,
        continuity=3.2,
        deep_fraction=0.15,
        sleep_goal_seconds=27000,
        daily_steps=7600,
        running_index=0,
        can_overreach=False,
        upload_delay_minutes=(5, 120),
        weekend_ln_rmssd=0.0,
        trains=False,
        sleep_ln_rmssd_per_hour=(0.06, 0.03),
    ),
}
PERSONA_TABLE[SLEEP_NEUTRAL] = dataclasses.replace(
    PERSONA_TABLE[SLEEP_SENSITIVE], name=SLEEP_NEUTRAL, sleep_ln_rmssd_per_hour=(0.0, 0.0)
)


@dataclass(frozen=True)
class SportSpec:
    """How one kind of session renders: Polar sport names, which sample types exist, speeds."""

    sport: str
    detailed_sport_info: str
    has_distance: bool
    has_route: bool
    sample_types: tuple[int, ...]
    speed_kmh: float
    cadence: float
    steps_per_minute: float
    is_running: bool = False


_RUN_SAMPLE_TYPES = (0, 1, 2, 3, 4, 9, 10)
_INDOOR_SAMPLE_TYPES = (0, 1, 9, 10)

SPORTS: dict[str, SportSpec] = {
    "run_easy": SportSpec("RUNNING", "RUNNING", True, True, _RUN_SAMPLE_TYPES, 11.0, 84, 166, True),
    "run_tempo": SportSpec("RUNNING", "RUNNING", True, True, _RUN_SAMPLE_TYPES, 12.8, 87, 172, True),
    "run_intervals": SportSpec("RUNNING", "RUNNING", True, True, _RUN_SAMPLE_TYPES, 12.0, 86, 170, True),
    "run_long": SportSpec("RUNNING", "RUNNING", True, True, _RUN_SAMPLE_TYPES, 10.8, 83, 164, True),
    "ride": SportSpec("CYCLING", "ROAD_BIKING", True, True, (0, 1, 2, 3, 9, 10), 28.0, 86, 0),
    "ride_long": SportSpec("CYCLING", "ROAD_BIKING", True, True, (0, 1, 2, 3, 9, 10), 26.5, 84, 0),
    "walk": SportSpec("OTHER", "WALKING", True, True, (0, 1, 2, 3, 9, 10), 5.3, 56, 112),
    "strength": SportSpec("OTHER", "STRENGTH_TRAINING", False, False, _INDOOR_SAMPLE_TYPES, 0.0, 0, 10),
    "mobility": SportSpec("OTHER", "MOBILITY_STATIC", False, False, _INDOOR_SAMPLE_TYPES, 0.0, 0, 5),
    "core": SportSpec("OTHER", "CORE", False, False, _INDOOR_SAMPLE_TYPES, 0.0, 0, 8),
}

# Typical fraction of heart-rate reserve per session kind (casual users run a little higher).
SESSION_INTENSITY: dict[str, float] = {
    "run_easy": 0.62,
    "run_tempo": 0.76,
    "run_intervals": 0.74,
    "run_long": 0.64,
    "ride": 0.58,
    "ride_long": 0.55,
    "walk": 0.30,
    "strength": 0.38,
    "mobility": 0.18,
    "core": 0.36,
}

# (kind, minutes, probability of skipping) per weekday, Monday = 0.
ATHLETE_WEEK: dict[int, tuple[tuple[str, float, float], ...]] = {
    0: (("run_easy", 45, 0.10),),
    1: (("run_intervals", 60, 0.05),),
    2: (("ride", 90, 0.15),),
    3: (("run_tempo", 50, 0.10), ("strength", 35, 0.6)),
    4: (("mobility", 25, 0.5),),
    5: (("ride_long", 180, 0.10),),
    6: (("run_long", 105, 0.10),),
}
CASUAL_WEEK: dict[int, tuple[tuple[str, float, float], ...]] = {
    1: (("run_easy", 40, 0.25),),
    3: (("strength", 45, 0.30),),
    5: (("ride", 60, 0.50),),
    6: (("walk", 60, 0.60),),
}
IRREGULAR_KINDS: tuple[tuple[str, float], ...] = (
    ("run_easy", 35),
    ("strength", 40),
    ("walk", 50),
    ("core", 25),
)
NIGHT_OWL_WEEK: dict[int, tuple[tuple[str, float, float], ...]] = {
    0: (("run_easy", 40, 0.30),),
    1: (("run_tempo", 45, 0.30),),
    2: (("run_easy", 40, 0.30),),
    3: (("core", 30, 0.40),),
    5: (("run_long", 70, 0.30),),
    6: (("run_easy", 40, 0.30),),
}
NIGHT_OWL_START_MINUTES = (23 * 60 + 40, 30, 24 * 60 + 50)  # late sessions: mean, SD, latest start
PERIODISATION = (0.9, 1.0, 1.1, 0.65)  # 4-week cycle: three build weeks and a recovery week

_FIRST_NAMES = ("Aino", "Eero", "Maija", "Otso", "Sanni", "Ville", "Iida", "Lauri")
_LAST_NAMES = ("Virtanen", "Korhonen", "Nieminen", "Mäkinen", "Hämäläinen", "Laine", "Heikkinen", "Koskinen")
DEVICE_MODELS = ("Polar Vantage V2", "Polar Grit X", "Polar Pacer Pro", "Polar Ignite 3", "Polar Vantage V3")


@dataclass(frozen=True)
class UserProfile:
    """Stable personal attributes derived from (seed, user)."""

    x_user_id: int
    persona: Persona
    first_name: str
    last_name: str
    gender: str
    birthdate: dt.date
    weight_kg: float
    height_cm: float
    hr_max: int
    resting_hr: float
    ln_rmssd: float
    breathing_rate: float
    home_offset_minutes: int
    stride_m: float
    running_index: int
    rates_sleep: bool
    home_latitude: float
    home_longitude: float
    home_zone: str | None = None  # the persona's DST zone; home_offset_minutes is then its standard offset

    def age_on(self, day: dt.date) -> int:
        years = day.year - self.birthdate.year
        return years - ((day.month, day.day) < (self.birthdate.month, self.birthdate.day))

    def bmr_kcal(self, day: dt.date) -> float:
        """Mifflin-St Jeor resting energy: what ``calories - active_calories`` of a day approximates."""
        base = 10 * self.weight_kg + 6.25 * self.height_cm - 5 * self.age_on(day)
        return base + (5 if self.gender == "MALE" else -161)


def persona_for_index(index: int, cycle: tuple[str, ...] = PERSONAS) -> str:
    return cycle[index % len(cycle)]


def build_profile(seed: int, index: int, persona_name: str | None = None) -> UserProfile:
    """The user's stable attributes; the draws are the same whatever the persona (keep their order)."""
    persona = PERSONA_TABLE[persona_name or persona_for_index(index)]
    x_user_id = FIRST_USER_ID + index
    rng = rng_for(seed, x_user_id, "profile")
    gender = "MALE" if rng.random() < 0.55 else "FEMALE"
    height = rng.gauss(180 if gender == "MALE" else 167, 6)
    bmi = rng.uniform(20.5, 23.0) if persona.name == "endurance_athlete" else rng.uniform(21.5, 27.0)
    birth_year = 2025 - rng.randint(24, 52)
    birthdate = dt.date(birth_year, rng.randint(1, 12), rng.randint(1, 28))
    age = 2025 - birth_year
    profile = UserProfile(
        x_user_id=x_user_id,
        persona=persona,
        first_name=rng.choice(_FIRST_NAMES),
        last_name=rng.choice(_LAST_NAMES),
        gender=gender,
        birthdate=birthdate,
        weight_kg=round(bmi * (height / 100) ** 2, 1),
        height_cm=round(height, 1),
        hr_max=round(208 - 0.7 * age + rng.gauss(0, 4)),
        resting_hr=persona.resting_hr + rng.gauss(0, 2.0),
        ln_rmssd=persona.ln_rmssd + rng.gauss(0, 0.08),
        breathing_rate=persona.breathing_rate + rng.gauss(0, 0.6),
        home_offset_minutes=rng.choice((0, 60, 120)),
        stride_m=rng.uniform(0.6, 0.72),
        running_index=persona.running_index + rng.randint(-3, 3) if persona.running_index else 0,
        rates_sleep=rng.random() < 0.3,
        home_latitude=60.17 + rng.uniform(-0.05, 0.05),
        home_longitude=24.94 + rng.uniform(-0.08, 0.08),
    )
    if persona.home_zone is None:
        return profile
    zone = ZoneInfo(persona.home_zone)
    return dataclasses.replace(
        profile, home_zone=persona.home_zone, home_offset_minutes=standard_offset_minutes(zone)
    )
