"""A Polar Flow account data export (zip) of one simulated user's history, for testing an export importer.

``write_export(config, user_index, target, first_day=..., last_day=...)`` writes the zip Polar mails from
account.polar.com ("Download your data") for the user ``config`` simulates at ``user_index`` (0-based, the
same index the simulator gives user ``10000001 + user_index``). Every value is converted from the AccessLink
payload the simulator renders for the same user and day (``payloads.render_*``,
``ExerciseRenderer.render``), so an export importer and an AccessLink sync of the same days must agree.
What AccessLink would not serve yet at the simulator's "now" (a night not synced, a day not begun, an
exercise not uploaded) is left out as well. Record faults (``FaultConfig``) are never applied: an export
is clean data.

Polar publishes no schema for the archive; the shapes below restate what public parsers and real
anonymised files show:

* Files at the archive root, pretty-printed JSON (2 spaces, UTF-8). Name families:
  ``training-session-{date}T{HH:MM:SS}-{id}-{uuid}.json`` (new format, colons in the name, as mid-2026
  exports have them), ``training-session_{date}T{HH-MM-SS}_{id}-{uuid}.json`` (new format, older naming),
  ``training-session-{date}-{id}-{uuid}.json`` (old format, ``exportVersion`` 1.x),
  ``training-target-{date}-{n}-{uuid}.json`` (planned targets: decoys an importer must not take for
  sessions), ``activity-{date}-{uuid}.json``, ``247ohr_{YYYY}_{MM}-{uuid}.json`` (monthly 24/7 HR),
  ``sleep_result_{userId}-{uuid}.json``, ``sleep_score_{userId}-{uuid}.json`` and
  ``nightly_recovery_{userId}-{uuid}.json`` (one array each, all nights), ``account-data-…``,
  ``account-profile-…``, ``products-devices-…`` and a binary ``profile-picture-….data``. The uuids are
  per-delivery noise (derived from the seed here, so the zip is reproducible).
* New-format sessions: naive local ``startTime``/``stopTime`` (whole seconds) plus ``timezoneOffsetMinutes``
  (UTC = local - offset), ``durationMillis`` (int ms), ``recoveryTimeMillis`` and ``sport.id`` as strings,
  1 Hz ``samples.samples[{type, intervalMillis, values}]`` with SPEED in km/h and the bare token ``NaN`` for
  a sensor dropout; an indoor session's SPEED series is all ``NaN`` (no speed sensor).
  Old-format sessions: ``startTime`` with ``.000``, ``timeZoneOffset`` (session) / ``timezoneOffset``
  (exercise), ISO ``duration``, ``kiloCalories``, ``exercises[].sport`` as an enum string and per-sample
  ``{dateTime, value}`` entries whose ``value`` is omitted on a dropout.
* Sleep ``sleepStart``/``sleepEnd`` carry their UTC offset (the AccessLink strings, unchanged); activity times
  are naive local.

Field mapping, export ← AccessLink payload (the reverse of what an importer does):

* session ``startTime``, ``timezoneOffsetMinutes`` ← ``start_time``, ``start_time_utc_offset``;
  ``durationMillis`` ← ``duration`` (``PT2460.605S`` → 2460605; old format: the same string);
  ``distanceMeters`` / old ``distance`` ← ``distance`` (absent without one); ``calories`` / old
  ``kiloCalories`` ← ``calories``; ``hrAvg``, ``hrMax`` / old ``averageHeartRate``, ``maximumHeartRate`` ←
  ``heart_rate.average``, ``.maximum``; ``sport.id`` + ``name`` ← ``detailed_sport_info`` via ``SPORT_IDS``
  (old: ``exercises[].sport`` = ``detailed_sport_info``); ``trainingLoadReport.cardioLoad``, ``muscleLoad``
  (old: ``loadInformation``) ← ``training_load_pro.cardio-load``, ``muscle-load``; ``fat/carbo/protein
  Percentage`` ← ``fat/carbohydrate/protein_percentage``; ``exercises[0].runningIndex`` ← ``running_index``
  (new format only); HR ``zones`` ``inZone`` (ms; old: ISO) ← ``heart_rate_zones[].in_zone``; 1 Hz
  ``samples`` ← ``samples[].data`` (``null`` → ``NaN``).
* activity ``summary.stepCount``, ``calories``, ``stepsDistance``, ``inactivityAlertCount`` ← ``steps``,
  ``calories``, ``distance_from_steps``, ``inactivity_alert_count``; ``summary.activityLevels`` ← per-zone
  seconds of ``samples.activity_zones`` (SEDENTARY = ``inactive_duration``; LIGHT + CONTINUOS_MODERATE +
  CONTINUOS_VIGOROUS = ``active_duration``); ``summary.dailyMetMinutes`` ← ``active_calories`` × 60 / weight
  (a simulator convention, 1 MET-minute = kg / 60 kcal: round(value × ``"weight, kg"`` / 60) gives it back);
  per-minute ``samples.steps`` ← the ``samples.steps`` change points.
* sleep ``night`` ← ``date``; ``hypnogram.sleepStart``, ``sleepEnd``, ``deviceId`` ← ``sleep_start_time``,
  ``sleep_end_time``, ``device_id``; ``phaseDurations.light/deep/rem/unknown/wake`` ← ``light_sleep``,
  ``deep_sleep``, ``rem_sleep``, ``unrecognized_sleep_stage``, ``total_interruption_duration``;
  ``interruptions.total/short/longDuration`` ← ``total/short/long_interruption_duration``;
  ``analysis.continuityIndex``, ``continuityClass`` ← ``continuity``, ``continuity_class``;
  ``hypnogram.sleepGoal``, ``rating`` ← ``sleep_goal``, ``sleep_rating`` (0 UNKNOWN, 1 SLEPT_BAD …
  5 SLEPT_WELL); ``sleepStateChanges`` ← ``hypnogram`` (minutes after the first key; codes 0-5 → WAKE, REM,
  NONREM1-3, WS_UNKNOWN); number of ``sleepCycleModels`` ← ``sleep_cycles``.
* sleep score ``sleepScore``, ``groupDurationScore``, ``groupSolidityScore``, ``groupRefreshScore``,
  ``scoreRate`` ← ``sleep_score``, ``group_duration_score``, ``group_solidity_score``,
  ``group_regeneration_score``, ``sleep_charge`` (omitted when -1).
* nightly recovery ``meanNightlyRecoveryRmssd``, ``meanNightlyRecoveryRri`` ← ``heart_rate_variability_avg``,
  ``beat_to_beat_avg``; ``meanNightlyRecoveryRespirationInterval`` ← round(60000 / ``breathing_rate_avg``)
  (60000 / it rounded to 0.1 gives the rate back exactly); ``ansStatus``, ``ansRate``,
  ``recoveryIndicator`` ← ``ans_charge``, ``ans_charge_status``, ``nightly_recharge_status``.
* 247ohr ``samples[{heartRate, secondsFromDayStart}]`` ← continuous HR ``heart_rate_samples`` (0 left out).

Not carried (real exports have no such field): activity ``active_calories`` other than through
``dailyMetMinutes``, ``daily_activity``; Nightly Recharge ``heart_rate_avg`` (60000 /
``meanNightlyRecoveryRri`` can differ from it by 1 bpm near a .5 boundary); sleep ``heart_rate_samples``;
AccessLink exercise ids; the daily cardio load.

A 5-year export of the athlete with samples (2.8 GB of JSON, a 160 MB zip) took under 4 minutes at a
peak RSS of 63 MB on a busy 2-core machine::

    python -c "import datetime as d, pathlib as p; from polar_pipeline.simulator import SimulatorConfig;
    from polar_pipeline.simulator.export import write_export; print(write_export(SimulatorConfig(
    today=d.date(2026, 3, 1), history_days=1830), 0, p.Path('export.zip'), first_day=d.date(2021, 3, 2),
    last_day=d.date(2026, 3, 1)))"

Memory: members are written one at a time through ``ZipFile.open(name, "w")``; the all-night arrays and the
monthly HR files are streamed record by record, so the footprint is one day's (or one session's) payload
plus the simulator's own small per-day latent state.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from polar_pipeline.simulator.config import SimulatorConfig
from polar_pipeline.simulator.exercises import ExerciseRenderer
from polar_pipeline.simulator.payloads import (
    EPOCH_SECONDS,
    EPOCHS_PER_DAY,
    local_now_epoch,
    render_activity,
    render_continuous_hr,
    render_recharge,
    render_sleep,
)
from polar_pipeline.simulator.physiology import DayState, Session, UserModel
from polar_pipeline.simulator.routes.daily import SYNC_DELAY
from polar_pipeline.simulator.seeding import hex_token, unit_interval
from polar_pipeline.simulator.state import SimulatorState
from polar_pipeline.simulator.timefmt import iso_duration

SessionFormat = Literal["new", "old", "mixed"]

SPORT_IDS: dict[str, tuple[str, str]] = {
    "RUNNING": ("1", "Running"),
    "ROAD_BIKING": ("2", "Road biking"),
    "WALKING": ("3", "Walking"),
    "STRENGTH_TRAINING": ("15", "Strength training"),
    "MOBILITY_STATIC": ("83", "Other indoor"),
    "CORE": ("103", "Core"),
}
"""The new format's numeric ``sport.id`` and English ``name`` per AccessLink ``detailed_sport_info``.

