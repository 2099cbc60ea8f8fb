"""Typed AccessLink v3 payloads: one frozen dataclass per resource, parsed strictly from the wire JSON.

Rules (see docs/accesslink.md §5.4, §6–§8):

* Every record keeps ``payload`` (the JSON object as received), ``day`` (the local calendar day it
  belongs to) and ``key`` (the natural key the warehouse upserts on: the date, or the exercise id).
* Sentinels become ``None`` (sleep continuity/class 0, sleep_charge −1, sleep_rating 0, heart rates 0,
  beat_to_beat 0, cardio −1.0, muscle-load −1.0, perceived-load 0.0), so no analytic averages a sentinel.
* Both key spellings are accepted (``running_index`` / ``running-index``, ``in_zone`` / ``in-zone`` …):
  the API mixes snake and kebab case by resource generation, and the spec differs from the wire.
* ``HH:MM`` series (hypnogram, sleep HR, HRV, breathing) are anchored to the night and roll over at
  midnight in JSON order — string-sorting the keys breaks a night that crosses midnight.
* A record that is missing a required field, has a wrong type or an impossible value raises
  ``PayloadError`` whose reason names the field and the value; ``parse_batch`` turns those into
  ``RejectedRecord`` so one bad record never sinks a batch.
* Hypnogram stage 6 is accepted: Polar's own spec example uses it (a documentation error,
  docs/accesslink.md §6.4), and rejecting a whole night over one stage code would lose the night.

One module per stream family; scalar parsing and field access are in ``accesslink/parsing.py``, the stream
registry and batch parsing in ``accesslink/streams.py``.
"""

from polar_pipeline.accesslink.records.activity import ActivitySamples, DailyActivity
from polar_pipeline.accesslink.records.base import Record, RecordT
from polar_pipeline.accesslink.records.cardio_load import CardioLoadDay, CardioLoadLevels
from polar_pipeline.accesslink.records.exercise import (
    Exercise,
    ExerciseSample,
    HeartRateZone,
    RoutePoint,
    TrainingLoadPro,
)
from polar_pipeline.accesslink.records.heart_rate import ContinuousHeartRateDay
from polar_pipeline.accesslink.records.recharge import NightlyRecharge
from polar_pipeline.accesslink.records.sleep import SleepNight
from polar_pipeline.accesslink.records.user import PhysicalInfo, PolarUser, TokenGrant

__all__ = [
    "ActivitySamples",
    "CardioLoadDay",
    "CardioLoadLevels",
    "ContinuousHeartRateDay",
    "DailyActivity",
    "Exercise",
    "ExerciseSample",
    "HeartRateZone",
    "NightlyRecharge",
    "PhysicalInfo",
    "PolarUser",
    "Record",
    "RecordT",
    "RoutePoint",
    "SleepNight",
    "TokenGrant",
    "TrainingLoadPro",
]
