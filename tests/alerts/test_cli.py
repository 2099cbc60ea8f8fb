"""``polar-flow alerts add|list|remove|test`` on a private copy of the served home."""

from __future__ import annotations

import pytest

from polar_pipeline.alerts.store import open_alert_store
from polar_pipeline.cli import main
from tests.alerts.conftest import ServedCopy, Webhook

SECRET = "cli-S3CRET-pw"


def test_alerts_add_list_test_and_remove(
    served_copy: ServedCopy, webhook: Webhook, capsys: pytest.CaptureFixture[str]
) -> None:
    user = served_copy.users[0]
    assert main(["alerts", "add", "--user", user, webhook.url(secret=SECRET), "--label", "desk"]) == 0
    added = capsys.readouterr().out
    (channel,) = open_alert_store(served_copy.settings).channels(user)
    assert added.strip() == (
        f"channel {channel.channel_id} added for user {user}: json://****@127.0.0.1:{webhook.port}/****"
    )
    assert main(["alerts", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith("channel_id\tuser\turl (redacted)")
    assert listed[1].startswith(
        f"{channel.channel_id}\t{user}\tjson://****@127.0.0.1:{webhook.port}/****\tdesk\t"
    )
    assert main(["alerts", "test", "--user", user]) == 0
    assert capsys.readouterr().out.strip().endswith(": sent")
    assert webhook.wait_for(1)[0].body["title"] == "polar-flow: test notification"
    webhook.refuse_next = 1
    assert main(["alerts", "test", "--user", user, "--channel", channel.channel_id]) == 1
    assert "500" in capsys.readouterr().out
    assert main(["alerts", "remove", channel.channel_id]) == 0
    assert capsys.readouterr().out.strip().startswith(f"channel {channel.channel_id} of user {user} removed")
    assert main(["alerts", "list", "--user", user]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == []
    assert main(["alerts", "remove", channel.channel_id]) == 2
    assert "no active channel" in capsys.readouterr().err


def test_alerts_add_refuses_a_bad_url_or_an_unknown_user_without_repeating_the_url(
    served_copy: ServedCopy, webhook: Webhook, capsys: pytest.CaptureFixture[str]
) -> None:
    user = served_copy.users[0]
    assert main(["alerts", "add", "--user", user, f"nosuch://{SECRET}@example.com"]) == 2
    error = capsys.readouterr().err
    assert "unknown notification scheme 'nosuch'" in error and SECRET not in error
    with pytest.raises(SystemExit) as exited:
        main(["alerts", "add", "--user", "nobody", webhook.url(secret=SECRET)])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "unknown user 'nobody'" in error and SECRET not in error
    with pytest.raises(SystemExit):
        main(["alerts", "test", "--user", user])  # no channel yet
    assert "no such alert channel" in capsys.readouterr().err
    assert open_alert_store(served_copy.settings).channels() == []
