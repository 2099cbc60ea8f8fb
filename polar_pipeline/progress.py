"""Progress of an in-process Dagster run on a terminal: one line per finished step, then a summary.

A run executed in process (``execute_watched`` runs a job as ``execute_in_process`` does) reports every
event to its instance, which hands each one to the listeners registered for the run's id
(``DagsterInstance.add_event_listener``, how Dagster itself relays a step launcher's events).
``execute_watched`` registers a listener under a run id chosen before the run starts, so the listener sees
the run from its first event; ``RunProgress`` is such a listener. The plan arrives first, as one
``ASSET_MATERIALIZATION_PLANNED`` (or check-planned) event per asset and step, which gives the step count
and each step's asset name; then each step's start and end.

Nothing here changes what Dagster logs itself (the CLI keeps its console logger at INFO); the lines go to
the stream given, stderr by default, so a command's stdout stays what scripts read.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import dagster as dg

EventListener = Callable[[dg.EventLogEntry], object]
_PLANNED = {
    dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
}


def wanted(forced: bool | None, stream: TextIO | None = None) -> bool:
    """Show progress? ``--progress`` / ``--no-progress`` decide; otherwise only when ``stream`` is a TTY."""
    if forced is not None:
        return forced
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@dataclass(frozen=True)
class FinishedRun:
    """What a caller of ``execute_watched`` gets back: the run's id and whether it succeeded."""

    run_id: str
    success: bool


def execute_watched(
    job: dg.JobDefinition,
    *,
    instance: dg.DagsterInstance,
    listener: EventListener | None = None,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> FinishedRun:
    """What ``job.execute_in_process`` does (errors kept in the run, not raised), with ``listener`` given
    each event, and without keeping the events in memory.

    ``execute_in_process`` collects every event of the run into its result: a step over years of days emits
    a materialization per partition, so an import's rebuild held some 70 MB of events it never read. Here the
    same in-process execution is iterated instead. Every event is already in the instance's event log, which
    is where the UI, the sensors and the checks read them."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import (
        ExecuteRunWithPlanIterable,
        create_execution_plan,
        job_execution_iterator,
    )
    from dagster._core.execution.context_creation_job import (
        PlanOrchestrationContextManager,
        orchestration_context_event_generator,
    )

    run_id = str(uuid.uuid4())  # what Dagster would pick; chosen here so the listener is in place first
    if listener is not None:
        instance.add_event_listener(run_id, listener)
    in_process = job.as_ephemeral_job(resource_defs={}, input_values={})  # the in-process executor
    wrapped = InMemoryJob(in_process)
    config = dict(run_config or {})
    plan = create_execution_plan(
        wrapped, run_config=config, instance_ref=instance.get_ref() if instance.is_persistent else None
    )
    run = instance.create_run_for_job(
        job_def=in_process,
        run_config=config,
        tags={**in_process.run_tags, **(tags or {})},
        run_id=run_id,
        execution_plan=plan,
    )
    events = ExecuteRunWithPlanIterable(
        execution_plan=plan,
        iterator=job_execution_iterator,
        execution_context_manager=PlanOrchestrationContextManager(
            context_event_generator=orchestration_context_event_generator,
            job=wrapped,
            execution_plan=plan,
            dagster_run=run,
            instance=instance,
            run_config=config,
            executor_defs=None,
            output_capture=None,
            raise_on_error=False,
        ),
    )
    for _ in events:
        pass
    finished = instance.get_run_by_id(run_id)
    return FinishedRun(run_id, finished is not None and finished.status == dg.DagsterRunStatus.SUCCESS)


def first_error_line(error: Any) -> str:
    """The innermost cause's first line: the asset's own exception, not Dagster's wrapper around it."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    message = str(getattr(error, "message", "") or "").strip()
    return message.splitlines()[0] if message else "(no message)"


class RunProgress:
    """An event listener that writes ``[ 3/19] marts/daily_metrics  ok  1.2 s`` per finished step."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.labels: dict[str, str] = {}  # step key -> the asset(s) it materializes, in plan order
        self.started: dict[str, float] = {}
        self.finished: dict[str, str] = {}  # step key -> ok | FAILED | skipped
        self.run_started: float | None = None
        self.summary: str | None = None

    def __call__(self, entry: dg.EventLogEntry) -> None:
        event = entry.dagster_event
        if event is None:
            return  # a plain log line: Dagster's console logger shows those (or not)
        kind = event.event_type
        if kind in _PLANNED and event.step_key:
            self._plan(event)
        elif kind == dg.DagsterEventType.RUN_START:
            self.run_started = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_START and event.step_key:
            self.started[event.step_key] = entry.timestamp
            self.labels.setdefault(event.step_key, event.step_key)  # a step no asset planned (a plain op)
        elif kind == dg.DagsterEventType.STEP_SUCCESS and event.step_key:
            self._finish(event.step_key, "ok", entry.timestamp)
        elif kind == dg.DagsterEventType.STEP_FAILURE and event.step_key:
            error = getattr(event.event_specific_data, "error", None)
            self._finish(event.step_key, "FAILED", entry.timestamp, first_error_line(error))
        elif kind == dg.DagsterEventType.STEP_SKIPPED and event.step_key:
            self._finish(event.step_key, "skipped", entry.timestamp)
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            self._summarise(event.job_name, kind == dg.DagsterEventType.RUN_SUCCESS, entry.timestamp)

    def _plan(self, event: dg.DagsterEvent) -> None:
        step = str(event.step_key)
        asset_key = getattr(event.event_specific_data, "asset_key", None)
        name = asset_key.to_user_string() if isinstance(asset_key, dg.AssetKey) else step
        label = self.labels.get(step)
        if label is None or label == step:
            self.labels[step] = name
        elif name not in label.split(" + "):
            self.labels[step] = f"{label} + {name}"

    @property
    def total(self) -> int:
        return len(self.labels)

    def _finish(self, step: str, outcome: str, at: float, detail: str = "") -> None:
        self.labels.setdefault(step, step)
        self.finished[step] = outcome
        width = len(str(self.total))
        label_width = max(len(label) for label in self.labels.values())
        seconds = at - self.started[step] if step in self.started else 0.0
        line = (
            f"[{len(self.finished):>{width}}/{self.total}] {self.labels[step]:<{label_width}}  "
            f"{outcome:<6}  {seconds:.1f} s"
        )
        self._write(f"{line}  {detail}" if detail else line)

    def _summarise(self, job_name: str, success: bool, at: float) -> None:
        outcomes = list(self.finished.values())
        failed = [step for step, outcome in self.finished.items() if outcome == "FAILED"]
        counts = [f"{outcomes.count('ok')} ok"]
        if failed:
            counts.append(f"{len(failed)} failed ({', '.join(self.labels[step] for step in failed)})")
        if outcomes.count("skipped"):
            counts.append(f"{outcomes.count('skipped')} skipped")
        not_run = self.total - len(outcomes)
        if not_run:
            counts.append(f"{not_run} not run")
        took = f" in {at - self.run_started:.1f} s" if self.run_started is not None else ""
        self.summary = (
            f"{job_name}: {'success' if success else 'FAILED'}, {self.total} steps: {', '.join(counts)}{took}"
        )
        self._write(self.summary)

    def _write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
