"""``polar-flow``: the command line (simulator, users, keys, sync, backfill, publish, api, mcp, sql, …).

Every argument is checked before a command does anything: values by the validators of ``cli_args`` (argparse
``type=``), checks across arguments or against the settings by the subcommand's ``check``. Either way a bad
argument ends the command with exit code 2 and ``argument --x: …`` on stderr, and nothing has started.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeAlias

from polar_pipeline import cli_args
from polar_pipeline.cli_args import ArgumentProblem
from polar_pipeline.failures import OperationFailed
from polar_pipeline.settings import get_settings


def _cmd_simulator(args: argparse.Namespace) -> int:
    import uvicorn

    from polar_pipeline.simulator import FaultConfig, SimulatorConfig, create_app
    from polar_pipeline.simulator.config import PERSONAS

    config = SimulatorConfig(
        seed=args.seed,
        users=args.users,
        today=args.today or get_settings().today,
        history_days=args.history_days,
        faults=args.faults or FaultConfig(),
        personas=args.personas or PERSONAS,
    )
    print(
        f"AccessLink simulator on http://{args.host}:{args.port} (seed {args.seed}, {args.users} users)",
        flush=True,
    )
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_level="warning",
        lifespan="off",
        date_header=False,
    )
    return 0


def _cmd_users(args: argparse.Namespace) -> int:
    from polar_pipeline.control_store import UnknownUser
    from polar_pipeline.operations import add_user, open_control_store

    settings = get_settings()
    if args.users_command == "add":
        stored = add_user(settings, args.user, args.token)
        print(f"user {stored.user_id} added (Polar user id {stored.polar_user_id}); token stored encrypted")
    elif args.users_command == "set-zone":
        try:
            stored = open_control_store(settings).set_time_zone(args.user, args.zone)
        except UnknownUser:
            print(
                f"polar-flow: error: unknown user {args.user!r}: add it with `polar-flow users add`",
                file=sys.stderr,
            )
            return 2
        print(
            f"user {stored.user_id}: time zone {stored.time_zone} (set by you: records no longer change it); "
            "the API uses it from the next `polar-flow publish`"
        )
    else:
        for user in open_control_store(settings).list_users():
            zone = f"{user.time_zone} ({user.time_zone_source})" if user.time_zone else "-"
            print(
                f"{user.user_id}\tpolar_user_id={user.polar_user_id}\tstatus={user.status}\ttime_zone={zone}"
            )
    return 0


def _check_day_range(first_day: date, last_day: date, first_option: str, last_option: str) -> None:
    """A range the day axis has: not after today, not before the axis start (``history.history_start``)."""
    from polar_pipeline import clock
    from polar_pipeline.history import history_start

    settings = get_settings()
    today = clock.today(settings)
    if last_day > today:
        raise ArgumentProblem(last_option, f"{last_day} is after today ({today}): no data can exist yet")
    start = history_start(settings)
    if first_day < start:
        raise ArgumentProblem(
            first_option,
            f"the days {first_day}..{last_day} start before the first day of the day axis ({start}); "
            "set POLAR_HISTORY_START earlier to reach further back (docs/storage.md)",
        )


def _check_sync(args: argparse.Namespace) -> None:
    from polar_pipeline import clock

    last_day = args.until or clock.today(get_settings())
    first_day = last_day - timedelta(days=args.days - 1)
    _check_day_range(first_day, last_day, "--days", "--until")


def _check_backfill(args: argparse.Namespace) -> None:
    if args.first_day > args.last_day:
        raise ArgumentProblem("--from", f"{args.first_day} is after --to {args.last_day}")
    _check_day_range(args.first_day, args.last_day, "--from", "--to")


def _run_pipeline(
    args: argparse.Namespace, *, days: int | None, first_day: date | None, until: date | None
) -> int:
    """One run of the main job over the users' days (``operations.sync``), then publish unless told not."""
    from polar_pipeline.operations import UnknownUsers, publish, sync
    from polar_pipeline.progress import RunProgress, wanted

    settings = get_settings()
    progress = RunProgress() if wanted(args.progress) else None
    try:
        outcome = sync(
            settings, args.user or None, days=days, first_day=first_day, until=until, progress=progress
        )
    except UnknownUsers as exc:
        raise ArgumentProblem("--user", str(exc)) from None
    print(
        f"run {outcome.run_id}: {'success' if outcome.success else 'FAILED'} for {', '.join(outcome.users)} "
        f"days {outcome.first_day}..{outcome.last_day} ({outcome.partitions} partitions)"
    )
    if not outcome.success:
        return 1
    if not args.no_publish:
        published = publish(settings)
        print("published serving snapshot" if published else "publish FAILED")
        return 0 if published else 1
    return 0


