"""Delivery to real receivers on loopback: exactly once across re-runs, restarts and backfills; retries with
back-off; quiet hours; e-mail over SMTP; and channel URLs never in a log, an error or the store's bytes."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from polar_pipeline.alerts.channels import InvalidChannelUrl, check_channel_url, redact_url
from polar_pipeline.alerts.delivery import deliver_due, quiet_until, send_test
from polar_pipeline.alerts.evaluation import EvaluationReport, record_history
from polar_pipeline.alerts.rules import CRITICAL_ANOMALY, ILLNESS_WATCH, read_rule_inputs
from polar_pipeline.alerts.store import AlertStore, QuietHours
from polar_pipeline.defs.analytics.assets import run_analytics_table
from polar_pipeline.defs.analytics.definitions import ALL_TABLES
from polar_pipeline.sqlmodels import ModelGraph, run_models
from polar_pipeline.status import status_report
from polar_pipeline.warehouse.slices import UserDaySlice
from polar_pipeline.warehouse.writer import connect_writer
from tests.alerts.conftest import TEST_KEY, History, Smtp, Webhook, settings_for, text_of


def _illness(planted: History) -> tuple[str, date]:
    """The first planted illness's user and first symptom day (the watch is on then)."""
    user, event = planted.planted("illness")[0]
    return user, date.fromisoformat(event["start"])


def _evaluate(
    history: History, store: AlertStore, home: Path, day: date, inputs: Any = None
) -> EvaluationReport:
    report = EvaluationReport()
    now = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)
    users = list(history.sim.users)
    record_history(settings_for(home, day), store, inputs or history.inputs, users, now, {}, report)
    return report


def _mine(report: EvaluationReport, user: str) -> list[Any]:
    return [episode for episode in report.recorded if episode.user_id == user]


def _clock(at: datetime) -> Any:
    return lambda: at


def test_a_rerun_a_restart_and_the_next_days_send_each_alert_once(
    planted: History, webhook: Webhook, tmp_path: Path
) -> None:
    user, day = _illness(planted)
    store = AlertStore(tmp_path / "control.sqlite3", TEST_KEY)
    store.add_channel(user, webhook.url())
    mine = _mine(_evaluate(planted, store, tmp_path, day), user)
    assert ILLNESS_WATCH in {ep.rule for ep in mine}
    sent = deliver_due(settings_for(tmp_path, day), store, {})
    assert len(sent.sent) == len(mine) and len(webhook.wait_for(len(mine))) == len(mine)
    titles = sorted(post.body["title"] for post in webhook.accepted)
    assert titles == sorted(ep.title for ep in mine)
    # The same run again, a new process (a new store object on the same file), the next two days: nothing new
    # for the episodes already sent (they are still on, so they are seen again and merged).
    assert _evaluate(planted, store, tmp_path, day).recorded == []
    restarted = AlertStore(tmp_path / "control.sqlite3", TEST_KEY)
    assert _evaluate(planted, restarted, tmp_path, day).recorded == []
    later = [_evaluate(planted, restarted, tmp_path, day + timedelta(days=k)) for k in (1, 2)]
    again = {(ep.rule, ep.subject) for report in later for ep in report.recorded}
    assert not again & {(ep.rule, ep.subject) for ep in mine}, again
    deliver_due(settings_for(tmp_path, day), restarted, {})
    assert [post.body["title"] for post in webhook.accepted].count(mine[0].title) == 1


