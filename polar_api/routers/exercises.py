"""GET /api/v1/users/{user_id}/exercises, exercises/{id}, exercises/{id}/samples (read.exercises)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request

from polar_api.deps import Days, SnapshotCursor, UserId, require_user, user_today, window_start
from polar_api.errors import not_found
from polar_api.read.exercises import (
    EXERCISE_ID_PATTERN,
    ExerciseDetail,
    ExerciseSamples,
    ExerciseSummary,
    exercise,
    exercise_samples,
    exercises,
)

ExerciseId = Annotated[
    str,
    Path(
        pattern=EXERCISE_ID_PATTERN.pattern,
        description="the workout's id from the list (Polar's): 1-64 letters, digits, '_' or '-'",
    ),
]
NOT_FOUND = not_found("unknown user or workout")

router = APIRouter(tags=["exercises"])


def _no_workout(cursor: SnapshotCursor, user_id: str, exercise_id: str) -> HTTPException:
    require_user(cursor, user_id)
    return HTTPException(status_code=404, detail=f"no exercise {exercise_id} for user {user_id}")


@router.get("/users/{user_id}/exercises")
def list_exercises(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
) -> list[ExerciseSummary]:
    """Workouts that started on the user's local dates today - days ... today, newest first."""
    since, until = window_start(request, cursor, user_id, days), user_today(request, cursor, user_id)
    workouts = exercises(cursor, user_id, since, until)
    if not workouts:
        require_user(cursor, user_id)
    return workouts


@router.get("/users/{user_id}/exercises/{exercise_id}", responses=NOT_FOUND)
def get_exercise(user_id: UserId, exercise_id: ExerciseId, cursor: SnapshotCursor) -> ExerciseDetail:
    """One workout with its heart-rate zones and loads."""
    workout = exercise(cursor, user_id, exercise_id)
    if workout is None:
        raise _no_workout(cursor, user_id, exercise_id)
    return workout


@router.get(
    "/users/{user_id}/exercises/{exercise_id}/samples",
    responses=not_found("unknown user or workout, or a workout without recorded series"),
)
def get_exercise_samples(user_id: UserId, exercise_id: ExerciseId, cursor: SnapshotCursor) -> ExerciseSamples:
    """A workout's recorded series (heart rate, speed, altitude, ...), one list of values per sample type."""
    recorded = exercise_samples(cursor, user_id, exercise_id)
    if recorded is None:
        raise _no_workout(cursor, user_id, exercise_id)
    if not recorded.samples:
        raise HTTPException(status_code=404, detail=f"exercise {exercise_id} has no recorded samples")
    return recorded