def _cmd_sync(args: argparse.Namespace) -> int:
    return _run_pipeline(args, days=args.days, first_day=None, until=args.until)


def _cmd_backfill(args: argparse.Namespace) -> int:
    return _run_pipeline(args, days=None, first_day=args.first_day, until=args.last_day)


def _cmd_publish(_: argparse.Namespace) -> int:
    from polar_pipeline.operations import publish

    return 0 if publish(get_settings()) else 1


def _check_import(args: argparse.Namespace) -> None:
    import zipfile

    if not (args.path.is_dir() or (args.path.is_file() and zipfile.is_zipfile(args.path))):
        raise ArgumentProblem("path", f"{args.path}: not a Polar export (a .zip archive or unpacked folder)")


def _cmd_import(args: argparse.Namespace) -> int:
    from polar_pipeline.export_import import import_export, summary_lines

    done = import_export(
        get_settings(), args.user, args.path, publish_after=not args.no_publish, progress=args.progress
    )
    print("\n".join(summary_lines(done)))
    if done.rebuild is not None and not done.rebuild.success:
        return 1
    return 0 if done.published is not False else 1


def _cmd_keys(args: argparse.Namespace) -> int:
    from polar_pipeline.api_keys import DEFAULT_RATE_LIMIT_PER_MINUTE, ApiKeyStore, UnknownKey

    store = ApiKeyStore(get_settings().control_store_path)
    if args.keys_command == "create":
        limit = DEFAULT_RATE_LIMIT_PER_MINUTE if args.rate_limit is None else args.rate_limit
        created = store.create(
            None if args.admin else args.user, admin=args.admin, name=args.name, rate_limit_per_minute=limit
        )
        key = created.key
        whom = "admin key (reads every user)" if key.is_admin else f"key for user {key.user_id}"
        print(f"created {whom}: id {key.key_id}, {key.rate_limit_per_minute} requests/minute")
        print("the full key follows; it is shown only this once (send it as X-API-Key):")
        print(created.secret)
    elif args.keys_command == "revoke":
        try:
            key = store.revoke(args.key_id)
        except UnknownKey:
            print(f"polar-flow: error: no API key with id {args.key_id!r}", file=sys.stderr)
            return 2
        print(f"key {key.key_id} revoked at {key.revoked_at}")
    else:
        print("key_id\tprefix\tfor\tname\trate_limit_per_minute\tcreated_at\trevoked_at")
        for key in store.list(args.user):
            whom = "admin" if key.is_admin else f"user {key.user_id}"
            print(
                f"{key.key_id}\t{key.key_prefix}…\t{whom}\t{key.name or '-'}\t{key.rate_limit_per_minute}"
                f"\t{key.created_at}\t{key.revoked_at or '-'}"
            )
    return 0


def _cmd_alerts(args: argparse.Namespace) -> int:
    from polar_pipeline.alerts.delivery import send_test
    from polar_pipeline.alerts.evaluation import is_known_user
    from polar_pipeline.alerts.store import UnknownChannel, open_alert_store

    settings = get_settings()
    store = open_alert_store(settings)
    if args.alerts_command == "add":
        if not is_known_user(settings, args.user):
            raise ArgumentProblem(
                "--user", f"unknown user {args.user!r}: connect it first (polar-flow connect)"
            )
        channel = store.add_channel(args.user, args.url, args.label)
        print(f"channel {channel.channel_id} added for user {channel.user_id}: {channel.redacted_url}")
    elif args.alerts_command == "remove":
        try:
            channel = store.remove_channel(args.channel_id)
        except UnknownChannel:
            print(f"polar-flow: error: no active channel with id {args.channel_id!r}", file=sys.stderr)
            return 2
        print(f"channel {channel.channel_id} of user {channel.user_id} removed ({channel.redacted_url})")
    elif args.alerts_command == "test":
        channels = [c for c in store.channels(args.user) if args.channel in (None, c.channel_id)]
        if not channels:
            raise ArgumentProblem("--user", f"user {args.user!r} has no such alert channel: add one first")
        failed = 0
        for channel in channels:
            result = send_test(store, channel.channel_id)
            failed += not result.ok
            print(f"{channel.channel_id} {channel.redacted_url}: {'sent' if result.ok else result.error}")
        return 1 if failed else 0
    else:
        print("channel_id\tuser\turl (redacted)\tlabel\tcreated_at")
        for channel in store.channels(args.user):
            print(
                f"{channel.channel_id}\t{channel.user_id}\t{channel.redacted_url}\t{channel.label or '-'}"
                f"\t{channel.created_at:%Y-%m-%d %H:%M}"
            )
    return 0