def test_the_first_evaluation_and_a_backfill_of_old_days_send_nothing_old(
    planted: History, graph: ModelGraph, tmp_path: Path
) -> None:
    """Episodes that ended before the recent window are history: recorded never, sent never."""
    user, day = _illness(planted)
    store = AlertStore(tmp_path / "control.sqlite3", TEST_KEY)
    report = _evaluate(planted, store, tmp_path, day)
    assert report.recorded
    assert all(ep.last_day >= day - timedelta(days=1) for ep in report.recorded)
    older = [row for row in planted.inputs.anomalies[user] if row["day"] < day - timedelta(days=5)]
    assert older, "the history holds critical anomalies long before the illness"
    recorded_days = {ep.first_day for ep in store.history(user, limit=500)}
    assert not recorded_days & {row["day"] for row in older}
    # A backfill rewrites old days: rebuild them in a private copy, and plant a new critical anomaly there.
    copy = tmp_path / "backfilled"
    copy.mkdir()
    path = copy / "warehouse.duckdb"
    shutil.copy(planted.sim.path, path)
    con = connect_writer(path)
    try:
        old = UserDaySlice((user,), day - timedelta(days=90), day - timedelta(days=30))
        run_models(con, graph, old.users, old.first_day, old.last_day)
        for table in ALL_TABLES:
            run_analytics_table(con, table, old)
        con.execute(
            "INSERT INTO marts.anomalies (user_id, day, metric, value, severity, direction, robust_z, "
            "deviation_pct, baseline_median) "
            "VALUES (?, ?, 'steps', 40000, 'critical', 'above', 9, 300, 9000)",
            [user, day - timedelta(days=40)],
        )
        inputs = read_rule_inputs(con, None, planted.sim.first_day, planted.sim.last_day)
    finally:
        con.close()
    assert any(row["day"] == day - timedelta(days=40) for row in inputs.anomalies[user])
    assert _evaluate(planted, store, tmp_path, day, inputs).recorded == []


def test_a_receiver_that_fails_twice_then_accepts_gets_the_alert_once(
    planted: History, webhook: Webhook, tmp_path: Path
) -> None:
    user, day = _illness(planted)
    settings = settings_for(tmp_path, day, alert_retry_backoff_seconds=60)
    store = AlertStore(tmp_path / "control.sqlite3", TEST_KEY)
    store.add_channel(user, webhook.url())
    (alert,) = [ep for ep in _evaluate(planted, store, tmp_path, day).recorded if ep.rule == ILLNESS_WATCH]
    for other in store.deliveries(user):  # only the illness alert in this test
        if other.episode_key != alert.episode_key:
            store.mark_sent(other.delivery_id, datetime.now(UTC))
    webhook.refuse_next = 2
    t0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
    first = deliver_due(settings, store, {}, now=_clock(t0))
    assert [d.attempts for d in first.retrying] == [1]
    assert first.retrying[0].next_attempt_at == t0 + timedelta(seconds=60)
    assert "500" in (first.retrying[0].last_error or "")
    assert deliver_due(settings, store, {}, now=_clock(t0 + timedelta(seconds=59))).retrying == []
    second = deliver_due(settings, store, {}, now=_clock(t0 + timedelta(seconds=60)))
    assert second.retrying[0].next_attempt_at == t0 + timedelta(seconds=180)  # the wait doubled
    third = deliver_due(settings, store, {}, now=_clock(t0 + timedelta(seconds=180)))
    assert [d.attempts for d in third.sent] == [3]
    deliver_due(settings, store, {}, now=_clock(t0 + timedelta(days=1)))
    assert [post.status for post in webhook.posts] == [500, 500, 200]
    assert [post.body["title"] for post in webhook.accepted] == [alert.title]
    (episode,) = [ep for ep in store.history(user) if ep.episode_key == alert.episode_key]
    assert episode.deliveries[0].status == "sent" and episode.deliveries[0].attempts == 3


def test_a_delivery_that_keeps_failing_is_shown_failed_in_status(
    planted: History, webhook: Webhook, tmp_path: Path
) -> None:
    user, day = _illness(planted)
    settings = settings_for(tmp_path, day, alert_retry_limit=1, alert_retry_backoff_seconds=1)
    store = AlertStore(settings.control_store_path, TEST_KEY)
    store.add_channel(user, webhook.url())
    _evaluate(planted, store, tmp_path, day)
    webhook.refuse_next = 1000
    now = datetime.now(UTC)
    deliver_due(settings, store, {}, now=_clock(now))
    report = deliver_due(settings, store, {}, now=_clock(now + timedelta(seconds=1)))
    assert report.failed and all(d.status == "failed" and d.attempts == 2 for d in report.failed)
    assert deliver_due(settings, store, {}, now=_clock(now + timedelta(days=1))).failed == []
    text = status_report(settings, now=now + timedelta(seconds=2))
    assert "alerts not delivered" in text
    assert f"{user}: polar-flow: early-illness pattern" in text and "after 2 attempts" in text
    assert redact_url(webhook.url()) in text


