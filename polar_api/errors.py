"""The error answers every /api/v1 route may give, documented once for the OpenAPI schema.

FastAPI documents 200 and 422 itself; the others come from the auth guard (401, 403, 429) and from the read
layer (404). Each has the same body as FastAPI's ``HTTPException``: ``{"detail": "what went wrong"}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ApiError(BaseModel):
    """What went wrong, in a sentence that says what would have been accepted."""

    detail: str


def error_response(description: str) -> dict[str, Any]:
    # JSON named explicitly: a CSV route's other answers would otherwise be documented as text/csv.
    schema = {"$ref": "#/components/schemas/ApiError"}
    content = {"application/json": {"schema": schema}}
    return {"model": ApiError, "description": description, "content": content}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error_response("No API key, or an unknown or revoked one."),
    403: error_response("The key belongs to another user."),
    404: error_response("Unknown user, or no such record for this user."),
    429: error_response("Over the key's rate limit: retry after `Retry-After` seconds."),
}


def not_found(description: str) -> dict[int | str, dict[str, Any]]:
    """A route's own 404 documentation, when it says more than "unknown user" (documented for every route)."""
    return {404: error_response(description)}