def _cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    # An import string and a factory: each worker process builds its own app (own connections, own caches).
    uvicorn.run(
        "polar_api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
    )
    return 0


def _check_mcp(args: argparse.Namespace) -> None:
    from polar_pipeline.connections import open_control_store
    from polar_pipeline.control_store import UnknownUser

    if args.user is None:
        return
    try:
        open_control_store(get_settings()).get_user(args.user)
    except UnknownUser:
        raise ArgumentProblem(
            "--user", f"unknown user {args.user!r}: connect it first (polar-flow connect or users add)"
        ) from None


def _cmd_mcp(args: argparse.Namespace) -> int:
    from polar_api.mcp.server import run_stdio

    run_stdio(get_settings(), args.user)  # stdout carries the protocol: nothing else may print to it
    return 0


def _cmd_dev(args: argparse.Namespace) -> int:
    from polar_pipeline.orchestration.home import prepare_dagster_home

    prepare_dagster_home(get_settings())
    dagster = str(Path(sys.executable).parent / "dagster")  # the venv's, whether or not it is on PATH
    command = [dagster, "dev", "-m", "polar_pipeline.definitions", "-h", args.host, "-p", str(args.port)]
    return subprocess.call(command, env=os.environ.copy())


def _cmd_dagster(args: argparse.Namespace) -> int:
    from polar_pipeline.orchestration.home import exec_dagster_process

    exec_dagster_process(get_settings(), args.process, args.host, args.port)  # becomes Dagster's process


def _cmd_sql(args: argparse.Namespace) -> int:
    from polar_pipeline.sql_shell import main as sql_main

    return sql_main(get_settings().snapshots_dir, args.statement, args.format, args.output)


