"""The account side: physical information, the registered user object and the OAuth token grant."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from polar_pipeline.accesslink.parsing import (
    HEART_RATE_RANGE,
    Fields,
    aware_datetime,
    calendar_date,
    duration_seconds,
    identifier,
    integer,
    number,
    text,
)
from polar_pipeline.accesslink.records.base import Record


@dataclass(frozen=True, kw_only=True)
class PhysicalInfo(Record):
    """Physical information, transactional kebab form or the 2026 snake ``/v3/users/physical-info``.

    ``key`` is the entry id (transactional) or its ``created`` timestamp; ``day`` the UTC day of ``created``.
    """

    created: datetime
    modified: datetime | None
    weight_kg: float | None
    height_cm: float | None
    maximum_heart_rate: int | None
    resting_heart_rate: int | None
    aerobic_threshold: int | None
    anaerobic_threshold: int | None
    vo2_max: int | None
    weight_source: str | None
    birthday: date | None
    gender: str | None
    training_background: str | None
    typical_day: str | None
    sleep_goal_seconds: float | None

    @classmethod
    def from_json(cls, obj: object) -> PhysicalInfo:
        f = Fields(obj)
        created = f.req("created", aware_datetime)
        entry_id = f.opt("id", identifier)
        bpm = integer(*HEART_RATE_RANGE)
        return cls(
            key=entry_id or created.isoformat(),
            day=created.astimezone(UTC).date(),
            payload=f.obj,
            created=created,
            modified=f.opt("modified", aware_datetime),
            weight_kg=f.opt("weight", number(0.5, 700)),
            height_cm=f.opt("height", number(20, 300)),
            maximum_heart_rate=f.opt("maximum_heart_rate", bpm),
            resting_heart_rate=f.opt("resting_heart_rate", bpm),
            aerobic_threshold=f.opt("aerobic_threshold", bpm),
            anaerobic_threshold=f.opt("anaerobic_threshold", bpm),
            vo2_max=f.opt("vo2_max", integer(1, 120)),
            weight_source=f.opt("weight_source", text),
            birthday=f.opt("birthday", calendar_date),
            gender=f.opt("gender", text),
            training_background=f.opt("training_background", text),
            typical_day=f.opt("typical_day", text),
            sleep_goal_seconds=f.opt("sleep_goal", duration_seconds),
        )


@dataclass(frozen=True, kw_only=True)
class PolarUser:
    """``/v3/users`` user object (kebab keys); ``extra_info`` maps each ``name`` to its ``value``."""

    polar_user_id: int
    member_id: str | None
    registration_date: datetime | None
    first_name: str | None
    last_name: str | None
    birthdate: date | None
    gender: str | None
    weight_kg: float | None
    height_cm: float | None
    extra_info: dict[str, str]
    payload: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, obj: object) -> PolarUser:
        f = Fields(obj)
        return cls(
            polar_user_id=f.req("polar_user_id", integer(0)),
            member_id=f.opt("member_id", text),
            registration_date=f.opt("registration_date", aware_datetime),
            first_name=f.opt("first_name", text),
            last_name=f.opt("last_name", text),
            birthdate=f.opt("birthdate", calendar_date),
            gender=f.opt("gender", text),
            weight_kg=f.opt("weight", number(0)),
            height_cm=f.opt("height", number(0)),
            extra_info={item.req("name", text): item.req("value", text) for item in f.items("extra_info")},
            payload=f.obj,
        )


@dataclass(frozen=True, kw_only=True)
class TokenGrant:
    """Token endpoint answer. v3 has no refresh token; the access token lives until revoked."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in_seconds: int | None
    x_user_id: int

    @classmethod
    def from_json(cls, obj: object) -> TokenGrant:
        f = Fields(obj)
        return cls(
            access_token=f.req("access_token", text),
            token_type=f.opt("token_type", text) or "bearer",
            expires_in_seconds=f.opt("expires_in", integer(0)),
            x_user_id=f.req("x_user_id", integer(0)),
        )