def test_quiet_hours_hold_an_alert_until_they_end_in_the_users_zone(
    planted: History, webhook: Webhook, tmp_path: Path
) -> None:
    user, day = _illness(planted)
    settings = settings_for(tmp_path, day)
    store = AlertStore(tmp_path / "control.sqlite3", TEST_KEY)
    store.add_channel(user, webhook.url())
    store.set_quiet_hours(user, "22:00", "07:00")
    recorded = _mine(_evaluate(planted, store, tmp_path, day), user)
    zones = {user: "Europe/Helsinki"}  # UTC+2 in January
    late_evening = datetime(2030, 1, 10, 21, 30, tzinfo=UTC)  # 23:30 in Helsinki
    held = deliver_due(settings, store, zones, now=_clock(late_evening))
    assert len(held.held) == len(recorded) and held.sent == []
    assert {d.next_attempt_at for d in held.held} == {datetime(2030, 1, 11, 5, 0, tzinfo=UTC)}  # 07:00 there
    assert (
        deliver_due(settings, store, zones, now=_clock(datetime(2030, 1, 11, 4, 59, tzinfo=UTC))).sent == []
    )
    assert webhook.posts == []
    morning = deliver_due(settings, store, zones, now=_clock(datetime(2030, 1, 11, 5, 0, tzinfo=UTC)))
    assert len(morning.sent) == len(recorded) and len(webhook.wait_for(len(recorded))) == len(recorded)
    assert quiet_until(QuietHours("09:00", "17:00"), "UTC", datetime(2030, 1, 11, 8, 59, tzinfo=UTC)) is None
    assert quiet_until(QuietHours("09:00", "17:00"), None, datetime(2030, 1, 11, 9, tzinfo=UTC)) == datetime(
        2030, 1, 11, 17, tzinfo=UTC
    )


def test_an_alert_arrives_by_email_over_smtp(planted: History, smtp: Smtp, tmp_path: Path) -> None:
    user, day = _illness(planted)
    store = AlertStore(tmp_path / "control.sqlite3", TEST_KEY)
    store.add_channel(user, smtp.url())
    store.set_rule(user, CRITICAL_ANOMALY, enabled=False)
    recorded = _mine(_evaluate(planted, store, tmp_path, day), user)
    assert recorded and CRITICAL_ANOMALY not in {ep.rule for ep in recorded}  # turned off: not evaluated
    deliver_due(settings_for(tmp_path, day), store, {})
    messages = smtp.wait_for(len(recorded))
    assert sorted(str(m["Subject"]) for m in messages) == sorted(ep.title for ep in recorded)
    illness = next(m for m in messages if "illness" in str(m["Subject"]))
    assert "Your body shows an early-illness pattern" in text_of(illness)
    assert smtp.logins  # the password in the URL logged in


