"""Who may read what: API keys on every /api/v1 route (to be filled in)."""

from __future__ import annotations

from fastapi import Request


def authorize(request: Request) -> None:
    """Placeholder: lets every request through until key checks land."""