def _confirmed(question: str, assume_yes: bool) -> bool:
    """``--yes``, or a "y" typed at a terminal; without a terminal and without ``--yes``: no."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print(f"{question}\npolar-flow: not confirmed: pass --yes to run without a terminal", file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _cmd_users_delete(args: argparse.Namespace) -> int:
    from polar_pipeline.user_deletion import confirmation_prompt, delete_user

    settings = get_settings()
    if not _confirmed(confirmation_prompt(settings, args.user), args.yes):
        print("nothing deleted")
        return 1
    print(delete_user(settings, args.user, deregister=not args.keep_registration).describe())
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    from polar_pipeline.backup import backup

    print(backup(get_settings(), args.path, include_key=not args.without_key).describe())
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    from polar_pipeline.backup import restore, restore_prompt

    settings = get_settings()
    if not _confirmed(restore_prompt(settings, args.path), args.yes):
        print("nothing restored")
        return 1
    print(restore(settings, args.path).describe())
    return 0


def _cmd_connect(args: argparse.Namespace) -> int:
    from polar_pipeline.oauth import run_connect

    outcome = run_connect(
        get_settings(), args.user, port=args.port, open_browser=not args.no_browser, timeout_s=args.timeout
    )
    return 0 if outcome.ok else 1


def _cmd_status(args: argparse.Namespace) -> int:
    from polar_pipeline.status import status_json, status_report

    settings = get_settings()
    if args.json:
        print(json.dumps(status_json(settings), indent=2))
    else:
        print(status_report(settings), end="")
    return 0


def _cmd_demo(_: argparse.Namespace) -> int:
    from polar_pipeline.demo import run_demo

    return run_demo()


Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _add_simulator(sub: Subcommands) -> None:
    sim = sub.add_parser("simulator", help="run the loopback AccessLink v3 simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=cli_args.port, default=8765, help="1..65535 (default 8765)")
    sim.add_argument("--seed", type=cli_args.seed, default=42)
    sim.add_argument("--users", type=cli_args.positive, default=3, help="simulated users, >= 1 (default 3)")
    sim.add_argument(
        "--today",
        type=cli_args.iso_date,
        help="simulated date YYYY-MM-DD (default: POLAR_TODAY, else the real date)",
    )
    sim.add_argument("--history-days", type=cli_args.positive, default=730, help="days of history, >= 1")
    sim.add_argument(
        "--faults",
        type=cli_args.fault_config,
        help="JSON object of FaultConfig fields, e.g. '{\"server_error_rate\": 0.1}'",
    )
    sim.add_argument(
        "--personas",
        type=cli_args.personas,
        help="comma-separated persona cycle (default: the four fixed-offset ones); "
        "helsinki_night_owl lives in a DST zone",
    )
    sim.set_defaults(handler=_cmd_simulator, command_parser=sim)


def _add_users(sub: Subcommands) -> None:
    users = sub.add_parser("users", help="manage users")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="register a user with AccessLink and store the token encrypted")
    add.add_argument(
        "--user", required=True, type=cli_args.user_id, help="user id (letters, digits, '_' or '-')"
    )
    add.add_argument(
        "--token", required=True, type=cli_args.nonempty, help="the user's AccessLink access token"
    )
    add.set_defaults(command_parser=add)
    users_list = users_sub.add_parser("list", help="list users")
    users_list.set_defaults(command_parser=users_list)
    zone = users_sub.add_parser(
        "set-zone", help="set the user's IANA time zone (records never overwrite it); default: from records"
    )
    zone.add_argument("--user", required=True, type=cli_args.user_id, help="user id")
    zone.add_argument("zone", type=cli_args.time_zone, help="an IANA time zone, e.g. Europe/Helsinki")
    zone.set_defaults(command_parser=zone)
    delete = users_sub.add_parser(
        "delete",
        help="de-register the user at AccessLink and remove everything of theirs (rows, samples, keys, runs)",
    )
    delete.add_argument("--user", required=True, type=cli_args.user_id, help="user id")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.add_argument(
        "--keep-registration",
        action="store_true",
        help="do not de-register at AccessLink (the person revoked the access already)",
    )
    delete.set_defaults(command_parser=delete, handler=_cmd_users_delete)
    users.set_defaults(handler=_cmd_users)


def _add_user_option(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--user",
        action="append",
        required=required,
        type=cli_args.user_id,
        help="user id (repeatable; " + ("at least one)" if required else "default: all users)"),
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """What every command running the main job takes besides its range: publishing and progress."""
    parser.add_argument("--no-publish", action="store_true", help="do not publish a snapshot afterwards")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="one line per finished step on stderr (default: when stderr is a terminal)",
    )


def _add_sync(sub: Subcommands) -> None:
    sync = sub.add_parser(
        "sync", help="run the main job (raw + marts) over users' last N days in one run, then publish"
    )
    _add_user_option(sync, required=False)
    sync.add_argument(
        "--days", type=cli_args.sync_days, default=28, help=f"1..{cli_args.MAX_SYNC_DAYS} (default 28)"
    )
    sync.add_argument("--until", type=cli_args.iso_date, help="last day YYYY-MM-DD (default: today)")
    _add_run_options(sync)
    sync.set_defaults(handler=_cmd_sync, check=_check_sync, command_parser=sync)


def _add_backfill(sub: Subcommands) -> None:
    backfill = sub.add_parser(
        "backfill",
        help="rebuild the users' days FROM..TO in one run of the main job, then publish",
        description=(
            "Rebuild the users' days FROM..TO (raw fetch, marts, analytics) in one run of pipeline_job, then "
            "publish. AccessLink serves only about the last 28 days: older days in the range are rebuilt "
            "from the raw records the warehouse already keeps (nothing stored is lost), and days never "
            "fetched stay empty. The range must lie between the start of the day axis and today."
        ),
    )
    _add_user_option(backfill, required=True)
    backfill.add_argument(
        "--from", dest="first_day", required=True, type=cli_args.iso_date, metavar="DATE", help="first day"
    )
    backfill.add_argument(
        "--to", dest="last_day", required=True, type=cli_args.iso_date, metavar="DATE", help="last day"
    )
    _add_run_options(backfill)
    backfill.set_defaults(handler=_cmd_backfill, check=_check_backfill, command_parser=backfill)


def _add_import(sub: Subcommands) -> None:
    imp = sub.add_parser(
        "import",
        help="import a Polar account export (zip or folder) for a user, rebuild the days it touched, publish",
        description=(
            "Store a Polar account export's sessions, activity, sleep and Nightly Recharge as raw records "
            "(source 'export'), rebuild the marts and analytics for the imported days plus 90 days after "
            "them in one run (no AccessLink calls), then publish. The user need not have connected "
            "AccessLink. The archive is kept under POLAR_HOME/imported/<user>/ (docs/polar-export.md)."
        ),
    )
    imp.add_argument("path", type=Path, help="the export zip, or the folder it was unpacked into")
    imp.add_argument("--user", required=True, type=cli_args.user_id, help="the user the export belongs to")
    _add_run_options(imp)
    imp.set_defaults(handler=_cmd_import, check=_check_import, command_parser=imp)


def _add_publish(sub: Subcommands) -> None:
    pub = sub.add_parser("publish", help="publish a new serving snapshot")
    pub.set_defaults(handler=_cmd_publish, command_parser=pub)


def _add_keys(sub: Subcommands) -> None:
    keys = sub.add_parser("keys", help="manage API keys (per user, or admin keys that read every user)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser(
        "create", help="create a key; the full key is printed alone on the last line"
    )
    owner = create.add_mutually_exclusive_group(required=True)
    owner.add_argument("--user", type=cli_args.user_id, help="the user this key may read")
    owner.add_argument("--admin", action="store_true", help="a key that reads every user")
    create.add_argument("--name", default="", help="a label to recognise the key by in `keys list`")
    create.add_argument(
        "--rate-limit", type=cli_args.positive, help="requests per minute, >= 1 (default 600)"
    )
    create.set_defaults(command_parser=create)
    revoke = keys_sub.add_parser("revoke", help="stop a key working (from the API's next request on)")
    revoke.add_argument("key_id", help="the key's id (key_…), as `keys list` shows it")
    revoke.set_defaults(command_parser=revoke)
    key_list = keys_sub.add_parser("list", help="list keys (never their secrets)")
    key_list.add_argument("--user", type=cli_args.user_id, help="only this user's keys")
    key_list.set_defaults(command_parser=key_list)
    keys.set_defaults(handler=_cmd_keys)


def _add_alerts(sub: Subcommands) -> None:
    alerts = sub.add_parser(
        "alerts", help="alert channels (Apprise URLs, stored encrypted, shown redacted) (docs/alerts.md)"
    )
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    add = alerts_sub.add_parser("add", help="add a channel: an Apprise URL checked before it is stored")
    add.add_argument("--user", required=True, type=cli_args.user_id, help="the user whose alerts it receives")
    add.add_argument(
        "url", help="an Apprise URL, e.g. json://host:port/path or mailto://user:pass@example.com"
    )
    add.add_argument("--label", default="", help="a name to recognise the channel by")
    add.set_defaults(command_parser=add)
    alerts_list = alerts_sub.add_parser("list", help="channels, their URLs redacted")
    alerts_list.add_argument("--user", type=cli_args.user_id, help="only this user's channels")
    alerts_list.set_defaults(command_parser=alerts_list)
    remove = alerts_sub.add_parser("remove", help="remove a channel (its URL is erased)")
    remove.add_argument("channel_id", help="the channel's id (ch_…), as `alerts list` shows it")
    remove.set_defaults(command_parser=remove)
    test = alerts_sub.add_parser("test", help="send a test notification to the user's channels now")
    test.add_argument("--user", required=True, type=cli_args.user_id, help="user id")
    test.add_argument("--channel", help="only this channel (ch_…)")
    test.set_defaults(command_parser=test)
    alerts.set_defaults(handler=_cmd_alerts)


def _add_api(sub: Subcommands) -> None:
    api = sub.add_parser("api", help="serve the REST API over the serving snapshot")
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    api.add_argument("--port", type=cli_args.port, default=8000, help="1..65535 (default 8000)")
    api.add_argument(
        "--workers",
        type=cli_args.api_workers,
        default=1,
        help=f"uvicorn worker processes, 1..{cli_args.MAX_API_WORKERS} (default 1)",
    )
    api.set_defaults(handler=_cmd_api, command_parser=api)


def _add_mcp(sub: Subcommands) -> None:
    mcp = sub.add_parser(
        "mcp", help="the MCP server over stdin/stdout, for a local client like Claude Desktop (docs/mcp.md)"
    )
    mcp.add_argument(
        "--user",
        type=cli_args.user_id,
        help="answer for this user only (a user_id naming another is refused); without it every call "
        "must name its user",
    )
    mcp.set_defaults(handler=_cmd_mcp, command_parser=mcp, check=_check_mcp)


def _add_dev(sub: Subcommands) -> None:
    dev = sub.add_parser("dev", help="dagster dev (webserver + daemon) with DAGSTER_HOME under POLAR_HOME")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=cli_args.port, default=3000, help="1..65535 (default 3000)")
    dev.set_defaults(handler=_cmd_dev, command_parser=dev)


def _add_dagster(sub: Subcommands) -> None:
    dagster = sub.add_parser(
        "dagster", help="prepare DAGSTER_HOME, then run Dagster's webserver or daemon alone (containers)"
    )
    dagster.add_argument("process", choices=("webserver", "daemon"))
    dagster.add_argument("--host", default="127.0.0.1", help="webserver: address to bind")
    dagster.add_argument("--port", type=cli_args.port, default=3000, help="webserver: 1..65535 (3000)")
    dagster.set_defaults(handler=_cmd_dagster, command_parser=dagster)


def _add_sql(sub: Subcommands) -> None:
    sql = sub.add_parser(
        "sql", help="SQL on the current serving snapshot, read-only (interactive without a statement)"
    )
    sql.add_argument("statement", nargs="?", help='e.g. "SELECT * FROM marts.daily_metrics LIMIT 5"')
    sql.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    sql.add_argument("--output", type=Path, help="the file --format parquet writes")
    sql.set_defaults(handler=_cmd_sql, command_parser=sql)


def _add_connect(sub: Subcommands) -> None:
    connect = sub.add_parser(
        "connect",
        help="connect a Polar account in the browser (OAuth, loopback callback), then sync and publish",
    )
    connect.add_argument("--user", required=True, type=cli_args.user_id, help="the user id to connect it as")
    connect.add_argument(
        "--port",
        type=cli_args.integer(0, 65535),
        default=0,
        help="loopback port of the callback (0: any free one; POLAR_CONNECT_REDIRECT_URL fixes it)",
    )
    connect.add_argument("--no-browser", action="store_true", help="only print the URL to open")
    connect.add_argument(
        "--timeout", type=cli_args.integer(10, 3600), default=300, help="seconds to wait for the consent"
    )
    connect.set_defaults(handler=_cmd_connect, command_parser=connect)


def _add_status(sub: Subcommands) -> None:
    status = sub.add_parser(
        "status", help="each user's last sync, last data day, freshness and failed checks; the snapshot's age"
    )
    status.add_argument("--json", action="store_true", help="the same facts as JSON")
    status.set_defaults(handler=_cmd_status, command_parser=status)


def _add_backup(sub: Subcommands) -> None:
    backup = sub.add_parser(
        "backup", help="a consistent copy of everything under POLAR_HOME, while the pipeline runs"
    )
    backup.add_argument("path", type=Path, help="a new (or empty) folder for the backup")
    backup.add_argument(
        "--without-key", action="store_true", help="leave out the key that decrypts the Polar tokens"
    )
    backup.set_defaults(handler=_cmd_backup, command_parser=backup)
    restore = sub.add_parser(
        "restore", help="verify a backup and bring it back (the current home is moved aside, not deleted)"
    )
    restore.add_argument("path", type=Path, help="a folder written by `polar-flow backup`")
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    restore.set_defaults(handler=_cmd_restore, command_parser=restore)


def _add_demo(sub: Subcommands) -> None:
    demo = sub.add_parser("demo", help="simulator + 3 users + history + materialize + API + Dagster UI")
    demo.set_defaults(handler=_cmd_demo, command_parser=demo)


SUBCOMMANDS = (
    _add_simulator,
    _add_users,
    _add_connect,
    _add_status,
    _add_sync,
    _add_backfill,
    _add_import,
    _add_publish,
    _add_keys,
    _add_alerts,
    _add_api,
    _add_mcp,
    _add_dev,
    _add_dagster,
    _add_sql,
    _add_backup,
    _add_demo,
)
"""One builder per subcommand, in the order ``--help`` lists them; a new command adds its own."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polar-flow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse and check every argument (a bad one exits 2, nothing started), then run the command."""
    import warnings

    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    args = build_parser().parse_args(argv)
    command_parser: argparse.ArgumentParser = args.command_parser
    handler: Any = args.handler
    try:
        check: Any = getattr(args, "check", None)
        if check is not None:
            check(args)
        return int(handler(args))
    except ArgumentProblem as problem:
        command_parser.error(str(problem))  # usage and the message on stderr, exit code 2
    except (ValueError, KeyError) as exc:
        print(f"polar-flow: error: {exc}", file=sys.stderr)
        return 2
    except OperationFailed as failure:
        print(f"polar-flow: error: {failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
