"""/api/v1/users/{user_id}/alerts/...: channels, rules, quiet hours, test sends and history, over a private
copy of the served home, through a real server on loopback; a user's key manages only that user's alerts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import httpx
import pytest

from polar_api.app import create_app
from polar_pipeline.alerts.delivery import deliver_due
from polar_pipeline.alerts.evaluation import evaluate_snapshot, user_zones
from polar_pipeline.alerts.rules import Episode, Finding
from polar_pipeline.alerts.store import open_alert_store
from polar_pipeline.alerts.texts import Message
from tests.alerts.conftest import ServedCopy, Webhook
from tests.support.servers import serve_asgi

SECRET = "api-S3CRET-pw"


@pytest.fixture
def client(served_copy: ServedCopy) -> Iterator[httpx.Client]:
    with (
        serve_asgi(create_app(served_copy.settings)) as base_url,
        httpx.Client(base_url=base_url, timeout=30) as c,
    ):
        yield c


def _alerts(user: str) -> str:
    return f"/api/v1/users/{user}/alerts"


def test_channels_are_added_listed_tested_and_removed_by_the_users_own_key(
    served_copy: ServedCopy, client: httpx.Client, webhook: Webhook
) -> None:
    user, other = served_copy.users[0], served_copy.users[1]
    own = served_copy.headers(user)
    assert client.get(f"{_alerts(user)}/channels", headers=own).json() == {"user_id": user, "channels": []}
    added = client.post(
        f"{_alerts(user)}/channels", headers=own, json={"url": webhook.url(secret=SECRET), "label": "phone"}
    )
    assert added.status_code == 201, added.text
    channel = added.json()
    assert (
        channel["redacted_url"] == f"json://****@127.0.0.1:{webhook.port}/****"
        and channel["label"] == "phone"
    )
    assert SECRET not in added.text
    listed = client.get(f"{_alerts(user)}/channels", headers=own)
    assert [c["channel_id"] for c in listed.json()["channels"]] == [channel["channel_id"]]
    assert SECRET not in listed.text
    # Another user's key may neither read nor change this user's alerts; the admin key may.
    for method, path in (
        ("GET", "/channels"),
        ("POST", f"/channels/{channel['channel_id']}/test"),
        ("DELETE", f"/channels/{channel['channel_id']}"),
        ("GET", "/history"),
    ):
        refused = client.request(method, f"{_alerts(user)}{path}", headers=served_copy.headers(other))
        assert refused.status_code == 403, (method, path)
    assert client.get(f"{_alerts(user)}/channels", headers=served_copy.headers()).status_code == 200
    # A channel id of this user under another user's path is not found there.
    assert (
        client.delete(
            f"{_alerts(other)}/channels/{channel['channel_id']}", headers=served_copy.headers()
        ).status_code
        == 404
    )

    tested = client.post(f"{_alerts(user)}/channels/{channel['channel_id']}/test", headers=own)
    assert tested.status_code == 200 and tested.json() == {"channel_id": channel["channel_id"], "sent": True}
    assert webhook.wait_for(1)[0].body["title"] == "polar-flow: test notification"
    webhook.refuse_next = 1
    failed = client.post(f"{_alerts(user)}/channels/{channel['channel_id']}/test", headers=own)
    assert failed.status_code == 502 and "500" in failed.json()["detail"] and SECRET not in failed.text

    removed = client.delete(f"{_alerts(user)}/channels/{channel['channel_id']}", headers=own)
    assert removed.status_code == 200 and removed.json()["removed_at"] is not None
    assert client.get(f"{_alerts(user)}/channels", headers=own).json()["channels"] == []
    kept = client.get(f"{_alerts(user)}/channels", headers=own, params={"include_removed": True}).json()
    assert [c["redacted_url"] for c in kept["channels"]] == [channel["redacted_url"]]
    again = client.delete(f"{_alerts(user)}/channels/{channel['channel_id']}", headers=own)
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"nosuch://{SECRET}@example.com", "unknown notification scheme 'nosuch'"),
        (f"json://user:{SECRET}@", "Apprise cannot use this json:// URL"),
        (f"{SECRET} is not a URL", "contains spaces"),
        (f"mailto{SECRET}", "not an Apprise URL"),
    ],
)
def test_a_bad_url_is_a_400_that_says_why_without_repeating_it(
    served_copy: ServedCopy, client: httpx.Client, url: str, reason: str
) -> None:
    user = served_copy.users[0]
    answer = client.post(f"{_alerts(user)}/channels", headers=served_copy.headers(user), json={"url": url})
    assert answer.status_code == 400 and reason in answer.json()["detail"] and SECRET not in answer.text
    too_long = client.post(
        f"{_alerts(user)}/channels", headers=served_copy.headers(user), json={"url": "x" * 3000}
    )
    assert too_long.status_code == 422


def test_an_unknown_user_is_404(served_copy: ServedCopy, client: httpx.Client, webhook: Webhook) -> None:
    admin = served_copy.headers()
    for method, path in (
        ("GET", "/channels"),
        ("GET", "/rules"),
        ("GET", "/history"),
        ("GET", "/quiet-hours"),
    ):
        assert client.request(method, f"{_alerts('nobody')}{path}", headers=admin).status_code == 404
    posted = client.post(f"{_alerts('nobody')}/channels", headers=admin, json={"url": webhook.url()})
    assert posted.status_code == 404


def test_rules_and_quiet_hours_are_set_and_checked(served_copy: ServedCopy, client: httpx.Client) -> None:
    user = served_copy.users[0]
    own = served_copy.headers(user)
    rules = client.get(f"{_alerts(user)}/rules", headers=own).json()["rules"]
    names = [rule["rule"] for rule in rules]
    assert names == [
        "critical_anomaly",
        "illness_watch",
        "overtraining_risk",
        "hrv_below_normal",
        "data_stale",
        "access_lost",
        "weekly_digest",
    ]
    assert all(rule["enabled"] and not rule["customised"] for rule in rules)
    assert next(r for r in rules if r["rule"] == "overtraining_risk")["options"]["persist_days"] == 3
    changed = client.put(
        f"{_alerts(user)}/rules/overtraining_risk", headers=own, json={"options": {"persist_days": 5}}
    )
    assert changed.status_code == 200 and changed.json()["options"] == {
        "persist_days": 5,
        "repeat_daily": False,
    }
    off = client.put(f"{_alerts(user)}/rules/data_stale", headers=own, json={"enabled": False})
    assert off.json()["enabled"] is False and off.json()["customised"] is True
    for body, fragment in (
        ({"options": {"nope": 1}}, "has no option 'nope'"),
        ({"options": {"persist_days": 99}}, "between 0 and 28"),
        ({"options": {"persist_days": "3"}}, "whole number"),
    ):
        bad = client.put(f"{_alerts(user)}/rules/overtraining_risk", headers=own, json=body)
        assert bad.status_code == 400 and fragment in bad.json()["detail"], body
    assert client.put(f"{_alerts(user)}/rules/no_such_rule", headers=own, json={}).status_code == 404
    after = {r["rule"]: r for r in client.get(f"{_alerts(user)}/rules", headers=own).json()["rules"]}
    assert after["overtraining_risk"]["options"]["persist_days"] == 5 and not after["data_stale"]["enabled"]

    assert client.get(f"{_alerts(user)}/quiet-hours", headers=own).json()["start"] is None
    quiet = client.put(f"{_alerts(user)}/quiet-hours", headers=own, json={"start": "22:00", "end": "07:00"})
    assert quiet.status_code == 200 and (quiet.json()["start"], quiet.json()["end"]) == ("22:00", "07:00")
    assert quiet.json()["time_zone"] is not None  # the served users have a zone from their records
    same = client.put(f"{_alerts(user)}/quiet-hours", headers=own, json={"start": "07:00", "end": "07:00"})
    assert same.status_code == 400
    assert (
        client.put(
            f"{_alerts(user)}/quiet-hours", headers=own, json={"start": "25:00", "end": "07:00"}
        ).status_code
        == 422
    )
    cleared = client.delete(f"{_alerts(user)}/quiet-hours", headers=own)
    assert cleared.status_code == 200 and cleared.json()["start"] is None


def test_the_history_shows_each_alert_and_its_delivery(
    served_copy: ServedCopy, client: httpx.Client, webhook: Webhook
) -> None:
    settings = served_copy.settings
    store = open_alert_store(settings)
    for user in served_copy.users:
        store.add_channel(user, webhook.url(user))
    report = evaluate_snapshot(settings, store, datetime.now(UTC))
    assert report.recorded, "the served snapshot has a current episode (HRV below its band for 3 days)"
    deliver_due(settings, store, user_zones(settings))
    webhook.wait_for(len(report.recorded))
    for user in served_copy.users:
        history = client.get(f"{_alerts(user)}/history", headers=served_copy.headers(user)).json()
        mine = [ep for ep in report.recorded if ep.user_id == user]
        assert sorted(e["episode_key"] for e in history["episodes"]) == sorted(ep.episode_key for ep in mine)
        for episode in history["episodes"]:
            (delivery,) = episode["deliveries"]
            assert delivery["status"] == "sent" and delivery["attempts"] == 1
            assert delivery["channel"] == f"json://127.0.0.1:{webhook.port}/****"
            post = next(
                p for p in webhook.accepted if p.path == f"/{user}" and p.body["title"] == episode["title"]
            )
            assert post.body["message"] == episode["body"]
    user = report.recorded[0].user_id
    failed = client.get(
        f"{_alerts(user)}/history", headers=served_copy.headers(user), params={"status": "failed"}
    )
    assert failed.json()["episodes"] == []
    # Every post refused: with no retries allowed, the next alert's deliveries show as failed, with why.
    store.add_channel(user, webhook.url("second"))
    day = date(2026, 3, 1)
    finding = Finding(user, "illness_watch", "illness", day)
    store.record_episode(
        Episode(user, "illness_watch", "illness", day, day, (finding,)),
        Message("polar-flow: a second alert", "body"),
        now=datetime.now(UTC),
    )
    webhook.refuse_next = 100
    deliver_due(settings.model_copy(update={"alert_retry_limit": 0}), store, user_zones(settings))
    answer = client.get(
        f"{_alerts(user)}/history", headers=served_copy.headers(user), params={"status": "failed"}
    )
    (shown,) = answer.json()["episodes"]
    assert shown["title"] == "polar-flow: a second alert" and len(shown["deliveries"]) == 2
    for delivery in shown["deliveries"]:
        assert delivery["status"] == "failed" and delivery["attempts"] == 1, delivery
        assert "500" in delivery["last_error"] and delivery["sent_at"] is None
