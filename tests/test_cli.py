"""``polar-flow``'s arguments are all checked before anything starts; ``backfill``; progress on a terminal."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from polar_pipeline import cli, cli_args
from polar_pipeline.operations import SyncOutcome
from polar_pipeline.orchestration.partitions import user_day_key
from polar_pipeline.progress import RunProgress, execute_watched, wanted
from polar_pipeline.simulator.config import FaultConfig
from polar_pipeline.simulator.personas import PERSONA_TABLE
from polar_pipeline.warehouse.snapshot import read_pointer
from tests.conftest import TEST_HISTORY_START, Pipeline

POLAR_FLOW = str(Path(sys.executable).parent / "polar-flow")
STEP_LINE = re.compile(
    r"\[(?P<n>[ \d]+)/(?P<total>\d+)\] (?P<step>\S+) +(?P<outcome>ok|FAILED|skipped) +\d+\.\d s"
    r"(?:  (?P<detail>.+))?"
)

BAD_ARGUMENTS: list[tuple[list[str], str]] = [
    (["simulator", "--users", "-1"], "argument --users: expected an integer >= 1, got '-1'"),
    (["simulator", "--users", "0"], "argument --users: expected an integer >= 1, got '0'"),
    (["simulator", "--port", "0"], "argument --port: expected an integer in 1..65535, got '0'"),
    (["simulator", "--port", "65536"], "argument --port: expected an integer in 1..65535, got '65536'"),
    (["simulator", "--port", "http"], "argument --port: expected an integer in 1..65535, got 'http'"),
    (["simulator", "--seed", "1.5"], "argument --seed: expected an integer, got '1.5'"),
    (["simulator", "--history-days", "0"], "argument --history-days: expected an integer >= 1, got '0'"),
    (
        ["simulator", "--today", "2026-13-45"],
        "argument --today: expected a date YYYY-MM-DD, got '2026-13-45' (month must be in 1..12)",
    ),
    (["simulator", "--today", "20260301"], "argument --today: expected a date YYYY-MM-DD, got '20260301'"),
    (
        ["simulator", "--faults", '{"nope": 1}'],
        "argument --faults: unknown fault field 'nope'; the fields are",
    ),
    (
        ["simulator", "--faults", "[0.1]"],
        "argument --faults: expected a JSON object of fault fields, got list",
    ),
    (
        ["simulator", "--faults", "rate=1"],
        "argument --faults: expected a JSON object, got 'rate=1' (Expecting",
    ),
    (["simulator", "--faults", '{"slow_rate": -1}'], "argument --faults: slow_rate must not be negative"),
    (["simulator", "--faults", '{"retry_after": 1}'], "argument --faults: retry_after must be a boolean"),
    (
        ["simulator", "--personas", "endurance_athlete,couch_potato"],
        "argument --personas: expected comma-separated persona names from endurance_athlete, ",
    ),
    (["sync", "--days", "-5"], "argument --days: expected an integer in 1..3660, got '-5'"),
    (["sync", "--days", "3661"], "argument --days: expected an integer in 1..3660, got '3661'"),
    (
        ["sync", "--until", "2026-13-45"],
        "argument --until: expected a date YYYY-MM-DD, got '2026-13-45' (month must be in 1..12)",
    ),
    (["sync", "--until", "2026-03-02"], "argument --until: 2026-03-02 is after today (2026-03-01)"),
    (
        ["sync", "--days", "3000"],
        f"argument --days: the days 2017-12-14..2026-03-01 start before the first day of the day axis "
        f"({TEST_HISTORY_START})",
    ),
    (["sync", "--user", "a|b"], "argument --user: invalid user id 'a|b'"),
    (
        ["backfill", "--user", "u1", "--from", "2026-02-10", "--to", "2026-02-01"],
        "argument --from: 2026-02-10 is after --to 2026-02-01",
    ),
    (
        ["backfill", "--user", "u1", "--from", "2026-02-27", "--to", "2026-03-02"],
        "argument --to: 2026-03-02 is after today (2026-03-01)",
    ),
    (
        ["backfill", "--user", "u1", "--from", "2023-12-31", "--to", "2024-01-05"],
        f"argument --from: the days 2023-12-31..2024-01-05 start before the first day of the day axis "
        f"({TEST_HISTORY_START})",
    ),
    (
        ["backfill", "--user", "u1", "--from", "2026-02-30", "--to", "2026-03-01"],
        "argument --from: expected a date YYYY-MM-DD, got '2026-02-30' (day is out of range for month)",
    ),
    (
        ["backfill", "--from", "2026-02-01", "--to", "2026-02-02"],
        "the following arguments are required: --user",
    ),
    (["api", "--port", "70000"], "argument --port: expected an integer in 1..65535, got '70000'"),
    (["api", "--workers", "0"], "argument --workers: expected an integer in 1..64, got '0'"),
    (["api", "--workers", "65"], "argument --workers: expected an integer in 1..64, got '65'"),
    (["dev", "--port", "-1"], "argument --port: expected an integer in 1..65535, got '-1'"),
    (["keys", "create", "--admin", "--rate-limit", "0"], "argument --rate-limit: expected an integer >= 1"),
    (["keys", "list", "--user", "a b"], "argument --user: invalid user id 'a b'"),
    (["users", "add", "--user", "a|b", "--token", "t"], "argument --user: invalid user id 'a|b'"),
    (["users", "add", "--user", "u1", "--token", " "], "argument --token: expected a non-empty value"),
    (["users", "set-zone", "--user", "u1", "Mars/Base"], "argument zone: unknown time zone 'Mars/Base'"),
    (["sql", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Whatever a command would start (a server, a run, a publish, a process, a query), recorded instead."""
    import uvicorn

    from polar_pipeline import operations, sql_shell

    calls: list[str] = []
    for owner, name in (
        (uvicorn, "run"),
        (operations, "sync"),
        (operations, "publish"),
        (operations, "add_user"),
        (subprocess, "call"),
        (sql_shell, "main"),
    ):
        monkeypatch.setattr(owner, name, lambda *_a, _name=name, **_k: calls.append(_name))
    return calls


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_a_bad_argument_exits_2_naming_it_and_starts_nothing(
    argv: list[str], message: str, started: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    command = " ".join(argv[:2] if argv[0] in ("keys", "users") else argv[:1])
    assert err.strip().splitlines()[-1].startswith(f"polar-flow {command}: error: {message}"), err
    assert "Traceback" not in err
    assert started == []


def test_the_real_executable_refuses_before_starting_anything() -> None:
    """``simulator --users -1`` used to serve a simulator with -1 users; now it exits 2 at once."""
    for argv, argument in (
        (["simulator", "--users", "-1", "--port", "1"], "argument --users"),
        (["sync", "--until", "2026-13-45"], "argument --until"),
    ):
        result = subprocess.run([POLAR_FLOW, *argv], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result
        assert result.stdout == ""  # the simulator announces itself on stdout when it starts
        assert f"{argument}: " in result.stderr and "Traceback" not in result.stderr


def test_good_arguments_arrive_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    import polar_pipeline.simulator as simulator

    configs: list[Any] = []
    monkeypatch.setattr(simulator, "create_app", lambda config: configs.append(config))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: configs.append(kwargs["port"]))
    argv = [
        "simulator",
        "--users", "2", "--port", "9001", "--seed", "-3", "--today", "2026-02-01", "--history-days", "10",
        "--faults", '{"slow_rate": 1, "short_limit": 7, "retry_after": false}',
        "--personas", "helsinki_night_owl, sleep_neutral",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    config, port = configs
    assert (config.users, config.seed, config.today, config.history_days, port) == (
        2, -3, date(2026, 2, 1), 10, 9001
    )  # fmt: skip
    assert config.faults == FaultConfig(slow_rate=1.0, short_limit=7, retry_after=False)
    assert isinstance(config.faults.slow_rate, float)
    assert config.personas == ("helsinki_night_owl", "sleep_neutral")


def test_sync_and_backfill_hand_their_range_and_progress_to_one_sync(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from polar_pipeline import operations

    calls: list[tuple[Any, dict[str, Any]]] = []

    def fake_sync(settings: Any, users: Any, **kwargs: Any) -> SyncOutcome:
        calls.append((users, kwargs))
        return SyncOutcome("r1", True, ("u1",), date(2026, 2, 20), date(2026, 2, 22), 3)

    monkeypatch.setattr(operations, "sync", fake_sync)
    monkeypatch.setattr(operations, "publish", lambda settings: True)
    assert (
        cli.main(["backfill", "--user", "u1", "--user", "u2", "--from", "2026-02-20", "--to", "2026-02-22"])
        == 0
    )
    assert cli.main(["sync", "--days", "3", "--no-publish", "--progress"]) == 0
    (backfill_users, backfill), (sync_users, synced) = calls
    assert backfill_users == ["u1", "u2"]
    assert (backfill["first_day"], backfill["until"], backfill["days"]) == (
        date(2026, 2, 20),
        date(2026, 2, 22),
        None,
    )
    assert backfill["progress"] is None  # stderr is captured here, not a terminal
    assert sync_users is None and (synced["days"], synced["first_day"], synced["until"]) == (3, None, None)
    assert isinstance(synced["progress"], RunProgress)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "run r1: success for u1 days 2026-02-20..2026-02-22 (3 partitions)",
        "published serving snapshot",
        "run r1: success for u1 days 2026-02-20..2026-02-22 (3 partitions)",
    ]


def test_progress_shows_only_on_a_terminal_unless_told() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not wanted(None, io.StringIO()) and wanted(None, Terminal())
    assert wanted(True, io.StringIO()) and not wanted(False, Terminal())


def test_the_validators_know_every_persona_the_simulator_has() -> None:
    assert set(cli_args.known_personas()) == set(PERSONA_TABLE)


def test_progress_names_each_finished_step_and_sums_up_a_failure() -> None:
    """A small real job: two steps succeed, one fails with its own error, the one after it never runs."""

    @dg.asset(key=["marts", "first"])
    def first() -> None:
        pass

    @dg.asset(key=["marts", "second"], deps=[first])
    def second() -> None:
        raise ValueError("no rows for the slice\nsecond line")

    @dg.asset(key=["analytics", "third"], deps=[second])
    def third() -> None:
        pass

    @dg.asset(key="loose")
    def loose() -> None:
        pass

    job = dg.Definitions(
        assets=[first, second, third, loose], jobs=[dg.define_asset_job("tiny", selection="*")]
    ).resolve_job_def("tiny")
    stream = io.StringIO()
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        result = execute_watched(job, instance=instance, listener=RunProgress(stream), run_config=quiet)
    assert not result.success
    *steps, summary = stream.getvalue().splitlines()
    finished = [STEP_LINE.fullmatch(line) for line in steps]
    assert all(finished), steps
    assert [match.group("n", "total") for match in finished if match] == [("1", "4"), ("2", "4"), ("3", "4")]
    outcomes = {match["step"]: (match["outcome"], match["detail"]) for match in finished if match}
    assert outcomes == {
        "marts/first": ("ok", None),
        "loose": ("ok", None),
        "marts/second": ("FAILED", "ValueError: no rows for the slice"),  # the asset's error, first line
    }
    assert steps[2].startswith("[3/4] marts/second")  # its upstream finished first
    assert summary.startswith("tiny: FAILED, 4 steps: 2 ok, 1 failed (marts/second), 1 not run in ")


def test_backfill_rebuilds_exactly_its_days_in_one_run_and_publishes(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    user, other = pipeline.add_users(2)
    first_day, last_day = date(2026, 2, 20), date(2026, 2, 22)
    with pytest.raises(SystemExit) as unknown:
        cli.main(["backfill", "--user", "nobody", "--from", "2026-02-20", "--to", "2026-02-22"])
    assert unknown.value.code == 2 and "argument --user: unknown user(s) nobody" in capsys.readouterr().err
    assert pipeline.instance.get_runs() == []

    argv = [
        "backfill",
        "--user",
        user,
        "--from",
        first_day.isoformat(),
        "--to",
        last_day.isoformat(),
        "--progress",
    ]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    run_line, published = captured.out.strip().splitlines()[-2:]
    assert run_line.endswith(f": success for {user} days 2026-02-20..2026-02-22 (3 partitions)")
    assert published == "published serving snapshot"

    (run,) = pipeline.instance.get_runs(filters=dg.RunsFilter(job_name="pipeline_job"))
    assert run_line.startswith(f"run {run.run_id}: ")
    assert run.tags["dagster/asset_partition_range_start"] == user_day_key(user, first_day)
    assert run.tags["dagster/asset_partition_range_end"] == user_day_key(user, last_day)

    # The marts hold exactly the range's days for this user, and nothing for the other one; their steps
    # are the raw activity payloads' own (read here with json, not through the SQL models).
    marts = dict(pipeline.query("SELECT day, steps FROM marts.daily_metrics WHERE user_id = ?", [user]))
    assert sorted(marts) == [first_day, date(2026, 2, 21), last_day]
    assert pipeline.query("SELECT count(*) FROM marts.daily_metrics WHERE user_id = ?", [other]) == [(0,)]
    payloads = pipeline.query(
        "SELECT day, payload::VARCHAR FROM raw.activity WHERE user_id = ? AND day BETWEEN ? AND ?",
        [user, first_day, last_day],
    )
    assert len(payloads) == 3
    assert {day: json.loads(payload)["steps"] for day, payload in payloads} == marts

    info = read_pointer(pipeline.settings.snapshots_dir)
    assert info is not None
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        served = con.execute(
            "SELECT DISTINCT day FROM marts.daily_metrics WHERE user_id = ? ORDER BY day", [user]
        )
        assert [day for (day,) in served.fetchall()] == sorted(marts)
    finally:
        con.close()

    # One progress line per step of the job, every one ok, then the summary.
    steps = [match for line in captured.err.splitlines() if (match := STEP_LINE.fullmatch(line))]
    planned = pipeline.instance.get_execution_plan_snapshot(str(run.execution_plan_snapshot_id))
    total = len(planned.step_keys_to_execute)
    assert [match.group("n", "total") for match in steps] == [
        (f"{n:>2}", str(total)) for n in range(1, total + 1)
    ]
    assert {match["step"] for match in steps} >= {"raw_sleep", "marts/daily_metrics", "analytics/insights"}
    assert len({match["step"] for match in steps}) == total
    assert {match["outcome"] for match in steps} == {"ok"}
    assert f"pipeline_job: success, {total} steps: {total} ok in " in captured.err


def test_destructive_commands_ask_first_and_do_nothing_without_a_yes(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a terminal and without --yes, `users delete` and `restore` refuse and change nothing."""
    (user,) = pipeline.add_users(1)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert cli.main(["users", "delete", "--user", user]) == 1
    err = capsys.readouterr().err
    assert f"Delete user {user} for good?" in err and "pass --yes" in err
    assert user in pipeline.instance.get_dynamic_partitions("users")
    # A folder that is no backup: a clear error naming the problem, exit 1, the home untouched.
    assert cli.main(["restore", str(pipeline.settings.home_dir), "--yes"]) == 1
    assert "no manifest.json" in capsys.readouterr().err
    # With --yes the user goes: de-registered at the simulator, partition removed.
    assert cli.main(["users", "delete", "--user", user, "--yes"]) == 0
    assert user not in pipeline.instance.get_dynamic_partitions("users")
    account = next(a for a in pipeline.sim("GET", "/sim/users") if str(a["x_user_id"]) == user)
    assert account["registered"] is False
