"""Read an export into raw records per stream and store them like any other source.

``iter_export`` opens the archive, walks its members in name order (zip and unpacked folder read alike) and
parses one JSON member at a time; only the mapped summaries are kept, never the archive. ``stream_export``
stores them in bounded batches as they come (the import); ``read_export`` collects them (tests). Members
of the families the pipeline does not type yet are counted per family in ``skipped``. An unreadable member or
record becomes a quarantine row (file name and reason) and the import goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from polar_pipeline.memory import release_freed_memory
from polar_pipeline.polar_export import activity, heart_rate, recharge, sessions, sleep
from polar_pipeline.polar_export.archive import (
    ExportArchive,
    Member,
    MemberError,
    open_export,
    parse_export_json,
)
from polar_pipeline.polar_export.samples import ExportSampleSink
from polar_pipeline.polar_export.summary import ImportSummary
from polar_pipeline.polar_export.values import FileProblem, RecordError, quarantine_file, quarantine_record
from polar_pipeline.warehouse.raw_counts import StoredCounts
from polar_pipeline.warehouse.raw_store import (
    QuarantineRecord,
    RawBatch,
    RawRecord,
    store_raw_batches,
)

SOURCE = "export"
"""The ``source`` column of rows the importer writes."""

STREAMS = (sessions.STREAM, activity.STREAM, sleep.STREAM, recharge.STREAM, heart_rate.STREAM)

BATCH_BYTES = 2 * 1024 * 1024
"""Payload bytes per stream held before ``stream_export`` writes them (bounds memory on a long export)."""

SKIPPED_FAMILIES: tuple[tuple[str, str], ...] = (
    ("training-target-", "training_target"),
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
class MemberRecords:
    """What one member (or, for sleep, the joined result and score files) gave one raw stream."""

    stream: str
    records: list[RawRecord] = field(default_factory=list)
    rejects: list[QuarantineRecord] = field(default_factory=list)


@dataclass
class ExportContents:
    """What one export holds for the raw streams, and what was left aside (``read_export``: all in memory)."""

    records: dict[str, list[RawRecord]] = field(default_factory=lambda: {s: [] for s in STREAMS})
    rejects: dict[str, list[QuarantineRecord]] = field(default_factory=lambda: {s: [] for s in STREAMS})
    skipped: Counter[str] = field(default_factory=Counter)
    """Members not imported, counted per family (e.g. ``{"ppi_samples": 11, "training_target": 3}``)."""

    @property
    def days(self) -> list[date]:
        return [record.day for records in self.records.values() for record in records]


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
    if heart_rate.is_heart_rate_month(basename):
        return "247ohr"
    return next((name for prefix, name in SKIPPED_FAMILIES if basename.startswith(prefix)), "other")


@dataclass
class _Reading:
    """The state of one pass over an archive: sleep nights to join at the end, counters."""

    samples: ExportSampleSink | None
    skipped: Counter[str] = field(default_factory=Counter)
    json_bytes: int = 0
    sleep_results: dict[date, tuple[dict[str, Any], str]] = field(default_factory=dict)
    sleep_scores: dict[date, tuple[dict[str, Any], str]] = field(default_factory=dict)


def iter_export(
    path: str | Path, samples: ExportSampleSink | None = None, reading: _Reading | None = None
) -> Iterator[MemberRecords]:
    """The export's records member by member (sleep last, once both of its files are read).

    ``ValueError`` before anything is yielded if ``path`` is no export at all. Only one member's JSON is
    in memory at a time; with a ``samples`` sink each session's series stream into it as it is read."""
    state = reading or _Reading(samples)
    with open_export(path) as archive:
        for member in archive.members():
            family = family_of(member.basename)
            if family == "training_session":
                yield _read_session(archive, member, state)
            elif family == "activity":
                yield _read_object(archive, member, activity.STREAM, activity.activity_record, state)
            elif family == "nightly_recovery":
                found = MemberRecords(recharge.STREAM)
                for entry in _read_array(archive, member, found, state):
                    _add(found, member.name, entry, recharge.recharge_record)
                yield found
            elif family == "247ohr":
                yield _read_heart_rate(archive, member, state)
            elif family in ("sleep_result", "sleep_score"):
                nights = state.sleep_results if family == "sleep_result" else state.sleep_scores
                label = family.replace("_", " ")
                found = MemberRecords(sleep.STREAM)
                for entry in _read_array(archive, member, found, state):
                    try:
                        nights[sleep.night_of(entry, label)] = (entry, member.name)
                    except RecordError as error:
                        found.rejects.append(quarantine_record(sleep.STREAM, member.name, error, entry))
                yield found
            else:
                state.skipped[family] += 1
    yield _join_sleep(state.sleep_results, state.sleep_scores)


