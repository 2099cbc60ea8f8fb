"""GET /llms.txt: the project's docs for AI tools (generated at the repository root by `make docs`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from polar_pipeline.llms_txt import LLMS_TXT

router = APIRouter(tags=["system"])


@router.get("/llms.txt", response_class=PlainTextResponse)
def llms_txt() -> PlainTextResponse:
    """README, API, tables and methods in one text file (the llms.txt convention)."""
    if not LLMS_TXT.exists():
        return PlainTextResponse("llms.txt is not installed with this copy of polar-flow\n", status_code=404)
    return PlainTextResponse(LLMS_TXT.read_text())
