"""Argument validators for ``polar-flow``: each turns the text given into a value, or says what is allowed.

Used as argparse ``type=`` functions, so a bad value stops the command before it does anything, with
argparse's own ``argument --x: …`` message and exit code 2. Checks that need several arguments or the
settings (a day range against today and the day axis) raise ``ArgumentProblem`` instead, which the CLI
reports the same way. Every command reuses these; none of them opens a store or starts anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from polar_pipeline.control_store import InvalidTimeZone, InvalidUserId, validate_time_zone, validate_user_id

if TYPE_CHECKING:
    from polar_pipeline.simulator.config import FaultConfig

MAX_SYNC_DAYS = 3660
"""About ten years: more than any AccessLink history, few enough that a typo (36600) is caught."""
MAX_API_WORKERS = 64
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class ArgumentProblem(Exception):
    """A value that passed its own validator but not a check across arguments or against the settings."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"argument {option}: {message}")
        self.option = option


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """A validator of whole numbers within ``low``..``high`` (either bound may be open)."""
    if low is not None and high is not None:
        allowed = f"an integer in {low}..{high}"
    elif low is not None:
        allowed = f"an integer >= {low}"
    elif high is not None:
        allowed = f"an integer <= {high}"
    else:
        allowed = "an integer"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")
        return value

    parse.__name__ = allowed  # what argparse would name the type in its own messages
    return parse


port = integer(1, 65535)
positive = integer(1)
sync_days = integer(1, MAX_SYNC_DAYS)
api_workers = integer(1, MAX_API_WORKERS)
seed = integer()


def iso_date(text: str) -> date:
    """A calendar date written YYYY-MM-DD (nothing else: ``20260301`` and ``2026-3-1`` are refused)."""
    if not _ISO_DATE.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}")
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r} ({exc})") from None


def user_id(text: str) -> str:
    """A user id the partitions and URLs can carry (``control_store.validate_user_id``)."""
    try:
        return validate_user_id(text)
    except InvalidUserId as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def time_zone(text: str) -> str:
    """An IANA time zone name this machine knows (``control_store.validate_time_zone``)."""
    try:
        return validate_time_zone(text)
    except InvalidTimeZone as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def nonempty(text: str) -> str:
    """Any text but the empty (or all-blank) one."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a non-empty value")
    return text


def fault_config(text: str) -> FaultConfig:
    """A JSON object of ``FaultConfig`` fields, each of the field's type (``FaultConfig.merged`` checks)."""
    from polar_pipeline.simulator.config import FaultConfig  # the simulator package: only when asked

    try:
        changes = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({exc})") from None
    if not isinstance(changes, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object of fault fields, got {type(changes).__name__} {text!r}"
        )
    fields = [field.name for field in dataclasses.fields(FaultConfig)]
    unknown = [key for key in changes if key not in fields]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fault field {unknown[0]!r}; the fields are {', '.join(fields)}"
        )
    try:
        return FaultConfig().merged(changes)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def known_personas() -> tuple[str, ...]:
    """The names ``SimulatorConfig`` accepts: the default cycle, then the opt-in personas."""
    from polar_pipeline.simulator.config import OPT_IN_PERSONAS, PERSONAS

    return (*PERSONAS, *OPT_IN_PERSONAS)


def personas(text: str) -> tuple[str, ...]:
    """A comma-separated cycle of persona names, each a default or an opt-in persona of the simulator."""
    known = known_personas()
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in known]
    if not text.strip() or unknown:
        got = f"unknown persona {unknown[0]!r}" if unknown and unknown[0] else f"got {text!r}"
        raise argparse.ArgumentTypeError(
            f"expected comma-separated persona names from {', '.join(known)}; {got}"
        )
    return names
