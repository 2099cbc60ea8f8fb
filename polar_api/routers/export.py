"""GET /api/v1/users/{user_id}/export/summary and export/{sleep,activity,recharge,cardio-load}.csv.

The files are built in ``polar_api.read.export`` from the list routes' own read functions.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from polar_api.deps import Days, SnapshotCursor, UserId, require_user, user_today, window_start
from polar_api.read.export import CSV_EXPORTS, CsvExport, ExportSummary, export_summary

router = APIRouter(tags=["export"])


class CsvResponse(Response):
    media_type = "text/csv"


@router.get("/users/{user_id}/export/summary")
def get_export_summary(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
) -> ExportSummary:
    """How many records of each kind the user has on the local dates today - days ... today."""
    require_user(cursor, user_id)
    since, until = window_start(request, cursor, user_id, days), user_today(request, cursor, user_id)
    return export_summary(cursor, user_id, days, since, until)


def _csv_route(route: str, export: CsvExport) -> None:
    """Registers export/<route>.csv; one function per file so each has its own OpenAPI entry."""

    def download(
        request: Request, response: Response, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
    ) -> CsvResponse:
        require_user(cursor, user_id)
        since, until = window_start(request, cursor, user_id, days), user_today(request, cursor, user_id)
        return CsvResponse(
            content=export.build(cursor, user_id, since, until),
            headers={
                # A returned response does not get the dependencies' headers (the generation read).
                **response.headers,
                "Content-Disposition": f"attachment; filename={export.filename(days)}",
            },
        )

    download.__name__ = f"export_{export.name}_csv"
    download.__doc__ = (
        f"The {route} rows of the local dates today - days ... today as CSV, oldest first, in "
        f"`{export.name}_<days>days.csv`: an empty cell is a missing value, 0 is a real zero."
    )
    responses: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "a CSV file with a header row",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    }
    router.get(f"/users/{{user_id}}/export/{route}.csv", response_class=CsvResponse, responses=responses)(
        download
    )


for _route, _export in CSV_EXPORTS.items():
    _csv_route(_route, _export)
