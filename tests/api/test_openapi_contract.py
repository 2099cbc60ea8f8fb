"""Schemathesis against /openapi.json: generated requests to every operation, no 5xx, answers as documented.

Each generated case is sent twice: as generated (random user ids, dates, metrics: mostly 4xx, which must be
documented and well-formed) and with the user id replaced by a served user's (so the 200 answers, with real
data, are checked against their response models too).
"""

from __future__ import annotations

from collections import Counter

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.support.served import Served

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


MIN_OPERATIONS = 1
"""Fewer operations than this in the schema means the document, not the API, broke."""


def test_every_operation_answers_within_its_schema(served: Served, api: httpx.Client) -> None:
    base_url = str(api.base_url).rstrip("/")
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= MIN_OPERATIONS, [op.label for op in operations]
    sent: Counter[str] = Counter()

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base_url, headers=served.headers(), checks=CHECKS)
            sent[case.operation.label] += 1
            if "user_id" in (case.path_parameters or {}):
                case.path_parameters["user_id"] = served.users[0]
                case.call_and_validate(base_url=base_url, headers=served.headers(), checks=CHECKS)

        exercise()
    assert set(sent) == {op.label for op in operations}, "an operation got no request"
