"""Read a whole export into raw records per stream, then store them like any other source.

``read_export`` opens the archive, walks its members in name order (zip and unpacked folder read alike) and
parses one JSON member at a time; only the mapped summaries are kept, never the archive. Members of the
families the pipeline does not type yet are counted per family in ``skipped``. An unreadable member or
record becomes a quarantine row (file name and reason) and the import goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from polar_pipeline.polar_export import activity, recharge, sessions, sleep
from polar_pipeline.polar_export.archive import (
    ExportArchive,
    Member,
    MemberError,
    open_export,
    parse_export_json,
)
from polar_pipeline.polar_export.values import FileProblem, RecordError, quarantine_file, quarantine_record
from polar_pipeline.warehouse.raw_store import (
    QuarantineRecord,
    RawBatch,
    RawRecord,
    StoredCounts,
    store_raw_batches,
)

SOURCE = "export"
"""The ``source`` column of rows the importer writes."""

STREAMS = (sessions.STREAM, activity.STREAM, sleep.STREAM, recharge.STREAM)

SKIPPED_FAMILIES: tuple[tuple[str, str], ...] = (
    ("training-target-", "training_target"),
    ("247ohr_", "247ohr"),
    ("ppi_samples_", "ppi_samples"),
    ("sleep_wake_", "sleep_wake"),
    ("nightly_recovery_blob_", "nightly_recovery_blob"),
    ("orthostatic-test-result-", "orthostatic_test"),
    ("fitness-test-results-", "fitness_test"),
    ("generic-period", "generic_period"),
    ("account-data-", "account_data"),
    ("account-profile-", "account_profile"),
    ("calendar-items-", "calendar_items"),
    ("products-devices-", "products_devices"),
    ("sport-profiles-", "sport_profiles"),
    ("favourite-targets-", "favourite_targets"),
    ("programs-", "programs"),
    ("planned-route-", "planned_route"),
    ("profile-picture-", "profile_picture"),
)
"""Families not imported (yet), by basename prefix; anything else counts as ``other``."""


@dataclass
class ExportContents:
    """What one export holds for the raw streams, and what was left aside."""

    records: dict[str, list[RawRecord]] = field(default_factory=lambda: {s: [] for s in STREAMS})
    rejects: dict[str, list[QuarantineRecord]] = field(default_factory=lambda: {s: [] for s in STREAMS})
    skipped: Counter[str] = field(default_factory=Counter)
    """Members not imported, counted per family (e.g. ``{"247ohr": 11, "training_target": 3}``)."""

    @property
    def days(self) -> list[date]:
        return [record.day for records in self.records.values() for record in records]

    @property
    def first_day(self) -> date | None:
        return min(self.days, default=None)

    @property
    def last_day(self) -> date | None:
        return max(self.days, default=None)


@dataclass(frozen=True)
class ImportSummary:
    """What ``store_export`` did, per raw stream, plus the skipped families and the day range imported."""

    stored: dict[str, StoredCounts]
    skipped: dict[str, int]
    first_day: date | None
    last_day: date | None

    @property
    def changed(self) -> int:
        return sum(counts.changed for counts in self.stored.values())

    @property
    def quarantined(self) -> int:
        return sum(counts.quarantined for counts in self.stored.values())


def family_of(basename: str) -> str:
    """The family a member belongs to: a raw stream's family name, or a skipped family."""
    if sessions.is_session(basename):
        return "training_session"
    if activity.is_activity(basename):
        return "activity"
    if sleep.is_sleep_result(basename):
        return "sleep_result"
    if sleep.is_sleep_score(basename):
        return "sleep_score"
    if recharge.is_recharge(basename):
        return "nightly_recovery"
    return next((name for prefix, name in SKIPPED_FAMILIES if basename.startswith(prefix)), "other")


