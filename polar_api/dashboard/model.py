"""What one data call returns: everything a page shows, as plain values the browser lays out and draws.

The server decides what is shown (which series, their names, units and titles); ``static/dashboard.js``
only turns it into HTML and plotly traces. So a test can read the same JSON the page drew from, and every
chart's table view shows exactly the numbers its traces carry.

Missing data is ``null`` in a series, never 0: the JavaScript draws it as a gap (``connectgaps: false``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Tone = Literal["good", "bad", "warn", "neutral"]
Cell = str | int | float | bool | None

TraceKind = Literal["line", "markers", "bar", "band_low", "band_high", "heatmap"]
"""``band_low`` and ``band_high`` come in pairs: the area between them is shaded (a normal range)."""


class Card(BaseModel):
    """A headline fact: a short label, its value as text, and a line that explains it."""

    label: str
    value: str
    detail: str | None = None
    tone: Tone = "neutral"


class Message(BaseModel):
    """A sentence for a person (an observation or a suggestion), with the reason or context under it."""

    kind: Literal["observation", "suggestion"]
    tone: Tone
    priority: str
    text: str
    detail: str | None = None


class Trace(BaseModel):
    """One series of a chart. ``x`` is the chart's unless the trace has its own (markers on some days)."""

    name: str
    kind: TraceKind
    style: str = Field(description="a colour role the stylesheet of the charts knows (primary, band, …)")
    y: list[float | None] = Field(default_factory=list)
    x: list[str] | None = None
    text: list[str] | None = Field(default=None, description="hover text per point")
    z: list[list[float | None]] | None = Field(default=None, description="heatmap rows (one per ``rows``)")
    rows: list[str] | None = Field(default=None, description="heatmap row labels")
    unit: str = ""


class ReferenceBand(BaseModel):
    """A shaded horizontal range drawn behind the traces (a heuristic zone), with what it means."""

    y0: float
    y1: float
    label: str


class Chart(BaseModel):
    """One plotly chart: its title, axis titles with units, categories or days, and its traces."""

    id: str
    title: str
    summary: str = Field(description="one sentence on what the chart shows: its text alternative")
    x_title: str
    y_title: str
    x_kind: Literal["date", "category"] = "date"
    x: list[str]
    traces: list[Trace]
    horizontal: bool = False
    barmode: Literal["group", "stack"] = "group"
    y_range: tuple[float, float] | None = None
    reference: list[ReferenceBand] = Field(default_factory=list)


class Table(BaseModel):
    """A table that is not a chart's data (the anomalies, the quarantine, the correlations …)."""

    id: str
    caption: str
    columns: list[str]
    rows: list[list[Cell]]
    empty: str = "Nothing to show."


class SnapshotFacts(BaseModel):
    """Which serving generation answered, and how old it is."""

    generation: int
    published_at: datetime
    age_seconds: float


class PageData(BaseModel):
    """Everything one page shows for one user and range."""

    page: str
    title: str
    user_id: str
    range: str
    since: date
    until: date
    as_of: date | None = Field(description="the day the page's latest values describe")
    snapshot: SnapshotFacts
    cards: list[Card] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    charts: list[Chart] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
