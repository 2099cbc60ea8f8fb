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


Fetch = Callable[[AccessLinkClient, str, date, date], FetchResult[Any]]
"""How the client fetches a stream's day range: ``fetch(client, access_token, first_day, last_day)``."""


@dataclass(frozen=True)
class RawStream:
    """One AccessLink stream: its raw table (``raw.<stream>``) and how the client fetches a day range.

    ``companions`` are streams the same raw asset fetches and stores after this one, each in its own raw
    table and under its own quarantine stream name. Dagster's bookkeeping per asset partition is the
    pipeline's main cost, so small daily streams ride along with an existing asset instead of adding one.
    """

    stream: str
    description: str
    fetch: Fetch
    companions: tuple[RawStream, ...] = ()

    @property
    def streams(self) -> tuple[RawStream, ...]:
        """This stream and its companions, in fetch order."""
        return (self, *self.companions)


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
        companions=(
            RawStream(
                "continuous_heart_rate",
                "Continuous heart rate from AccessLink (/v3/users/continuous-heart-rate), one row per user "
                "and day.",
                lambda client, token, first, last: client.fetch_continuous_hr(token, first, last),
            ),
            RawStream(
                "cardio_load",
                "Polar's daily cardio load, strain and tolerance (/v3/users/cardio-load), one row per user "
                "and day.",
                lambda client, token, first, last: client.fetch_cardio_load(token, first, last),
            ),
        ),
    ),
    RawStream(
        "exercises",
        "Workouts from AccessLink (/v3/exercises) with zones and samples, one row per user and exercise id.",
        lambda client, token, first, last: client.fetch_exercises(token, first, last),
    ),
)
"""One entry per raw asset (``raw_<stream>``); companions are stored by their parent's asset."""

ALL_RAW_STREAMS: tuple[RawStream, ...] = tuple(stream for parent in RAW_STREAMS for stream in parent.streams)
"""Every stream kept in ``raw.*``, companions included: what a collector outside Dagster fetches."""


def asset_stream_of(stream: str) -> RawStream:
    """The ``RAW_STREAMS`` entry whose asset writes ``raw.<stream>``: itself, or a companion's parent."""
    for parent in RAW_STREAMS:
        if any(member.stream == stream for member in parent.streams):
            return parent
    raise KeyError(f"no raw asset writes raw.{stream}")


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
