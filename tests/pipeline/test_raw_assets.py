"""Raw user × day assets against the real loopback simulator: idempotence, nothing lost, faults, crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from polar_pipeline.accesslink import AccessLinkClient
from polar_pipeline.operations import publish, sync
from polar_pipeline.sync_outcomes import SyncOutcomes
from tests.conftest import Pipeline

REPO = Path(__file__).resolve().parents[2]


def test_rematerializing_a_range_twice_leaves_identical_tables(pipeline: Pipeline) -> None:
    users = pipeline.add_users(2)
    first = sync(pipeline.settings, days=40, instance=pipeline.instance)
    assert first.success and first.users == tuple(users)
    after_first = pipeline.checksums()
    counts = dict(pipeline.query("SELECT user_id, count(*) FROM raw.sleep GROUP BY ALL"))
    assert set(counts) == set(users) and all(n >= 20 for n in counts.values())
    assert sync(pipeline.settings, days=40, instance=pipeline.instance).success
    assert pipeline.checksums() == after_first


def test_days_the_source_has_forgotten_keep_their_stored_rows(pipeline: Pipeline) -> None:
    (user,) = pipeline.add_users(1)
    start_today = pipeline.sim_today()
    assert sync(pipeline.settings, days=28, until=start_today, instance=pipeline.instance).success
    old_rows = pipeline.query(
        "SELECT day, payload::VARCHAR, fetched_at FROM raw.sleep WHERE user_id = ? ORDER BY day", [user]
    )
    assert len(old_rows) >= 20
    pipeline.sim("POST", "/sim/clock", json={"advance_days": 60})
    # Re-materialize the old days: AccessLink no longer serves them, and nothing stored may disappear.
    assert sync(pipeline.settings, days=28, until=start_today, instance=pipeline.instance).success
    again = pipeline.query(
        "SELECT day, payload::VARCHAR, fetched_at FROM raw.sleep WHERE user_id = ? AND day <= ? ORDER BY day",
        [user, start_today],
    )
    assert again == old_rows


def test_faults_end_with_good_records_stored_once_and_bad_ones_quarantined(pipeline: Pipeline) -> None:
    (user,) = pipeline.add_users(1)
    token = next(u["access_token"] for u in pipeline.users if str(u["x_user_id"]) == user)
    pipeline.sim("POST", "/sim/stats/reset")
    pipeline.sim(
        "POST",
        "/sim/faults",
        json={
            "server_error_rate": 0.15,
            "server_error_burst": 2,
            "malformed_json_rate": 0.1,
            "spurious_429_rate": 0.1,
            "missing_field_rate": 0.05,
            "out_of_range_rate": 0.05,
            "duplicate_exercises": True,
        },
    )
    today = pipeline.sim_today()
    # Bad records arrived: quarantined with their reasons, and the blocking arrival check stopped the run
    # before the marts. The same sync again (what the retry sensor does) passes: nothing new is bad.
    first = sync(pipeline.settings, days=28, until=today, instance=pipeline.instance)
    assert not first.success
    failures = SyncOutcomes(pipeline.settings.control_store_path).states()[user]
    assert failures.failing and "quarantined on arrival" in (failures.last_error or "")
    assert sync(pipeline.settings, days=28, until=today, instance=pipeline.instance).success
    corrupted = {(entry["stream"], entry["key"]) for entry in pipeline.sim("GET", "/sim/faults/log")}
    assert corrupted, "the fault rates should have corrupted some records"

    rates = (
        "server_error_rate",
        "malformed_json_rate",
        "spurious_429_rate",
        "missing_field_rate",
        "out_of_range_rate",
    )
    pipeline.sim("POST", "/sim/faults", json=dict.fromkeys(rates, 0) | {"duplicate_exercises": False})
    first_day = today - timedelta(days=27)
    with AccessLinkClient(
        pipeline.sim_url, token_url="", client_id="sim-client", client_secret="sim-secret"
    ) as c:
        clean = {
            "sleep": c.fetch_sleep(token, first_day, today),
            "nightly_recharge": c.fetch_nightly_recharge(token, first_day, today),
            "activity": c.fetch_activity(token, first_day, today),
            "exercise": c.fetch_exercises(token, first_day, today),
        }
    tables = {
        "sleep": "sleep",
        "nightly_recharge": "nightly_recharge",
        "activity": "activity",
        "exercise": "exercises",
    }
    # A record whose key field was the one removed is quarantined under its day (the key is never guessed).
    quarantined = {
        (stream, key or str(day))
        for stream, key, day in pipeline.query("SELECT stream, record_key, day FROM raw.quarantine")
    }
    for stream, result in clean.items():
        key_column = "exercise_id" if stream == "exercise" else "day::VARCHAR"
        stored = dict(
            pipeline.query(
                f"SELECT {key_column}, payload::VARCHAR FROM raw.{tables[stream]} WHERE user_id = ?", [user]
            )
        )
        expected = {r.key: r.payload for r in result.records if (stream, r.key) not in corrupted}
        assert set(stored) == set(expected), stream
        for key, payload in expected.items():
            assert json.loads(stored[key]) == payload, (stream, key)
    logged = {(tables[stream], key) for stream, key in corrupted}
    by_day = {
        (s, str(d)) for s, d in pipeline.query("SELECT stream, day FROM raw.quarantine WHERE day IS NOT NULL")
    }
    # A record that lost its only date field cannot be keyed: it is quarantined with neither key nor day,
    # and found by its payload (the clean record without that field).
    clean_payloads = {
        (tables[stream], r.key): r.payload for stream, result in clean.items() for r in result.records
    }
    unkeyed = [
        (stream, json.loads(payload))
        for stream, payload in pipeline.query(
            "SELECT stream, payload::VARCHAR FROM raw.quarantine WHERE record_key IS NULL AND day IS NULL"
        )
    ]
    fields = {(tables[e["stream"]], e["key"]): e["field"] for e in pipeline.sim("GET", "/sim/faults/log")}
    unmatched = {c for c in logged if c not in quarantined and c not in by_day}
    for stream, key in unmatched:
        without_date = {k: v for k, v in clean_payloads[stream, key].items() if k != fields[stream, key]}
        assert (stream, without_date) in unkeyed, (stream, key, fields[stream, key])
    assert len(pipeline.query("SELECT * FROM raw.quarantine")) == len(corrupted)
    reasons = [r for (r,) in pipeline.query("SELECT reason FROM raw.quarantine")]
    assert reasons and all(len(reason) > 10 for reason in reasons)


def test_a_reader_process_sees_no_errors_and_no_half_written_partition(pipeline: Pipeline) -> None:
    users = pipeline.add_users(2)
    start_today = pipeline.sim_today()
    assert sync(pipeline.settings, days=28, until=start_today, instance=pipeline.instance).success
    assert publish(pipeline.settings, instance=pipeline.instance)
    nights = "SELECT user_id, count(*) FROM marts.daily_metrics WHERE sleep_start IS NOT NULL GROUP BY ALL"
    before = dict(pipeline.query(nights))  # the snapshot serves marts: nights per user, before and after
    probe = subprocess.Popen(
        [sys.executable, "-m", "polar_pipeline.warehouse.probe", str(pipeline.settings.snapshots_dir),
         nights + " ORDER BY ALL"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert probe.stderr is not None and probe.stderr.readline().strip() == "ready"
    pipeline.sim("POST", "/sim/clock", json={"advance_days": 28})
    later = start_today + timedelta(days=28)
    assert sync(pipeline.settings, days=28, until=later, instance=pipeline.instance).success
    assert publish(pipeline.settings, instance=pipeline.instance)
    after = dict(pipeline.query(nights))
    probe.terminate()  # stopped by a signal once the work is done, not by a timer
    out, _ = probe.communicate(timeout=60)
    report = json.loads(out)
    assert report["errors"] == [] and report["failed"] == 0 and report["stopped_by_signal"]
    assert report["not_published"] == 0 and report["relations"] >= 8
    assert report["reads"] > 20
    allowed = {tuple(sorted((u, str(n)) for u, n in state.items())) for state in (before, after)}
    seen_states = {tuple(tuple(row) for row in result) for _generation, result in report["seen"]}
    assert seen_states <= allowed, seen_states
    assert len(seen_states) == 2
    assert set(before) == set(users) and all(after[u] > before[u] for u in users)


def test_user_ids_with_a_pipe_are_refused_by_the_cli(pipeline: Pipeline) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "polar-flow"), "users", "add", "--user", "a|b", "--token", "x"],
        env=os.environ | pipeline.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "invalid user id" in result.stderr and "'|'" in result.stderr
    assert "Traceback" not in result.stderr
