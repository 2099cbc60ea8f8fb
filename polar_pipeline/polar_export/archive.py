"""One export, zipped or unpacked: its members by basename, read one at a time, never extracted.

Member names can contain ':' (mid-2026 training-session names), which some file systems refuse, so a zip is
read in place. Families are recognised by the basename prefix, because entries may sit under a top folder.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any


class MemberError(Exception):
    """A member that cannot be read or parsed; ``reason`` says why (the caller adds the member name)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Member:
    """One file of the export: its path inside the archive (posix, as the zip names it) and its basename."""

    name: str

    @property
    def basename(self) -> str:
        return PurePosixPath(self.name).name


class ExportArchive:
    """The members of a zip or of an unpacked folder, sorted by name so both read in the same order."""

    def __init__(self, path: Path, zip_file: zipfile.ZipFile | None) -> None:
        self._root = path
        self._zip = zip_file

    def members(self) -> list[Member]:
        if self._zip is not None:
            names = [info.filename for info in self._zip.infolist() if not info.is_dir()]
        else:
            names = [p.relative_to(self._root).as_posix() for p in self._root.rglob("*") if p.is_file()]
        return [Member(name) for name in sorted(names)]

    def read_bytes(self, member: Member) -> bytes:
        """The member's bytes; a corrupt or unreadable member raises ``MemberError``."""
        try:
            if self._zip is not None:
                with self._zip.open(member.name) as stream:
                    return stream.read()
            return (self._root / member.name).read_bytes()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as error:
            raise MemberError(f"unreadable member ({type(error).__name__}: {error})") from error

    def read_json(self, member: Member) -> Any:
        """The member parsed as JSON with every NaN (bare token or ``"NaN"`` string) turned into None."""
        return parse_export_json(self.read_bytes(member))


@contextmanager
def open_export(path: str | Path) -> Iterator[ExportArchive]:
    """Open an export zip or unpacked folder; anything else is a ``ValueError`` before anything is read."""
    path = Path(path)
    if path.is_dir():
        yield ExportArchive(path, None)
        return
    if not (path.is_file() and zipfile.is_zipfile(path)):
        raise ValueError(f"{path}: not a Polar export (expected a .zip archive or an unpacked export folder)")
    with zipfile.ZipFile(path) as zip_file:
        yield ExportArchive(path, zip_file)


def _no_number(token: str) -> None:
    """``parse_constant`` hook: NaN, Infinity and -Infinity (sensor dropouts) become null."""
    return None


_HUGE_EXPONENTS = (re.compile(rb"e\+?[0-9]{3}"), re.compile(rb"E\+?[0-9]{3}"))
"""A float written with a three-digit exponent may be too large for a double (it parses as infinity). Two
patterns that start with a literal: Python's regex engine skips to a literal fast, not to a class."""


def _is_nan(value: Any) -> bool:
    return value == "NaN" if isinstance(value, str) else isinstance(value, float) and not math.isfinite(value)


def _nulls_for_nan(value: Any) -> Any:
    """``"NaN"`` strings and non-finite floats become None, in place: a 10 MB session is not copied."""
    if _is_nan(value):
        return None
    pending = [value]
    while pending:
        container = pending.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in items:
            if isinstance(item, (dict, list)):
                pending.append(item)
            elif _is_nan(item):
                container[key] = None
    return value


def parse_export_json(data: bytes) -> Any:
    """Lenient JSON: Polar writes bare ``NaN`` and ``"NaN"`` strings in numeric slots; both become None."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MemberError(f"not UTF-8 text ({error})") from error
    try:
        parsed = json.loads(text, parse_constant=_no_number)
    except json.JSONDecodeError as error:
        raise MemberError(f"not valid JSON (truncated or corrupt: {error})") from error
    # Walking a session's million values costs several times the parse: only walk a member that can hold
    # something to replace (bare NaN tokens are already None through parse_constant).
    return (
        _nulls_for_nan(parsed) if b'"NaN"' in data or any(p.search(data) for p in _HUGE_EXPONENTS) else parsed
    )
