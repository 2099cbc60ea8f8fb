"""Channel URLs: checked with Apprise, shown only redacted, and never let into a log line or a message.

A channel is an Apprise URL (``json://host:port/path``, ``mailto://user:pass@domain?smtp=…``, ``ntfy://…``,
…). Its secrets sit in every part of it: the user and password, the path (webhook tokens), the query (API
keys), and for many services the "host" itself (``tgram://<bot token>/…``). So a URL is shown as its scheme
and its host only when the host is a network address (an IP address, ``localhost`` or a dotted DNS name),
with every other part masked: ``json://127.0.0.1:8123/****``, ``mailto://****@example.com:2525/****``,
``tgram://****``.

Apprise logs what it loads and what fails, sometimes with parts of the URL (``u...p@…``, the request path),
and urllib3 logs the request line. A filter on those loggers rewrites every record with the secrets of the
URLs in use masked before any handler sees it (``contain_library_logs``, ``in_use``); failures reach our logs
and the delivery history only as ``scrub``-bed text.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_URL_CHARS = 2000
MASK = "****"
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ANY_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s'\"<>]+")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]{0,30}$")
MIN_SECRET_CHARS = 3
"""Parts of a URL shorter than this are not scrubbed from text on their own (they would mask every 'a')."""


class InvalidChannelUrl(ValueError):
    """A URL Apprise cannot notify; the message never repeats the URL."""


@dataclass(frozen=True)
class CheckedUrl:
    """A URL Apprise accepted, its scheme and the form that may be shown."""

    url: str
    scheme: str
    redacted: str
    attachments: bool
    """Whether the service takes attachments (the digest's chart)."""


def _shown_host(host: str) -> str | None:
    """The host when it is a network address rather than a token: an IP, ``localhost`` or a dotted name."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    host = host.lower()
    if host == "localhost":
        return host
    labels = host.split(".")
    if len(labels) >= 2 and all(_DNS_LABEL.fullmatch(label) for label in labels) and labels[-1].isalpha():
        return host
    return None


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` with every secret-bearing part masked (the module's docstring)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return MASK
    scheme = parts.scheme.lower() if _SCHEME.fullmatch(parts.scheme) else MASK
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a token where the port would be (tgram://123:abc/…)
        host, port = None, None
    shown = _shown_host(host) if host else None
    if shown is None:
        return f"{scheme}://{MASK}"
    user = f"{MASK}@" if parts.username or parts.password else ""
    where = f"[{shown}]" if ":" in shown else shown
    rest = f"/{MASK}" if parts.path.strip("/") or parts.query or parts.fragment else ""
    return f"{scheme}://{user}{where}{f':{port}' if port else ''}{rest}"


def secret_parts(url: str) -> list[str]:
    """Every part of ``url`` that may be secret (whole URL, user, password, path pieces, query values)."""
    found = [url]
    try:
        parts = urlsplit(url)
        found += [parts.netloc, parts.username or "", parts.password or "", parts.path, parts.query]
        found += [unquote(piece) for piece in parts.path.split("/")]
        found += [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]
        host = parts.hostname or ""
        if host and _shown_host(host) is None:
            found.append(host)
    except ValueError:
        pass
    unique = {part for part in found if len(part) >= MIN_SECRET_CHARS}
    return sorted(unique, key=len, reverse=True)  # longest first, so a part is masked before its pieces


def scrub(text: str, urls: Iterable[str] = ()) -> str:
    """``text`` with each of ``urls``' secret parts masked and any other URL in it redacted."""
    for url in urls:
        for part in secret_parts(url):
            text = text.replace(part, MASK)
    return _ANY_URL.sub(lambda match: redact_url(match.group(0)), text)


_lock = threading.Lock()
_active: dict[str, int] = {}
"""URLs in use now (being checked or sent to), each with its count of users: what records are scrubbed of."""
LIBRARY_LOGGERS = ("apprise", "urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry")
"""Apprise logs through one logger; requests' urllib3 logs the request path through these."""


class _Scrubbed(logging.Filter):
    """Rewrites each record of a library logger with the URLs in use (and any other URL) masked.

    A filter on the logger itself runs before every handler (Apprise's own capture, the root's, pytest's,
    Dagster's), so no handler ever sees the secret.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        with _lock:
            urls = list(_active)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = scrub(message, urls), None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def contain_library_logs() -> None:
    """Make sure every library logger that can see a channel URL scrubs its records (checked on each use,
    so a logging reconfiguration in between cannot undo it), and keep Apprise's chatter out of our logs."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _Scrubbed) for existing in logger.filters):
            logger.addFilter(_Scrubbed())
    apprise_logger = logging.getLogger("apprise")
    apprise_logger.propagate = False
    if not apprise_logger.handlers:
        apprise_logger.addHandler(logging.NullHandler())


@contextmanager
def in_use(url: str) -> Iterator[None]:
    """``url`` is being checked or sent to: library records are scrubbed of its secrets meanwhile."""
    contain_library_logs()
    with _lock:
        _active[url] = _active.get(url, 0) + 1
    try:
        yield
    finally:
        with _lock:
            _active[url] -= 1
            if not _active[url]:
                del _active[url]


def _known_schemes() -> frozenset[str]:
    """Every scheme this Apprise installation can notify."""
    contain_library_logs()
    import apprise

    manager: Any = apprise.NotificationManager
    return frozenset(str(scheme) for scheme in manager().schemas())


def instantiate(url: str) -> Any:
    """Apprise's plugin object for ``url``, or None when Apprise cannot use it (its logs scrubbed)."""
    from apprise import Apprise

    with in_use(url):
        return Apprise.instantiate(url, suppress_exceptions=True)


def check_channel_url(url: str) -> CheckedUrl:
    """Accept a URL Apprise can notify; ``InvalidChannelUrl`` says why not without repeating it."""
    url = url.strip()
    if not url:
        raise InvalidChannelUrl("the channel URL is empty")
    if len(url) > MAX_URL_CHARS:
        raise InvalidChannelUrl(f"the channel URL is longer than {MAX_URL_CHARS} characters")
    if not url.isprintable() or any(char.isspace() for char in url):
        raise InvalidChannelUrl("the channel URL contains spaces or control characters")
    scheme, separator, _ = url.partition("://")
    if not separator or not _SCHEME.fullmatch(scheme):
        raise InvalidChannelUrl(
            "not an Apprise URL: expected scheme://…, e.g. json://host:port/path, "
            "mailto://user:password@example.com, ntfy://topic (https://appriseit.com/services/)"
        )
    if scheme.lower() not in _known_schemes():
        raise InvalidChannelUrl(
            f"unknown notification scheme {scheme.lower()!r}: see https://appriseit.com/services/ for the "
            "services Apprise supports and their URL formats"
        )
    plugin = instantiate(url)
    if plugin is None:
        raise InvalidChannelUrl(
            f"Apprise cannot use this {scheme.lower()}:// URL: a part it needs is missing or malformed "
            "(see the service's URL format at https://appriseit.com/services/)"
        )
    return CheckedUrl(
        url=url,
        scheme=scheme.lower(),
        redacted=redact_url(url),
        attachments=bool(getattr(plugin, "attachment_support", False)),
    )
