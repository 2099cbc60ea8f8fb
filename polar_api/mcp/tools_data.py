"""The data tools (polar-flow-server's names): get_sleep, get_recovery, get_activity, get_exercises and
get_biosensing.

Each reads with the read-layer functions of its REST routes, over the same window (the user's local dates
today - days … today), so its records are the routes' items: ``get_sleep`` = ``/sleep`` + ``/sleep-debt``,
``get_recovery`` = ``/recharge`` + ``/cardio-load`` + ``/recovery``, ``get_activity`` = ``/activity``,
``get_exercises`` = ``/exercises`` or ``/exercises/{id}``, ``get_biosensing(heart_rate)`` = ``/heart-rate``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field, StringConstraints

from polar_api.mcp.access import user_for_call
from polar_api.mcp.answers import Freshness, McpRuntime, reading
from polar_api.mcp.arguments import Days, UserId
from polar_api.read.activity import ActivityDay, activity_days
from polar_api.read.analytics_series import RecoveryDay, recovery
from polar_api.read.cardio_load import CardioLoadDay, cardio_load_days
from polar_api.read.exercises import (
    EXERCISE_ID_PATTERN,
    ExerciseDetail,
    ExerciseSummary,
    exercise,
    exercises,
)
from polar_api.read.heart_rate import HeartRateDay, heart_rate_days
from polar_api.read.metrics import SleepDebtDay, sleep_debt
from polar_api.read.recharge import RechargeNight, recharge_nights
from polar_api.read.sleep import SleepNight, sleep_nights

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class Window(Freshness):
    days: int = Field(description="the window asked for")
    from_date: date = Field(description="the window's first local date (today - days)")
    to_date: date = Field(description="the window's last local date (the user's today)")


class SleepAnswer(Window):
    count: int = Field(description="nights in records")
    records: list[SleepNight] = Field(
        description="one item per night, newest first, dated by the wake-up date"
    )
    sleep_debt: list[SleepDebtDay] = Field(
        description="per day, newest first: the night's sleep need and deficit (s) and the 14-night debt"
    )


class RecoveryAnswer(Window):
    nightly_recharge: list[RechargeNight] = Field(
        description="Polar's Nightly Recharge per night, newest first"
    )
    cardio_load: list[CardioLoadDay] = Field(description="Polar's daily cardio load, newest first")
    recovery_score: list[RecoveryDay] = Field(
        description="our recovery score per night, newest first (null score = not enough baseline yet)"
    )


class ActivityAnswer(Window):
    count: int = Field(description="days in records")
    records: list[ActivityDay] = Field(description="one item per day with an activity summary, newest first")


class ExercisesAnswer(Window):
    count: int = Field(description="workouts in exercises")
    exercises: list[ExerciseSummary] = Field(
        description="the workouts that started in the window, newest first; [] when exercise_id was given"
    )
    exercise: ExerciseDetail | None = Field(description="the one workout asked for by exercise_id, else null")


BiosensingMetric = Literal[
    "heart_rate", "spo2", "ecg", "body_temperature", "skin_temperature", "alertness", "bedtime"
]
NOT_COLLECTED = {
    "spo2": "SpO2 (blood oxygen) tests",
    "ecg": "ECG recordings",
    "body_temperature": "body temperature",
    "skin_temperature": "nightly skin temperature",
    "alertness": "SleepWise alertness",
    "bedtime": "SleepWise circadian bedtime",
}
COLLECTED_STREAMS = "sleep, Nightly Recharge, daily activity, workouts, continuous heart rate and cardio load"


class BiosensingAnswer(Window):
    metric: BiosensingMetric
    collected: bool = Field(description="whether this installation collects the metric at all")
    count: int = Field(description="items in records")
    records: list[HeartRateDay] = Field(
        description="heart_rate: one item per day, newest first; [] for a metric that is not collected"
    )


ExerciseId = Annotated[
    Annotated[str, StringConstraints(pattern=EXERCISE_ID_PATTERN.pattern)] | None,
    Field(description="one workout's id from a previous get_exercises answer (then days is ignored)"),
]


def register(server: MCPServer, runtime: McpRuntime) -> None:
    """Add the data tools to ``server``."""

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Nightly sleep: per night (dated by the wake-up date) Polar's sleep_score (1-100, higher is "
            "better), total/light/deep/rem_sleep_hours (hours; adults are commonly advised 7-9 h total), "
            "hrv_avg (that night's Nightly Recharge RMSSD in ms: personal, judge it against get_baselines or "
            "get_hrv_status rather than population norms), heart_rate_avg (mean of the night's heart-rate "
            "samples, bpm), breathing_rate_avg (breaths/min, typically 12-20 asleep). skin_temperature_avg "
            "is always null (not in AccessLink's sleep data). Also sleep_debt per day: the night's need "
            "(Polar's sleep goal, else 8 h), its deficit and the sum of the deficits of the last 14 nights "
            "(seconds; debt_hours in hours; nights = how many of the 14 had data). Null anywhere means not "
            "recorded, never zero. Default window: 30 days."
        ),
    )
    def get_sleep(days: Days = 30, user_id: UserId = None) -> SleepAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            since, until = current.window(days)
            nights = sleep_nights(current.cursor, user, since, until)
            debt = sleep_debt(current.cursor, user, since)
            return SleepAnswer(
                **current.freshness("sleep", (night.date for night in nights), (since, until)),
                days=days,
                from_date=since,
                to_date=until,
                count=len(nights),
                records=nights,
                sleep_debt=debt,
            )

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Recovery: Polar's Nightly Recharge per night (hrv_avg = RMSSD in ms over about the first 4 h "
            "of sleep; ans_charge -10 to +10, 0 = the user's usual; ans_charge_status 1-5, 3 = usual; "
            "nightly_recharge_status 1-6, higher = better recovered; heart_rate_avg bpm; breathing_rate_avg "
            "breaths/min; beat_to_beat_avg ms), Polar's cardio load per day (cardio_load = that day's "
            "training load; strain = 7-day and tolerance = 28-day mean daily load; cardio_load_ratio = "
            "strain/tolerance, where below about 0.8 is commonly read as detraining and above 1.3-1.5 as "
            "overreaching: heuristics, not validated limits), and our recovery_score per night: 100 x "
            "Phi(weighted robust z of HRV, overnight heart rate and sleep against the user's own 60-night "
            "baseline), so 50 is a typical night for this person; level low below about 31, high above "
            "about 69; score null and level 'insufficient' until 21 nights of HRV baseline exist. Null "
            "means not recorded. Default window: 30 days."
        ),
    )
    def get_recovery(days: Days = 30, user_id: UserId = None) -> RecoveryAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            since, until = current.window(days)
            recharge = recharge_nights(current.cursor, user, since, until)
            loads = cardio_load_days(current.cursor, user, since, until)
            scores = recovery(current.cursor, user, since)
            dates = [n.date for n in recharge] + [d.date for d in loads] + [s.day for s in scores]
            return RecoveryAnswer(
                **current.freshness("recovery data", dates, (since, until)),
                days=days,
                from_date=since,
                to_date=until,
                nightly_recharge=recharge,
                cardio_load=loads,
                recovery_score=scores,
            )

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Daily activity: steps, calories_active and calories_total (kcal), distance_km (estimated from "
            "steps), active_minutes, activity_score (% of Polar's daily activity goal; can exceed 100). A "
            "day appears only when it has an activity summary; null fields were not recorded. Default "
            "window: 30 days."
        ),
    )
    def get_activity(days: Days = 30, user_id: UserId = None) -> ActivityAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            since, until = current.window(days)
            summaries = activity_days(current.cursor, user, since, until)
            return ActivityAnswer(
                **current.freshness("activity", (day.date for day in summaries), (since, until)),
                days=days,
                from_date=since,
                to_date=until,
                count=len(summaries),
                records=summaries,
            )

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Workouts: without exercise_id, every workout that started in the window (sport, start_time on "
            "the watch's clock with its UTC offset, duration_minutes, distance_km, calories in kcal, "
            "average/max_heart_rate in bpm, training_load = the session's cardio load); with exercise_id, "
            "that one workout in full (heart_rate_zones with seconds in each zone, cardio/muscle/perceived "
            "load, ascent/descent in m, running_index). Null = not recorded (e.g. no distance for strength "
            "training). Weeks without workouts are normal: an empty list is not missing data. Default "
            "window: 30 days."
        ),
    )
    def get_exercises(
        days: Days = 30, exercise_id: ExerciseId = None, user_id: UserId = None
    ) -> ExercisesAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            since, until = current.window(days)
            if exercise_id is not None:
                detail = exercise(current.cursor, user, exercise_id)
                if detail is None:
                    raise ToolError(f"no workout {exercise_id} for user {user}")
                started = detail.start_time.date() if detail.start_time else None
                return ExercisesAnswer(
                    **current.freshness("workouts", [started], sparse=True),
                    days=days,
                    from_date=since,
                    to_date=until,
                    count=1,
                    exercises=[],
                    exercise=detail,
                )
            workouts = exercises(current.cursor, user, since, until)
            started_days = (w.start_time.date() if w.start_time else None for w in workouts)
            return ExercisesAnswer(
                **current.freshness("workouts", started_days, (since, until), sparse=True),
                days=days,
                from_date=since,
                to_date=until,
                count=len(workouts),
                exercises=workouts,
                exercise=None,
            )

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Biosensing streams by metric. heart_rate is collected: the daily summary of continuous heart "
            "rate (hr_min, hr_avg, hr_max in bpm, off-wrist readings excluded; sample_count). The others "
            "(spo2, ecg, body_temperature, skin_temperature, alertness, bedtime) are not collected by this "
            f"installation, which syncs {COLLECTED_STREAMS}: the answer says so, with collected=false and no "
            "records. Default window: 30 days."
        ),
    )
    def get_biosensing(metric: BiosensingMetric, days: Days = 30, user_id: UserId = None) -> BiosensingAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            since, until = current.window(days)
            if metric != "heart_rate":
                freshness = current.freshness(metric, [], (since, until))
                freshness["note"] = (
                    f"{NOT_COLLECTED[metric]} are not collected: this installation syncs {COLLECTED_STREAMS} "
                    "from Polar AccessLink, not its biosensing or SleepWise data."
                )
                return BiosensingAnswer(
                    **freshness,
                    days=days,
                    from_date=since,
                    to_date=until,
                    metric=metric,
                    collected=False,
                    count=0,
                    records=[],
                )
            summaries = heart_rate_days(current.cursor, user, since, until)
            return BiosensingAnswer(
                **current.freshness("continuous heart rate", (d.date for d in summaries), (since, until)),
                days=days,
                from_date=since,
                to_date=until,
                metric=metric,
                collected=True,
                count=len(summaries),
                records=summaries,
            )
