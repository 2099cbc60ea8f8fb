"""GET /api/v1/users/{user_id}/insights: polar-flow-server's unified insights from precomputed rows.

Two queries on the usual path (``polar_api.read.insights``); the answer is then kept for the snapshot
generation (``polar_api.response_cache``), so ``generated_at`` is when it was first computed from that
generation. A known user whose analytics have not run yet gets the empty shape (status ``unavailable``), an
unknown user 404.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from polar_api.deps import SnapshotCursor, UserId, require_user
from polar_api.read.insights import Insights, empty_insights, insights

router = APIRouter(tags=["insights"])


@router.get("/users/{user_id}/insights")
def get_insights(user_id: UserId, cursor: SnapshotCursor) -> Insights:
    """Observations, suggestions, baselines, patterns and anomalies of the user's latest day."""
    now = datetime.now(UTC)
    found = insights(cursor, user_id, now)
    if found is None:
        require_user(cursor, user_id)
        return empty_insights(user_id, now)
    return found
