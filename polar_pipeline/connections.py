"""Connecting a person's Polar account to a user id: AccessLink registration, and the token kept encrypted.

Registering (``POST /v3/users``, 409 when already registered) is what lets AccessLink serve the user's data.
The CLI (``polar-flow users add``) connects in one go: ``connect_user`` registers the token, then stores it.
The API only stores a token it is given (an HTTP request makes no AccessLink call); the ``sync_requests``
sensor registers it before the user's first sync (``register_stored_token``).

A user already connected to a Polar account keeps it: ``connect_user`` refuses a token that opens another
account, so the user's history is never continued with somebody else's data.

Neither the token nor the encryption key ever appears in a message or a log line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from polar_pipeline.accesslink import AccessLinkClient, NotRegistered
from polar_pipeline.control_store import (
    ControlStore,
    StoredUser,
    UnknownUser,
    load_or_create_key,
    validate_user_id,
)
from polar_pipeline.settings import Settings


class AccountMismatch(ValueError):
    """The token opens another Polar account than the one the user is connected to."""


def open_control_store(settings: Settings) -> ControlStore:
    """The control store of ``settings``, with the token encryption key (environment or key file)."""
    return ControlStore(
        settings.control_store_path, load_or_create_key(settings.key_file, settings.encryption_key)
    )


@contextmanager
def accesslink_client(
    settings: Settings, *, timeout: float = 30.0, max_retries: int = 6
) -> Iterator[AccessLinkClient]:
    with AccessLinkClient(
        settings.accesslink_url,
        token_url=settings.token_url,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        timeout=timeout,
        max_retries=max_retries,
    ) as client:
        yield client


def connect_user(settings: Settings, user_id: str, token: str) -> StoredUser:
    """Register ``token`` with AccessLink under ``user_id`` and store it encrypted (a new or rotated token).

    Raises the AccessLink client's errors (``ReauthorizationRequired`` for a rejected token,
    ``NotRegistered`` for missing consent, ``TransientError`` when AccessLink cannot be reached) and
    ``AccountMismatch``; nothing is stored then.
    """
    validate_user_id(user_id)
    store = open_control_store(settings)
    try:
        connected_to = store.get_user(user_id).polar_user_id
    except UnknownUser:
        connected_to = None
    with accesslink_client(settings) as client:
        if connected_to is None:
            registration = client.register_user(token, member_id=user_id)
            polar_user_id = registration.user.polar_user_id if registration.user else None
        else:
            polar_user_id = _same_account_registered(client, token, user_id, connected_to)
    return store.upsert_user(user_id, token, polar_user_id)


def register_stored_token(settings: Settings, user_id: str, *, timeout: float = 10.0) -> int | None:
    """Register the user's stored token with AccessLink; returns the Polar user id (None: registered before).

    For a token the API stored: 409 (already registered) is fine; the client's errors propagate
    (``ReauthorizationRequired``, ``NotRegistered``, ``TransientError``). Raises ``UnknownUser``.
    """
    store = open_control_store(settings)
    token = store.token_for(user_id)
    with accesslink_client(settings, timeout=timeout, max_retries=1) as client:
        registration = client.register_user(token, member_id=user_id)
    if registration.user is None:
        return None
    store.upsert_user(user_id, token, registration.user.polar_user_id)
    return registration.user.polar_user_id


def _same_account_registered(client: AccessLinkClient, token: str, user_id: str, connected_to: int) -> int:
    """Check that ``token`` opens Polar user ``connected_to``; registers it again if it was deregistered."""
    mismatch = AccountMismatch(
        f"the token opens another Polar account than the one user {user_id} is connected to "
        f"(Polar user {connected_to})"
    )
    try:
        if client.get_user(token, connected_to) is not None:
            return connected_to
    except NotRegistered:  # 403: that account exists and the token is somebody else's
        raise mismatch from None
    # No such user for this token: the same account, deregistered meanwhile, or another one altogether.
    registration = client.register_user(token, member_id=user_id)
    if registration.user is None or registration.user.polar_user_id != connected_to:
        raise mismatch
    return connected_to