The export ships no sport catalogue; only 1 = Running and 83 = Other indoor are seen in real files. The other
ids are this simulator's choice, one per detailed sport so the mapping inverts, and their names spell the
AccessLink word, which an importer that falls back on the name reads back. Mobility is exported as Polar's
real "Other indoor" (83), so it comes back as OTHER_INDOOR."""

SAMPLE_TYPE_NAMES = {
    0: "HEART_RATE",
    1: "SPEED",
    2: "CADENCE",
    3: "ALTITUDE",
    4: "POWER",
    9: "TEMPERATURE",
    10: "DISTANCE",
}
_OLD_SAMPLE_KEYS = {
    0: "heartRate",
    1: "speed",
    2: "cadence",
    3: "altitude",
    9: "temperature",
    10: "distance",
}
STAGE_STATES = {0: "WAKE", 1: "REM", 2: "NONREM1", 3: "NONREM2", 4: "NONREM3", 5: "WS_UNKNOWN"}
RATINGS = {
    0: "UNKNOWN",
    1: "SLEPT_BAD",
    2: "SLEPT_QUITE_BAD",
    3: "SLEPT_NEITHER_BAD_NOR_WELL",
    4: "SLEPT_QUITE_WELL",
    5: "SLEPT_WELL",
}
ACTIVITY_LEVELS = {
    "SLEEP": "SLEEP",
    "SEDENTARY": "SEDENTARY",
    "LIGHT": "LIGHT",
    "MODERATE": "CONTINUOS_MODERATE",
    "VIGOROUS": "CONTINUOS_VIGOROUS",
}
_MET_BY_ZONE = {"SLEEP": 0.9, "SEDENTARY": 1.2, "LIGHT": 2.4, "MODERATE": 4.6, "VIGOROUS": 8.1}
_WRITE_CHUNK = 1 << 16

FAMILIES = (
    "training-session-new",
    "training-session-old",
    "training-target",
    "activity",
    "247ohr",
    "sleep_result",
    "sleep_score",
    "nightly_recovery",
    "account",
    "products-devices",
    "profile-picture",
)


@dataclass
class ExportStats:
    """What ``write_export`` wrote: members per family, sizes and the days covered."""

    files: Counter[str] = field(default_factory=Counter)
    uncompressed_bytes: int = 0
    zip_bytes: int = 0
    first_day: dt.date | None = None
    last_day: dt.date | None = None

    def _saw(self, day: dt.date) -> None:
        self.first_day = day if self.first_day is None else min(self.first_day, day)
        self.last_day = day if self.last_day is None else max(self.last_day, day)


# ------------------------------------------------------------------------------------------ JSON streaming


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        return "NaN" if value != value else repr(value)
    if kind is str:
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise TypeError(f"cannot write {kind.__name__} into an export file")


def _is_flat_dict(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and not any(isinstance(v, dict | list) for v in value.values())
    )


def _flat_dict(value: dict[str, Any], level: int) -> str:
    pad = "  " * (level + 1)
    body = f",\n{pad}".join(f"{_scalar(key)}: {_scalar(item)}" for key, item in value.items())
    return "{\n" + pad + body + "\n" + "  " * level + "}"


def _chunks(value: Any, level: int = 0) -> Iterator[str]:
    """Polar's pretty-printing (2-space indent, ``"key": value``) with bare ``NaN`` for float NaN.

    A hand-rolled encoder because ``json`` with ``indent`` runs in pure Python and cannot write ``NaN`` into
    a list of numbers fast; lists of scalars (the 1 Hz series) are joined in one go."""
    pad = "  " * (level + 1)
    close = "  " * level
    if isinstance(value, dict):
        if not value:
            yield "{}"
            return
        yield "{\n"
        last = len(value) - 1
        for number, (key, item) in enumerate(value.items()):
            yield f"{pad}{_scalar(key)}: "
            yield from _chunks(item, level + 1)
            yield ",\n" if number < last else "\n"
        yield close + "}"
    elif isinstance(value, list):
        if not value:
            yield "[]"
        elif not any(isinstance(item, dict | list) for item in value):
            yield "[\n" + pad + f",\n{pad}".join(map(_scalar, value)) + "\n" + close + "]"
        elif all(_is_flat_dict(item) for item in value):
            entries = (_flat_dict(item, level + 1) for item in value)
            yield "[\n" + pad + f",\n{pad}".join(entries) + "\n" + close + "]"
        else:
            yield "[\n"
            last = len(value) - 1
            for number, item in enumerate(value):
                yield pad
                yield from _chunks(item, level + 1)
                yield ",\n" if number < last else "\n"
            yield close + "]"
    else:
        yield _scalar(value)


class _Member:
    """One zip member being written: buffered UTF-8 text, counted into the stats."""

    def __init__(
        self, archive: zipfile.ZipFile, name: str, stamp: tuple[int, int, int, int, int, int]
    ) -> None:
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self._handle: IO[bytes] = archive.open(info, "w")
        self._buffer: list[str] = []
        self._pending = 0
        self.size = 0

    def write(self, text: str) -> None:
        self._buffer.append(text)
        self._pending += len(text)
        if self._pending >= _WRITE_CHUNK:
            self.flush()

    def write_json(self, value: Any, level: int = 0) -> None:
        for chunk in _chunks(value, level):
            self.write(chunk)

    def write_bytes(self, data: bytes) -> None:
        self.flush()
        self._handle.write(data)
        self.size += len(data)

    def flush(self) -> None:
        if self._buffer:
            data = "".join(self._buffer).encode()
            self._handle.write(data)
            self.size += len(data)
            self._buffer.clear()
            self._pending = 0

    def close(self) -> None:
        self.flush()
        self._handle.close()


# ------------------------------------------------------------------------------------------ the exporter


def _uuid(*parts: object) -> str:
    digits = hex_token(*parts, length=32)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _numeric_id(*parts: object) -> str:
    """A 10-digit id like real ``identifier.id`` values (``7520219187``)."""
    return str(1_000_000_000 + int(hex_token(*parts, length=15), 16) % 9_000_000_000)


def _naive_ms(local: dt.datetime) -> str:
    return f"{local.strftime('%Y-%m-%dT%H:%M:%S')}.{local.microsecond // 1000:03d}"


def _duration_seconds(text: str) -> float:
    """``PT2460.605S`` (the simulator's exercise duration style) → seconds."""
    return float(text.removeprefix("PT").removesuffix("S"))


def _iso_seconds(text: str) -> int:
    """``PT1H2M3S`` → 3723 (the zone ``in_zone`` style)."""
    total, number = 0, ""
    for char in text.removeprefix("PT"):
        if char.isdigit() or char == ".":
            number += char
        else:
            total += round(float(number) * {"H": 3600, "M": 60, "S": 1}[char])
            number = ""
    return total


def _series_values(sample_type: int, data: str) -> list[float | int]:
    values: list[float | int] = []
    for item in data.split(","):
        if item == "null":
            values.append(math.nan)
        elif sample_type == 0:
            values.append(int(item))
        else:
            values.append(float(item))
    return values


class _Exporter:
    def __init__(
        self,
        config: SimulatorConfig,
        user_index: int,
        archive: zipfile.ZipFile,
        session_format: SessionFormat,
        samples: bool,
    ) -> None:
        if not 0 <= user_index < config.users:
            raise ValueError(f"user_index must be 0..{config.users - 1}")
        self.sim = SimulatorState(config)
        self.model: UserModel = self.sim.models[user_index]
        self.now = self.sim.clock.now()
        self.seed = config.seed
        self.user = self.model.x_user_id
        self.archive = archive
        self.session_format = session_format
        self.samples = samples
        self.renderer = ExerciseRenderer()
        self.stats = ExportStats()
        now = self.now
        self.stamp = (now.year, now.month, now.day, now.hour, now.minute, now.second // 2 * 2)
        self.created = _naive_ms(now.replace(tzinfo=None, microsecond=0))

    # ---------------------------------------------------------------------------------------- plumbing

    def _open(self, family: str, name: str) -> _Member:
        self.stats.files[family] += 1
        return _Member(self.archive, name, self.stamp)

    def _close(self, member: _Member) -> None:
        member.close()
        self.stats.uncompressed_bytes += member.size

    def _write_object(self, family: str, name: str, value: Any) -> None:
        member = self._open(family, name)
        member.write_json(value)
        member.write("\n")
        self._close(member)

    def _write_array(self, family: str, name: str, items: Iterable[dict[str, Any]]) -> None:
        """A top-level JSON array written one record at a time."""
        member = self._open(family, name)
        first = True
        for item in items:
            member.write("[\n  " if first else ",\n  ")
            member.write_json(item, 1)
            first = False
        member.write("[]\n" if first else "\n]\n")
        self._close(member)

    def _file_uuid(self, *key: object) -> str:
        return _uuid(self.seed, self.user, "export-file", *key)

    # ---------------------------------------------------------------------------------------- what exists

    def _synced_night(self, state: DayState, recharge: bool) -> bool:
        if not state.worn or (recharge and not state.has_recharge):
            return False
        return state.sleep_end_utc + SYNC_DELAY <= self.now

    def _activity_begun(self, state: DayState) -> bool:
        return local_now_epoch(state, self.now) > 0

    def _uploaded(self, session: Session) -> bool:
        return session.upload_utc <= self.now

    # ---------------------------------------------------------------------------------------- run

    def run(self, first_day: dt.date, last_day: dt.date) -> None:
        days = self.model.days(first_day, min(last_day, self.now.date() + dt.timedelta(days=1)))
        self._account_files()
        for state in days:
            self._day_files(state)
        self._heart_rate_months(days)
        self._write_array(
            "sleep_result",
            f"sleep_result_{self.user}-{self._file_uuid('sleep_result')}.json",
            (self._sleep_result(s) for s in days if self._synced_night(s, recharge=False)),
        )
        self._write_array(
            "sleep_score",
            f"sleep_score_{self.user}-{self._file_uuid('sleep_score')}.json",
            (self._sleep_score(s) for s in days if self._synced_night(s, recharge=False)),
        )
        self._write_array(
            "nightly_recovery",
            f"nightly_recovery_{self.user}-{self._file_uuid('nightly_recovery')}.json",
            (self._nightly_recovery(s) for s in days if self._synced_night(s, recharge=True)),
        )
        picture = self._open(
            "profile-picture", f"profile-picture-{self.user}-MEDIUM-{self._file_uuid('picture')}.data"
        )
        picture.write_bytes(bytes.fromhex(hex_token(self.seed, self.user, "picture", length=64)))
        self._close(picture)

    def _day_files(self, state: DayState) -> None:
        for session in state.sessions:
            if self._uploaded(session):
                self._session_file(session)
                self.stats._saw(session.start_local.date())
        self._target_files(state)
        if self._activity_begun(state):
            day = state.date.isoformat()
            self._write_object(
                "activity", f"activity-{day}-{self._file_uuid('activity', day)}.json", self._activity(state)
            )
            self.stats._saw(state.date)
        if self._synced_night(state, recharge=False):
            self.stats._saw(state.date)

    # ---------------------------------------------------------------------------------------- account

    def _physical_information(self, day: dt.date) -> dict[str, Any]:
        profile = self.model.profile
        return {
            "sex": profile.gender,
            "birthday": profile.birthdate.isoformat(),
            "height, cm": profile.height_cm,
            "weight, kg": profile.weight_kg,
            "maximumHeartRate": profile.hr_max,
            "restingHeartRate": round(profile.resting_hr),
            "sleepGoal": iso_duration(self.model.persona.sleep_goal_seconds),
        }

    def _account_files(self) -> None:
        profile = self.model.profile
        zone = profile.home_zone or _fixed_zone(profile.home_offset_minutes)
        self._write_object(
            "account",
            f"account-data-{self.user}-{self._file_uuid('account-data')}.json",
            {
                "exportVersion": "1.6",
                "username": f"{profile.first_name.lower()}.{profile.last_name.lower()}@example.invalid",
                "firstName": profile.first_name,
                "lastName": profile.last_name,
                "physicalInformation": self._physical_information(self.now.date()),
                "settings": {"timeZone": zone, "language": "en", "measurementUnit": "METRIC"},
                "linkedApplications": [],
            },
        )
        self._write_object(
            "account",
            f"account-profile-{self.user}-{self._file_uuid('account-profile')}.json",
            {"exportVersion": "1.6", "nickname": profile.first_name, "motto": ""},
        )
        self._write_object(
            "products-devices",
            f"products-devices-{self.user}-{self._file_uuid('products-devices')}.json",
            {
                "devices": [{"deviceId": d.device_id, "modelName": d.model} for d in self.model.devices[-1:]],
                "archivedDevices": [
                    {"deviceId": d.device_id, "modelName": d.model} for d in self.model.devices[:-1]
                ],
            },
        )

    # ---------------------------------------------------------------------------------------- sessions

    def _format_of(self, session: Session) -> str:
        if self.session_format != "mixed":
            return self.session_format
        return "old" if unit_interval(self.seed, session.exercise_id, "export-format") < 0.4 else "new"

    def _session_file(self, session: Session) -> None:
        payload = self.renderer.render(
            self.model, session, samples=self.samples, zones=True, route=self.samples
        )
        session_id = _numeric_id(self.seed, self.user, "export-session", session.exercise_id)
        start = session.start_local
        file_uuid = self._file_uuid("session", session.exercise_id)
        if self._format_of(session) == "old":
            name = f"training-session-{start.date().isoformat()}-{session_id}-{file_uuid}.json"
            self._write_object("training-session-old", name, self._old_session(session, payload))
            return
        if unit_interval(self.seed, session.exercise_id, "export-name") < 0.5:
            name = f"training-session-{start.strftime('%Y-%m-%dT%H:%M:%S')}-{session_id}-{file_uuid}.json"
        else:
            name = f"training-session_{start.strftime('%Y-%m-%dT%H-%M-%S')}_{session_id}-{file_uuid}.json"
        self._write_object("training-session-new", name, self._new_session(session, session_id, payload))

    def _new_session(self, session: Session, session_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        millis = round(_duration_seconds(payload["duration"]) * 1000)
        start = session.start_local
        stop = (start + dt.timedelta(milliseconds=millis)).strftime("%Y-%m-%dT%H:%M:%S")
        sport_id, sport_name = SPORT_IDS[payload["detailed_sport_info"]]
        load = payload["training_load_pro"]
        recovery = str(round(millis * 9 * session.intensity) // 1000 * 1000)
        record: dict[str, Any] = {
            "identifier": {"id": session_id},
            "created": self.created,
            "modified": self.created,
            "startTime": payload["start_time"],
            "stopTime": stop,
            "name": sport_name,
            "durationMillis": millis,
        }
        if "distance" in payload:
            record["distanceMeters"] = payload["distance"]
        record |= {
            "calories": payload["calories"],
            "fatPercentage": payload["fat_percentage"],
            "carboPercentage": payload["carbohydrate_percentage"],
            "proteinPercentage": payload["protein_percentage"],
            "recoveryTimeMillis": recovery,
            "hrMax": payload["heart_rate"]["maximum"],
            "hrAvg": payload["heart_rate"]["average"],
            "timezoneOffsetMinutes": payload["start_time_utc_offset"],
            "deviceId": payload["device_id"],
            "sport": {"id": sport_id},
            "product": {"modelName": payload["device"]},
        }
        exercise: dict[str, Any] = {
            "identifier": {"id": _numeric_id(self.seed, self.user, "export-exercise", session.exercise_id)},
            "created": self.created,
            "modified": self.created,
            "startTime": payload["start_time"],
            "stopTime": stop,
            "durationMillis": millis,
        }
        if "distance" in payload:
            exercise["distanceMeters"] = payload["distance"]
        exercise |= {
            "calories": payload["calories"],
            "fatPercentage": payload["fat_percentage"],
            "recoveryTimeMillis": recovery,
            "timezoneOffsetMinutes": payload["start_time_utc_offset"],
            "sport": {"id": sport_id},
        }
        if "running_index" in payload:
            exercise["runningIndex"] = payload["running_index"]
        route = payload.get("route")
        if route:
            exercise["latitude"] = route[0]["latitude"]
            exercise["longitude"] = route[0]["longitude"]
        series = self._series(payload, session)
        exercise["laps"] = {}
        exercise["statistics"] = {"statistics": self._statistics(payload, series)}
        exercise["zones"] = [
            {
                "type": "ZONE_TYPE_HEART_RATE",
                "zones": [
                    {
                        "lowerLimit": zone["lower_limit"],
                        "higherLimit": zone["upper_limit"],
                        "inZone": _iso_seconds(zone["in_zone"]) * 1000,
                    }
                    for zone in payload["heart_rate_zones"]
                ],
            }
        ]
        if series:
            exercise["samples"] = {
                "samples": [
                    {"type": SAMPLE_TYPE_NAMES[sample_type], "intervalMillis": 1000, "values": values}
                    for sample_type, values in series.items()
                ]
            }
        if route:
            exercise["routes"] = {
                "route": {
                    "startTime": _naive_ms(start),
                    "wayPoints": [
                        {
                            "latitude": point["latitude"],
                            "longitude": point["longitude"],
                            "elapsedMillis": round(_duration_seconds(point["time"]) * 1000),
                        }
                        for point in route
                    ],
                }
            }
        else:
            exercise["routes"] = {}
        record["exercises"] = [exercise]
        record["trainingLoadReport"] = {
            "cardioLoad": load["cardio-load"],
            "muscleLoad": load["muscle-load"],
            "cardioLoadInterpretation": "LOAD_INTERPRETATION_" + load["cardio-load-interpretation"],
            "muscleLoadInterpretation": "LOAD_INTERPRETATION_" + load["muscle-load-interpretation"],
            "calculationTime": payload["start_time"] + "Z",
            "perceivedLoadInterpretation": "LOAD_INTERPRETATION_" + load["perceived-load-interpretation"],
        }
        return record

    def _series(self, payload: dict[str, Any], session: Session) -> dict[int, list[float | int]]:
        """The 1 Hz series by sample type; a sport without distance has an all-NaN SPEED (no sensor)."""
        series: dict[int, list[float | int]] = {}
        for sample in payload.get("samples", []):
            sample_type = sample["sample_type"]
            values = _series_values(sample_type, sample["data"])
            if sample_type in (1, 10) and not session.spec.has_distance:
                if sample_type == 10:
                    continue
                values = [math.nan] * len(values)
            series[sample_type] = values
        return series

    @staticmethod
    def _statistics(payload: dict[str, Any], series: dict[int, list[float | int]]) -> list[dict[str, Any]]:
        heart_rate = [v for v in series.get(0, []) if not math.isnan(v)]
        hr: dict[str, Any] = {"type": "STATISTICS_TYPE_HEART_RATE"}
        if heart_rate:
            hr["min"] = int(min(heart_rate))
        hr |= {"avg": payload["heart_rate"]["average"], "max": payload["heart_rate"]["maximum"]}
        statistics = [hr]
        speeds = [v for v in series.get(1, []) if not math.isnan(v)]
        if speeds and "distance" in payload:
            statistics.append(
                {
                    "type": "STATISTICS_TYPE_SPEED",
                    "avg": round(sum(speeds) / len(speeds), 4),
                    "max": round(max(speeds), 4),
                }
            )
        return statistics

    def _old_session(self, session: Session, payload: dict[str, Any]) -> dict[str, Any]:
        seconds = _duration_seconds(payload["duration"])
        start = session.start_local
        stop = _naive_ms(start + dt.timedelta(seconds=seconds))
        load = payload["training_load_pro"]
        profile = self.model.profile
        record: dict[str, Any] = {
            "exportVersion": "1.3",
            "name": SPORT_IDS[payload["detailed_sport_info"]][1],
            "deviceId": payload["device_id"],
            "startTime": _naive_ms(start),
            "stopTime": stop,
            "timeZoneOffset": payload["start_time_utc_offset"],
        }
        if "distance" in payload:
            record["distance"] = payload["distance"]
        record |= {
            "duration": payload["duration"],
            "maximumHeartRate": payload["heart_rate"]["maximum"],
            "averageHeartRate": payload["heart_rate"]["average"],
            "kiloCalories": payload["calories"],
            "loadInformation": {
                "cardioLoad": load["cardio-load"],
                "muscleLoad": load["muscle-load"],
                "perceivedLoad": load["perceived-load"],
                "calculationTime": _naive_ms(start),
                "cardioLoadInterpretation": load["cardio-load-interpretation"],
            },
            "physicalInformationSnapshot": {
                "dateTime": _naive_ms(start),
                "sex": profile.gender,
                "birthday": profile.birthdate.isoformat(),
                "maximumHeartRate": profile.hr_max,
                "restingHeartRate": round(profile.resting_hr),
                "sleepGoal": iso_duration(self.model.persona.sleep_goal_seconds),
            },
        }
        series = self._series(payload, session)
        exercise: dict[str, Any] = {
            "startTime": _naive_ms(start),
            "stopTime": stop,
            "timezoneOffset": payload["start_time_utc_offset"],
            "duration": payload["duration"],
        }
        if "distance" in payload:
            exercise["distance"] = payload["distance"]
        exercise["sport"] = payload["detailed_sport_info"]
        route = payload.get("route")
        if route:
            exercise["latitude"] = route[0]["latitude"]
            exercise["longitude"] = route[0]["longitude"]
        exercise["kiloCalories"] = payload["calories"]
        statistics = self._statistics(payload, series)
        exercise["heartRate"] = {
            key: statistics[0][key] for key in ("min", "avg", "max") if key in statistics[0]
        }
        if len(statistics) > 1:
            exercise["speed"] = {"avg": statistics[1]["avg"], "max": statistics[1]["max"]}
        exercise["zones"] = {
            "heart_rate": [
                {
                    "zoneIndex": zone["index"],
                    "lowerLimit": zone["lower_limit"],
                    "higherLimit": zone["upper_limit"],
                    "inZone": zone["in_zone"],
                }
                for zone in payload["heart_rate_zones"]
            ]
        }
        if series or route:
            stamps = [_naive_ms(start + dt.timedelta(seconds=s)) for s in range(len(series.get(0, [])))]
            samples: dict[str, Any] = {}
            for sample_type, values in series.items():
                key = _OLD_SAMPLE_KEYS.get(sample_type)
                if key is None:
                    continue
                samples[key] = [
                    {"dateTime": stamp} if math.isnan(value) else {"dateTime": stamp, "value": value}
                    for stamp, value in zip(stamps, values, strict=False)
                ]
            if route:
                samples["recordedRoute"] = [
                    {
                        "dateTime": _naive_ms(start + dt.timedelta(seconds=_duration_seconds(point["time"]))),
                        "latitude": point["latitude"],
                        "longitude": point["longitude"],
                    }
                    for point in route
                ]
            exercise["samples"] = samples
        record["exercises"] = [exercise]
        return record

    def _target_files(self, state: DayState) -> None:
        """Planned training targets (never sessions): on some session days and a few idle days."""
        day = state.date.isoformat()
        planned = [s for s in state.sessions if unit_interval(self.seed, s.exercise_id, "target") < 0.25]
        if not state.sessions and unit_interval(self.seed, self.user, "idle-target", day) < 0.1:
            planned_kinds = ["run_easy"]
        else:
            planned_kinds = [s.kind for s in planned]
        for number, kind in enumerate(planned_kinds):
            target_id = _numeric_id(self.seed, self.user, "export-target", day, number)
            name = f"training-target-{day}-{target_id}-{self._file_uuid('target', day, number)}.json"
            self._write_object(
                "training-target",
                name,
                {
                    "name": f"Planned {kind.replace('_', ' ')}",
                    "description": "",
                    "startTime": f"{day}T00:00:00.000",
                    "done": bool(planned),
                    "exercises": [{"sport": "RUNNING" if kind.startswith("run") else "OTHER", "phases": []}],
                },
            )

    # ---------------------------------------------------------------------------------------- activity

    def _activity(self, state: DayState) -> dict[str, Any]:
        payload = render_activity(self.model, state, self.now, steps=True, activity_zones=True)
        until = local_now_epoch(state, self.now)
        samples = payload["samples"]
        level_seconds: Counter[str] = Counter()
        zones = samples["activity_zones"]["samples"]
        starts = [_clock_seconds(zone["timestamp"]) for zone in zones]
        ends = [*starts[1:], until * EPOCH_SECONDS]
        for zone, start, end in zip(zones, starts, ends, strict=True):
            level_seconds[zone["zone"]] += end - start
        mets = [
            {"localTime": _time_of_day(start), "value": _MET_BY_ZONE[zone["zone"]]}
            for zone, start in zip(zones, starts, strict=True)
        ]
        minute_steps: list[dict[str, Any]] = []
        changes = samples["steps"]["samples"]
        change_minutes = [_clock_seconds(change["timestamp"]) // 60 for change in changes]
        last_minute = min(until, EPOCHS_PER_DAY) // 2
        for k, (change, minute) in enumerate(zip(changes, change_minutes, strict=True)):
            end = change_minutes[k + 1] if k + 1 < len(changes) else last_minute
            for m in range(minute, end):
                minute_steps.append({"localTime": _time_of_day(m * 60), "value": change["steps"]})
        weight = self.model.profile.weight_kg
        return {
            "exportVersion": "2.6",
            "date": state.date.isoformat(),
            "summary": {
                "startTime": "00:00:00.000",
                "endTime": _time_of_day(min(until * EPOCH_SECONDS, 86400) - 1),
                "stepCount": payload["steps"],
                "stepsDistance": payload["distance_from_steps"],
                "calories": payload["calories"],
                "sleepQuality": 0.0,
                "sleepDuration": "PT0S",
                "inactivityAlertCount": payload["inactivity_alert_count"],
                "dailyMetMinutes": round(payload["active_calories"] * 60 / weight, 2),
                "activityLevels": [
                    {"level": ACTIVITY_LEVELS[zone], "duration": f"PT{level_seconds[zone]}S"}
                    for zone in ACTIVITY_LEVELS
                    if level_seconds[zone]
                ],
            },
            "samples": {"mets": mets, "steps": minute_steps, "metSources": [""]},
            "physicalInformation": self._physical_information(state.date),
        }

    # ---------------------------------------------------------------------------------------- 24/7 HR

    def _heart_rate_months(self, days: list[DayState]) -> None:
        months: dict[tuple[int, int], list[DayState]] = {}
        for state in days:
            if self._activity_begun(state):
                months.setdefault((state.date.year, state.date.month), []).append(state)
        for (year, month), states in months.items():
            member = self._open(
                "247ohr", f"247ohr_{year}_{month:02d}-{self._file_uuid('247ohr', year, month)}.json"
            )
            member.write('{\n  "deviceDays": [\n    ')
            for number, state in enumerate(states):
                payload = render_continuous_hr(self.model, state, self.now)
                day = {
                    "userId": self.user,
                    "deviceId": state.device_id,
                    "date": state.date.isoformat(),
                    "samples": [
                        {
                            "heartRate": sample["heart_rate"],
                            "secondsFromDayStart": _clock_seconds(sample["sample_time"]),
                            "source": "TIMED_24_7",
                        }
                        for sample in payload["heart_rate_samples"]
                        if sample["heart_rate"] > 0
                    ],
                }
                if number:
                    member.write(",\n    ")
                member.write_json(day, 2)
            member.write("\n  ]\n}\n")
            self._close(member)

    # ---------------------------------------------------------------------------------------- sleep

    def _sleep_result(self, state: DayState) -> dict[str, Any]:
        payload = render_sleep(self.model, state)
        keys = list(payload["hypnogram"].items())
        first = _clock_seconds(keys[0][0]) // 60
        offsets = [(_clock_seconds(label) // 60 - first) % 1440 for label, _ in keys]
        span = offsets[-1] * 60
        wake_runs = [
            (offsets[k + 1] - offsets[k]) * 60 for k, (_, stage) in enumerate(keys[:-1]) if stage == 0
        ]
        short = [run for run in wake_runs if run < 90]
        long = [run for run in wake_runs if run >= 90]
        wake = payload["total_interruption_duration"]
        asleep = span - wake
        cycles = payload["sleep_cycles"]
        profile = self.model.profile
        return {
            "night": payload["date"],
            "evaluation": {
                "sleepType": "SLEEP_PLUS_STAGES",
                "sleepSpan": iso_duration(span),
                "asleepDuration": iso_duration(asleep),
                "age": round((state.date - profile.birthdate).days / 365.25, 4),
                "analysis": {
                    "efficiencyPercent": round(100 * asleep / span, 2),
                    "continuityIndex": payload["continuity"],
                    "continuityClass": payload["continuity_class"],
                    "feedback": 10000 + 111 * payload["continuity_class"],
                },
                "interruptions": {
                    "totalDuration": iso_duration(wake),
                    "totalCount": len(wake_runs),
                    "shortDuration": iso_duration(payload["short_interruption_duration"]),
                    "shortCount": len(short),
                    "longDuration": iso_duration(payload["long_interruption_duration"]),
                    "longCount": len(long),
                },
                "phaseDurations": {
                    "wake": iso_duration(wake),
                    "rem": iso_duration(payload["rem_sleep"]),
                    "light": iso_duration(payload["light_sleep"]),
                    "deep": iso_duration(payload["deep_sleep"]),
                    "unknown": iso_duration(payload["unrecognized_sleep_stage"]),
                    "remPercentage": round(100 * payload["rem_sleep"] / asleep, 2),
                    "deepPercentage": round(100 * payload["deep_sleep"] / asleep, 2),
                },
            },
            "sleepResult": {
                "hypnogram": {
                    "sleepStart": payload["sleep_start_time"],
                    "sleepEnd": payload["sleep_end_time"],
                    "alarmSnoozeTimes": [],
                    "sleepStateChanges": [
                        {"offsetFromStart": iso_duration(offset * 60), "state": STAGE_STATES[stage]}
                        for offset, (_, stage) in zip(offsets, keys, strict=True)
                    ],
                    "sleepStartOffset": 0,
                    "sleepEndOffset": 0,
                    "rating": RATINGS[payload["sleep_rating"]],
                    "birthday": profile.birthdate.isoformat(),
                    "sleepGoal": iso_duration(payload["sleep_goal"]),
                    "deviceId": payload["device_id"],
                    "batteryRanOut": False,
                },
                "sleepCycles": {
                    "cycles": {
                        "sleepCycleModels": [
                            {
                                "secondsFromSleepStart": (k + 1) * span // (cycles + 1),
                                "sleepDepthStart": round(0.95 - 0.08 * k, 2),
                            }
                            for k in range(cycles)
                        ]
                    }
                },
            },
        }

    def _sleep_score(self, state: DayState) -> dict[str, Any]:
        payload = render_sleep(self.model, state)
        score = float(payload["sleep_score"])
        result: dict[str, Any] = {
            "sleepScore": score,
            "continuityScore": round(20 * payload["continuity"], 4),
            "efficiencyScore": round(min(100.0, score + 5), 4),
            "groupDurationScore": payload["group_duration_score"],
            "groupSolidityScore": payload["group_solidity_score"],
            "groupRefreshScore": payload["group_regeneration_score"],
        }
        if payload["sleep_charge"] != -1:
            result["scoreRate"] = payload["sleep_charge"]
        return {
            "night": payload["date"],
            "sleepScoreResult": result,
            "sleepScoreBaselines": {
                "sleepTimeAverageMinutes": round(self.model.persona.sleep_goal_seconds / 60),
                "sleepScoreBaseline": round(score, 1),
            },
        }

    def _nightly_recovery(self, state: DayState) -> dict[str, Any]:
        payload = render_recharge(self.model, state)
        rmssd = payload["heart_rate_variability_avg"]
        rri = payload["beat_to_beat_avg"]
        return {
            "night": payload["date"],
            "meanNightlyRecoveryRri": rri,
            "meanNightlyRecoveryRmssd": rmssd,
            "meanNightlyRecoveryRespirationInterval": round(60000 / payload["breathing_rate_avg"]),
            "ansStatus": payload["ans_charge"],
            "ansRate": payload["ans_charge_status"],
            "recoveryIndicator": payload["nightly_recharge_status"],
            "recoveryIndicatorSubLevel": round(50 + 5 * payload["ans_charge"]),
            "meanBaselineRri": round(60000 / self.model.profile.resting_hr),
            "sdBaselineRri": 40,
            "meanBaselineRmssd": round(math.exp(self.model.profile.ln_rmssd)),
            "sdBaselineRmssd": 7,
            "meanBaselineRespirationInterval": round(60000 / self.model.profile.breathing_rate),
            "sdBaselineRespirationInterval": 120,
        }


def _fixed_zone(offset_minutes: int) -> str:
    """An IANA name for a whole-hour fixed offset (``Etc/GMT-2`` is UTC+2: the sign is POSIX's)."""
    hours = offset_minutes // 60
    return "Etc/UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"


def _clock_seconds(text: str) -> int:
    """``HH:MM[:SS]`` or a naive ``YYYY-MM-DDTHH:MM[:SS]`` → seconds since midnight."""
    clock = text.rpartition("T")[2]
    parts = [int(part) for part in clock.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


def _time_of_day(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.000"


def write_export(
    config: SimulatorConfig,
    user_index: int,
    target: Path,
    *,
    first_day: dt.date,
    last_day: dt.date,
    session_format: SessionFormat = "mixed",
    samples: bool = True,
) -> ExportStats:
    """Write the export zip of user ``user_index`` (0-based) for ``first_day``..``last_day`` to ``target``.

    Days outside the simulated history, and data AccessLink would not serve yet at the simulator's "now",
    are left out. ``session_format`` picks the training-session schema: "new", "old", or "mixed" (each
    session drawn from its id, 40 % old). ``samples=False`` leaves out the 1 Hz series and GPS routes (much
    faster). The same config and arguments always give a byte-identical zip."""
    if first_day > last_day:
        raise ValueError("first_day must not be after last_day")
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        exporter = _Exporter(config, user_index, archive, session_format, samples)
        exporter.run(first_day, last_day)
    stats = exporter.stats
    stats.zip_bytes = target.stat().st_size
    return stats


__all__ = ["FAMILIES", "SPORT_IDS", "ExportStats", "write_export"]
