"""GET /api/v1/users/{user_id}/patterns and patterns/{name}, from the analytics.patterns view.

An unknown name is 404 listing the valid names; a valid name with no row for the user (their analytics have
not run yet) is 404 "not computed for this user yet".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from polar_api.deps import SnapshotCursor, UserId, require_user
from polar_api.errors import not_found
from polar_api.read.patterns import (
    PATTERN_NAMES,
    Pattern,
    PatternNotComputed,
    UnknownPattern,
    latest_patterns,
    pattern_named,
)

PatternName = Annotated[str, Path(max_length=100, description=f"one of {', '.join(PATTERN_NAMES)}")]
PATTERN_NOT_FOUND = not_found(
    "unknown user, unknown pattern name, or a pattern not computed for the user yet"
)

router = APIRouter(tags=["patterns"])


@router.get("/users/{user_id}/patterns")
def list_patterns(user_id: UserId, cursor: SnapshotCursor) -> list[Pattern]:
    """The user's patterns of their latest day; [] before the analytics have run."""
    found = _latest(cursor, user_id)
    if not found:
        require_user(cursor, user_id)
    return found


def _latest(cursor: SnapshotCursor, user_id: str) -> list[Pattern]:
    """The view costs far more than a table lookup: read once per user and snapshot generation."""
    return latest_patterns(cursor, user_id)


@router.get("/users/{user_id}/patterns/{name}", responses=PATTERN_NOT_FOUND)
def get_pattern(user_id: UserId, name: PatternName, cursor: SnapshotCursor) -> Pattern:
    """One pattern of the user's latest day."""
    try:
        return pattern_named(_latest(cursor, user_id), name, user_id)
    except UnknownPattern as unknown:
        raise HTTPException(status_code=404, detail=str(unknown)) from None
    except PatternNotComputed as missing:
        require_user(cursor, user_id)
        raise HTTPException(status_code=404, detail=str(missing)) from None
