"""Errors of the AccessLink client, one class per decision the caller has to make.

A sync job catches ``ReauthorizationRequired`` and ``NotRegistered`` to flag the connection,
``TransientError`` to try again later, and treats ``PayloadError`` as a record for quarantine.
"""

from __future__ import annotations


class AccessLinkError(Exception):
    """Any failure talking to AccessLink; ``status_code`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ReauthorizationRequired(AccessLinkError):
    """401: the token is revoked or invalid. v3 has no refresh grant, so the user must re-authorize."""


class NotRegistered(AccessLinkError):
    """403: the user is not registered for this client (``POST /v3/users``) or consent is missing."""


class InvalidGrant(AccessLinkError):
    """400 ``invalid_grant`` at the token endpoint: code reused, expired, or ``redirect_uri`` mismatch."""


class TransientError(AccessLinkError):
    """Retries exhausted on 5xx, 429, timeouts, connection errors or malformed bodies; try again later."""


class PayloadError(AccessLinkError, ValueError):
    """One record does not match the wire format; ``reason`` names the field and the offending value."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