def read_export(path: str | Path) -> ExportContents:
    """Every record the export holds for the raw streams; ``ValueError`` if ``path`` is no export at all."""
    contents = ExportContents()
    sleep_results: dict[date, tuple[dict[str, Any], str]] = {}
    sleep_scores: dict[date, tuple[dict[str, Any], str]] = {}
    with open_export(path) as archive:
        for member in archive.members():
            family = family_of(member.basename)
            if family == "training_session":
                _read_object(archive, member, sessions.STREAM, sessions.session_record, contents)
            elif family == "activity":
                _read_object(archive, member, activity.STREAM, activity.activity_record, contents)
            elif family == "nightly_recovery":
                for entry in _read_array(archive, member, recharge.STREAM, contents):
                    _add(contents, recharge.STREAM, member.name, entry, recharge.recharge_record)
            elif family in ("sleep_result", "sleep_score"):
                nights = sleep_results if family == "sleep_result" else sleep_scores
                label = family.replace("_", " ")
                for entry in _read_array(archive, member, sleep.STREAM, contents):
                    try:
                        nights[sleep.night_of(entry, label)] = (entry, member.name)
                    except RecordError as error:
                        contents.rejects[sleep.STREAM].append(
                            quarantine_record(sleep.STREAM, member.name, error, entry)
                        )
            else:
                contents.skipped[family] += 1
    _join_sleep(sleep_results, sleep_scores, contents)
    for stream in STREAMS:
        contents.records[stream] = _last_per_key(contents.records[stream])
    return contents


def store_export(
    con: duckdb.DuckDBPyConnection, user_id: str, contents: ExportContents, *, fetched_at: datetime
) -> ImportSummary:
    """Upsert the export's records for ``user_id`` (``source="export"``) and quarantine its rejects."""
    stored = {
        stream: store_raw_batches(
            con,
            stream,
            {user_id: RawBatch(records=contents.records[stream], rejects=contents.rejects[stream])},
            source=SOURCE,
            fetched_at=fetched_at,
        )
        for stream in STREAMS
    }
    return ImportSummary(stored, dict(contents.skipped), contents.first_day, contents.last_day)


def _read_member(archive: ExportArchive, member: Member, stream: str, contents: ExportContents) -> Any | None:
    """The member's parsed JSON, or None after quarantining it as unreadable."""
    data = b""
    try:
        data = archive.read_bytes(member)
        return parse_export_json(data)
    except MemberError as error:
        contents.rejects[stream].append(quarantine_file(stream, FileProblem(member.name, error.reason), data))
        return None


def _read_object(
    archive: ExportArchive,
    member: Member,
    stream: str,
    to_record: Callable[[Any, str], RawRecord],
    contents: ExportContents,
) -> None:
    document = _read_member(archive, member, stream, contents)
    if document is not None:
        _add(contents, stream, member.name, document, to_record)


def _read_array(
    archive: ExportArchive, member: Member, stream: str, contents: ExportContents
) -> Iterable[Any]:
    document = _read_member(archive, member, stream, contents)
    if document is None:
        return []
    if not isinstance(document, list):
        problem = FileProblem(
            member.name, f"expected a JSON array of nights, found {type(document).__name__}"
        )
        contents.rejects[stream].append(quarantine_file(stream, problem))
        return []
    return document


def _add(
    contents: ExportContents,
    stream: str,
    member: str,
    document: Any,
    to_record: Callable[[Any, str], RawRecord],
) -> None:
    try:
        contents.records[stream].append(to_record(document, member))
    except RecordError as error:
        contents.rejects[stream].append(
            quarantine_record(stream, member, error, sessions.summary_of(document))
        )


def _join_sleep(
    results: dict[date, tuple[dict[str, Any], str]],
    scores: dict[date, tuple[dict[str, Any], str]],
    contents: ExportContents,
) -> None:
    for night, (result, result_member) in sorted(results.items()):
        score, score_member = scores.get(night, (None, None))
        contents.records[sleep.STREAM].append(sleep.sleep_record(result, score, result_member, score_member))
    for night, (score, score_member) in sorted(scores.items()):
        if night not in results:
            error = RecordError(
                "sleep score without a sleep result for the night", day=night, key=night.isoformat()
            )
            contents.rejects[sleep.STREAM].append(quarantine_record(sleep.STREAM, score_member, error, score))


def _last_per_key(records: list[RawRecord]) -> list[RawRecord]:
    """One record per key (Polar can export a session twice); the last in member-name order wins."""
    return list({record.key: record for record in records}.values())
