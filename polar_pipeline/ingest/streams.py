"""The AccessLink streams kept in ``raw.*``: which client call fetches each, and how a fetch becomes a batch.

The raw assets, the benchmark and any other collector share this table, so a stream is added in one place.
Payloads are stored verbatim (JSON text) with the key and local day the client derived; records the client
rejected become quarantine rows with its reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from polar_pipeline.accesslink import AccessLinkClient, FetchResult
from polar_pipeline.warehouse.raw_store import QuarantineRecord, RawBatch, RawRecord

SOURCE = "accesslink"
"""The ``source`` column of rows this package writes."""


@dataclass(frozen=True)
class RawStream:
    """One AccessLink stream: its raw table (``raw.<stream>``) and how the client fetches a day range."""

    stream: str
    description: str
    fetch: Callable[[AccessLinkClient, str, date, date], FetchResult[Any]]


RAW_STREAMS: tuple[RawStream, ...] = (
    RawStream(
        "sleep",
        "Nightly sleep from AccessLink (/v3/users/sleep), one row per user and wake-up day, payload kept.",
        lambda client, token, first, last: client.fetch_sleep(token, first, last),
    ),
    RawStream(
        "nightly_recharge",
        "Nightly Recharge (overnight HRV, ANS charge) from AccessLink, one row per user and wake-up day.",
        lambda client, token, first, last: client.fetch_nightly_recharge(token, first, last),
    ),
    RawStream(
        "activity",
        "Daily activity summaries from AccessLink (/v3/users/activities), one row per user and local day.",
        lambda client, token, first, last: client.fetch_activity(token, first, last),
    ),
    RawStream(
        "exercises",
        "Workouts from AccessLink (/v3/exercises) with zones and samples, one row per user and exercise id.",
        lambda client, token, first, last: client.fetch_exercises(token, first, last),
    ),
)


def to_raw_batch(stream: str, result: FetchResult[Any]) -> RawBatch:
    """The client's records as raw rows (verbatim JSON) and its rejects as quarantine rows of ``stream``."""
    return RawBatch(
        records=[
            RawRecord(key=r.key, day=r.day, payload_json=json.dumps(r.payload, ensure_ascii=False))
            for r in result.records
        ],
        rejects=[QuarantineRecord(stream, r.day, r.key, r.payload, r.reason) for r in result.rejected],
        requests=result.requests,
    )
