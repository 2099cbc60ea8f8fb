"""``polar-flow mcp`` over stdio: its arguments, a server for every user, and answers on old data."""

from __future__ import annotations

import subprocess
from datetime import timedelta

from tests.conftest import TEST_TODAY
from tests.mcp.support import POLAR_FLOW, error_text, stdio_environment, stdio_session
from tests.support.served import Served


def test_an_unknown_or_malformed_user_stops_the_command_before_it_serves(served: Served) -> None:
    env = stdio_environment(served.settings)
    for user, message in (("nobody", "unknown user 'nobody'"), ("no/such", "argument --user")):
        done = subprocess.run(
            [POLAR_FLOW, "mcp", "--user", user],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and done.stdout == "", done.stderr


def test_without_user_every_call_names_its_user(served: Served) -> None:
    with stdio_session(served.settings) as session:
        refused = session.call("get_activity", {})
        assert refused.is_error and "pass user_id" in error_text(refused)
        for user in served.users:
            answer = session.answer("get_activity", {"days": 3, "user_id": user})
            assert answer["user_id"] == user and answer["records"]


def test_old_data_is_called_stale_and_an_empty_window_is_called_empty(served: Served) -> None:
    """Nine days later (a frozen calendar), nothing has been synced since: every answer must say so."""
    later = TEST_TODAY + timedelta(days=9)
    user = served.users[0]
    newest = served.snapshot_query("SELECT max(day) FROM marts.daily_metrics WHERE user_id = ?", [user])[0][0]
    with stdio_session(served.settings, "--user", user, POLAR_TODAY=later.isoformat()) as session:
        recent = session.answer("get_sleep", {"days": 3})
        assert recent["records"] == [] and recent["user_today"] == later.isoformat()
        assert recent["latest_data_day"] is None and recent["newest_synced_day"] == newest.isoformat()
        note = recent["note"]
        assert f"no sleep for user {user} on the local dates {later - timedelta(days=3)} to {later}" in note
        lag = (later - newest).days
        assert f"stale: the user's newest synced data of any kind is from {newest}, {lag} days" in note
        older = session.answer("get_sleep", {"days": 30})
        assert older["records"] and older["latest_data_day"] == newest.isoformat()
        assert "no sleep" not in older["note"] and "stale" in older["note"]
        insights = session.answer("get_health_insights", {})
        assert "stale" in insights["note"]
