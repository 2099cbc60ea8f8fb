"""The alerts and the digest one planted illness produces, printed (``pytest -s``) as a person reads them,
and held to the shape every alert has: what changed, by how much, since when, what to look at."""

from __future__ import annotations

from datetime import date, timedelta

from polar_pipeline.alerts.digest import compose_digest
from polar_pipeline.alerts.rules import HISTORY_RULES, ILLNESS_WATCH
from tests.alerts.conftest import History, Replayed


def test_the_alerts_and_digest_of_one_planted_illness(planted: History, planted_replay: Replayed) -> None:
    user, event = planted.planted("illness")[-1]
    prodrome, end = date.fromisoformat(event["details"]["prodrome_start"]), date.fromisoformat(event["end"])
    alerts = [
        (day, episode)
        for rule in HISTORY_RULES
        for day, episode in planted_replay.of(user, rule)
        if prodrome <= day <= end + timedelta(days=3)
    ]
    alerts.sort(key=lambda item: (item[0], item[1].rule))
    assert ILLNESS_WATCH in {episode.rule for _, episode in alerts}
    print(f"\n=== user {user}: planted illness {event['start']}..{end}, prodrome from {prodrome} ===")
    for day, episode in alerts:
        print(f"\n--- sent on {day} ---\n{episode.title}\n{episode.body}")
        assert "What to look at: " in episode.body and "against" in episode.body
        assert "Since: " in episode.body and f"(polar-flow, user {user})" in episode.body
        assert "improving" not in episode.body
    monday = end + timedelta(days=(7 - end.weekday()) % 7 or 7)
    con = planted.connect()
    try:
        digest = compose_digest(con, user, monday)
    finally:
        con.close()
    print(f"\n--- weekly digest of {monday} ---\n{digest.message.title}\n{digest.message.body}")
    assert digest.message.body.count("\n- ") >= 5