def read_export(path: str | Path, samples: ExportSampleSink | None = None) -> ExportContents:
    """Every record the export holds for the raw streams, in memory (tests, small exports).

    ``ValueError`` if ``path`` is no export at all. ``import_export`` streams instead (``stream_export``)."""
    contents = ExportContents()
    reading = _Reading(samples)
    for found in iter_export(path, samples, reading):
        contents.records[found.stream].extend(found.records)
        contents.rejects[found.stream].extend(found.rejects)
    contents.skipped = reading.skipped
    for stream in STREAMS:
        contents.records[stream] = _last_per_key(contents.records[stream])
    return contents


def store_export(
    con: duckdb.DuckDBPyConnection, user_id: str, contents: ExportContents, *, fetched_at: datetime
) -> ImportSummary:
    """Upsert ``read_export``'s records for ``user_id`` (``source="export"``) and quarantine its rejects."""
    stored = {
        stream: _store(con, user_id, stream, contents.records[stream], contents.rejects[stream], fetched_at)
        for stream in STREAMS
    }
    return ImportSummary(stored, dict(contents.skipped), frozenset(contents.days))


def stream_export(
    connect: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
    user_id: str,
    path: str | Path,
    *,
    fetched_at: datetime,
    samples: ExportSampleSink | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> ImportSummary:
    """Read and store the export as it is read: a batch per stream is written once it holds ``batch_bytes``
    of payload, each in its own writer transaction through ``connect()`` (the warehouse lock is held only
    while a batch is written, so scheduled runs go on beside a long import). Memory holds one member's JSON
    and at most one batch per stream. Re-running it after a crash stores the rest (upserts by natural key).
    """
    reading = _Reading(samples)
    pending = {stream: MemberRecords(stream) for stream in STREAMS}
    pending_bytes = dict.fromkeys(STREAMS, 0)
    stored = {stream: StoredCounts(0, 0, 0, 0) for stream in STREAMS}
    days: set[date] = set()

    def flush(stream: str) -> None:
        batch = pending[stream]
        if batch.records or batch.rejects:
            with connect() as con:
                counts = _store(con, user_id, stream, _last_per_key(batch.records), batch.rejects, fetched_at)
            before = stored[stream]
            stored[stream] = StoredCounts(
                before.received + counts.received,
                before.changed + counts.changed,
                before.quarantined + counts.quarantined,
                0,
            )
        pending[stream] = MemberRecords(stream)
        pending_bytes[stream] = 0
        release_freed_memory()

    for found in iter_export(path, samples, reading):
        batch = pending[found.stream]
        batch.rejects.extend(found.rejects)
        for record in found.records:  # record by record: one member can hold every night of the export
            batch.records.append(record)
            days.add(record.day)
            pending_bytes[found.stream] += len(record.payload_json)
            if pending_bytes[found.stream] >= batch_bytes:
                flush(found.stream)
                batch = pending[found.stream]
    for stream in STREAMS:
        flush(stream)
    return ImportSummary(stored, dict(reading.skipped), frozenset(days), reading.json_bytes)


def _store(
    con: duckdb.DuckDBPyConnection,
    user_id: str,
    stream: str,
    records: list[RawRecord],
    rejects: list[QuarantineRecord],
    fetched_at: datetime,
) -> StoredCounts:
    return store_raw_batches(
        con,
        stream,
        {user_id: RawBatch(records=records, rejects=rejects)},
        source=SOURCE,
        fetched_at=fetched_at,
    )


def _read_member(archive: ExportArchive, member: Member, found: MemberRecords, state: _Reading) -> Any | None:
    """The member's parsed JSON, or None after quarantining it as unreadable."""
    data = b""
    try:
        data = archive.read_bytes(member)
        state.json_bytes += len(data)
        return parse_export_json(data)
    except MemberError as error:
        found.rejects.append(quarantine_file(found.stream, FileProblem(member.name, error.reason), data))
        return None


def _read_session(archive: ExportArchive, member: Member, state: _Reading) -> MemberRecords:
    found = MemberRecords(sessions.STREAM)
    document = _read_member(archive, member, found, state)
    if document is not None:
        record = _add(found, member.name, document, sessions.session_record)
        if record is not None and state.samples is not None:
            state.samples.add_session(record.key, record.day, document)
    return found


def _read_object(
    archive: ExportArchive,
    member: Member,
    stream: str,
    to_record: Callable[[Any, str], RawRecord],
    state: _Reading,
) -> MemberRecords:
    found = MemberRecords(stream)
    document = _read_member(archive, member, found, state)
    if document is not None:
        _add(found, member.name, document, to_record)
    return found


def _read_array(
    archive: ExportArchive, member: Member, found: MemberRecords, state: _Reading
) -> Iterable[Any]:
    document = _read_member(archive, member, found, state)
    if document is None:
        return []
    if not isinstance(document, list):
        problem = FileProblem(
            member.name, f"expected a JSON array of nights, found {type(document).__name__}"
        )
        found.rejects.append(quarantine_file(found.stream, problem))
        return []
    return document


def _read_heart_rate(archive: ExportArchive, member: Member, state: _Reading) -> MemberRecords:
    """A monthly 24/7 file: its device-days grouped by local day, one record per day."""
    found = MemberRecords(heart_rate.STREAM)
    document = _read_member(archive, member, found, state)
    if document is None:
        return found
    by_day: dict[date, list[dict[str, Any]]] = {}
    try:
        entries = heart_rate.device_days(document)
    except RecordError as error:
        found.rejects.append(quarantine_file(found.stream, FileProblem(member.name, error.reason)))
        return found
    for entry in entries:
        try:
            by_day.setdefault(heart_rate.day_of(entry), []).append(entry)
        except RecordError as error:
            found.rejects.append(quarantine_record(found.stream, member.name, error, _without_samples(entry)))
    for day, day_entries in sorted(by_day.items()):
        try:
            found.records.append(heart_rate.heart_rate_record(day, day_entries, member.name))
        except RecordError as error:
            found.rejects.append(quarantine_record(found.stream, member.name, error, day_entries))
    return found


def _without_samples(entry: Any) -> Any:
    return {k: v for k, v in entry.items() if k != "samples"} if isinstance(entry, dict) else entry


def _add(
    found: MemberRecords, member: str, document: Any, to_record: Callable[[Any, str], RawRecord]
) -> RawRecord | None:
    try:
        record = to_record(document, member)
    except RecordError as error:
        found.rejects.append(quarantine_record(found.stream, member, error, sessions.summary_of(document)))
        return None
    found.records.append(record)
    return record


def _join_sleep(
    results: dict[date, tuple[dict[str, Any], str]], scores: dict[date, tuple[dict[str, Any], str]]
) -> MemberRecords:
    joined = MemberRecords(sleep.STREAM)
    for night, (result, result_member) in sorted(results.items()):
        score, score_member = scores.get(night, (None, None))
        joined.records.append(sleep.sleep_record(result, score, result_member, score_member))
    for night, (score, score_member) in sorted(scores.items()):
        if night not in results:
            error = RecordError(
                "sleep score without a sleep result for the night", day=night, key=night.isoformat()
            )
            joined.rejects.append(quarantine_record(sleep.STREAM, score_member, error, score))
    return joined


def _last_per_key(records: list[RawRecord]) -> list[RawRecord]:
    """One record per key (Polar can export a session twice); the last in member-name order wins."""
    return list({record.key: record for record in records}.values())