def test_two_senders_at_once_send_each_delivery_once(
    planted: History, webhook: Webhook, tmp_path: Path
) -> None:
    import threading

    user, day = _illness(planted)
    store = AlertStore(tmp_path / "control.sqlite3", TEST_KEY)
    store.add_channel(user, webhook.url("a"))
    store.add_channel(user, webhook.url("b"))
    recorded = _mine(_evaluate(planted, store, tmp_path, day), user)
    settings = settings_for(tmp_path, day)
    other = AlertStore(tmp_path / "control.sqlite3", TEST_KEY)
    threads = [threading.Thread(target=deliver_due, args=(settings, s, {})) for s in (store, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(webhook.wait_for(2 * len(recorded))) == 2 * len(recorded)
    assert sorted((p.path, p.body["title"]) for p in webhook.accepted) == sorted(
        (f"/{path}", ep.title) for ep in recorded for path in ("a", "b")
    )


SECRETS = ("pw-S3CRET-one", "hook-TOKEN-two", "QUERY-three")


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_channel_urls_and_their_secrets_never_reach_logs_errors_or_the_store_bytes(
    planted: History,
    webhook: Webhook,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    caplog.set_level(logging.DEBUG)
    direct = Recorder()  # a handler on Apprise's own logger, as pytest or Dagster may add one
    seen = direct.records
    logging.getLogger("apprise").addHandler(direct)
    request.addfinalizer(lambda: logging.getLogger("apprise").removeHandler(direct))
    user, day = _illness(planted)
    settings = settings_for(tmp_path, day, alert_retry_limit=0)
    store = AlertStore(settings.control_store_path, TEST_KEY)
    good = f"json://alerts:{SECRETS[0]}@127.0.0.1:{webhook.port}/{SECRETS[1]}?key={SECRETS[2]}"
    closed = f"json://alerts:{SECRETS[0]}@127.0.0.1:1/{SECRETS[1]}"  # nothing listens on port 1
    channel = store.add_channel(user, good)
    store.add_channel(user, closed)
    assert channel.redacted_url == f"json://****@127.0.0.1:{webhook.port}/****"
    for bad in (f"json://alerts:{SECRETS[0]}@", f"nosuch://{SECRETS[1]}", f"json://{SECRETS[0]} spaced"):
        with pytest.raises(InvalidChannelUrl) as refused:
            check_channel_url(bad)
        assert not any(secret in str(refused.value) for secret in SECRETS)
    _evaluate(planted, store, tmp_path, day)
    webhook.refuse_next = 1  # one refusal: the first delivery to the good channel fails
    report = deliver_due(settings, store, {})
    assert report.failed
    assert send_test(store, channel.channel_id).ok
    webhook.wait_for(1)
    errors = [d.last_error or "" for d in store.deliveries(user)]
    assert any("500" in e for e in errors) and any(e for e in errors if "500" not in e)
    captured = capfd.readouterr()
    texts = {
        "logs": caplog.text,
        "apprise records": "\n".join(record.getMessage() for record in seen),
        "stdout": captured.out,
        "stderr": captured.err,
        "errors": "\n".join(errors),
        "status": status_report(settings),
        "history": repr(store.history(user)),
        "store bytes": "".join(
            path.read_bytes().decode("latin-1") for path in tmp_path.glob("control.sqlite3*")
        ),
    }
    # Handlers saw Apprise's own records (its request line, the connection error), scrubbed: not absent.
    assert "JSON POST URL: " in texts["apprise records"], texts["apprise records"]
    assert "Socket Exception" in texts["apprise records"]
    assert f"to json://****@127.0.0.1:{webhook.port}/****" in texts["logs"]
    leaks = {name: secret for name, text in texts.items() for secret in SECRETS if secret in text}
    assert leaks == {}
    assert webhook.accepted and webhook.accepted[-1].path == f"/{SECRETS[1]}"


def test_the_store_encrypts_with_the_token_key_of_the_settings(tmp_path: Path, webhook: Webhook) -> None:
    from polar_pipeline.alerts.store import open_alert_store

    settings = settings_for(tmp_path)
    store = open_alert_store(settings)
    channel = store.add_channel("alice", webhook.url(secret=SECRETS[0]))
    assert settings.key_file.exists() and oct(settings.key_file.stat().st_mode & 0o777) == "0o600"
    assert open_alert_store(settings).channel_url(channel.channel_id) == webhook.url(secret=SECRETS[0])
    assert SECRETS[0].encode() not in settings.control_store_path.read_bytes()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://user:pw@127.0.0.1:8123/hook?x=1", "json://****@127.0.0.1:8123/****"),
        ("mailto://me:pw@gmail.com", "mailto://****@gmail.com"),
        ("tgram://123456789:AAE-bot-token/987654", "tgram://****"),
        ("ntfy://private-topic-name", "ntfy://****"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general", "slack://****"),
        ("jsons://hooks.example.com/secret-path", "jsons://hooks.example.com/****"),
    ],
)
def test_a_url_is_shown_as_its_scheme_and_network_host_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert check_channel_url(url).redacted == shown


def test_a_channel_the_current_key_cannot_decrypt_fails_visibly(planted: History, tmp_path: Path) -> None:
    user, day = _illness(planted)
    AlertStore(tmp_path / "control.sqlite3", TEST_KEY).add_channel(user, "json://127.0.0.1:9/hook")
    rotated = AlertStore(tmp_path / "control.sqlite3", Fernet.generate_key())
    recorded = _mine(_evaluate(planted, rotated, tmp_path, day), user)
    assert deliver_due(settings_for(tmp_path, day), rotated, {}).sent == []
    deliveries = rotated.deliveries(user)
    assert len(deliveries) == len(recorded) and {d.status for d in deliveries} == {"failed"}
    assert all("cannot be decrypted" in (d.last_error or "") for d in deliveries)
