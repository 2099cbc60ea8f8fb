"""``polar-flow``: the command line (simulator, users, keys, sync, publish, api, sql, dev, demo)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from polar_pipeline.settings import get_settings


def _cmd_simulator(args: argparse.Namespace) -> int:
    import uvicorn

    from polar_pipeline.simulator import FaultConfig, SimulatorConfig, create_app
    from polar_pipeline.simulator.config import PERSONAS

    faults = FaultConfig(**json.loads(args.faults)) if args.faults else FaultConfig()
    config = SimulatorConfig(
        seed=args.seed,
        users=args.users,
        today=date.fromisoformat(args.today) if args.today else get_settings().today,
        history_days=args.history_days,
        faults=faults,
        personas=tuple(args.personas.split(",")) if args.personas else PERSONAS,
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


def _cmd_sync(args: argparse.Namespace) -> int:
    from polar_pipeline.operations import publish, sync

    settings = get_settings()
    until = date.fromisoformat(args.until) if args.until else None
    outcome = sync(settings, args.user or None, days=args.days, until=until)
    print(
        f"run {outcome.run_id}: {'success' if outcome.success else 'FAILED'} for {', '.join(outcome.users)} "
        f"days {outcome.first_day}..{outcome.last_day} ({outcome.partitions} partitions)"
    )
    if not outcome.success:
        return 1
    if not args.no_publish:
        print("published serving snapshot" if publish(settings) else "publish FAILED")
    return 0


def _cmd_publish(_: argparse.Namespace) -> int:
    from polar_pipeline.operations import publish

    return 0 if publish(get_settings()) else 1


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


def _cmd_dev(args: argparse.Namespace) -> int:
    from polar_pipeline.orchestration.home import prepare_dagster_home

    prepare_dagster_home(get_settings())
    dagster = str(Path(sys.executable).parent / "dagster")  # the venv's, whether or not it is on PATH
    command = [dagster, "dev", "-m", "polar_pipeline.definitions", "-h", args.host, "-p", str(args.port)]
    return subprocess.call(command, env=os.environ.copy())


def _cmd_sql(args: argparse.Namespace) -> int:
    from polar_pipeline.sql_shell import main as sql_main

    return sql_main(get_settings().snapshots_dir, args.statement, args.format, args.output)


def _cmd_demo(_: argparse.Namespace) -> int:
    from polar_pipeline.demo import run_demo

    return run_demo()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polar-flow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulator", help="run the loopback AccessLink v3 simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--users", type=int, default=3)
    sim.add_argument("--today", help="simulated date YYYY-MM-DD (default: POLAR_TODAY, else the real date)")
    sim.add_argument("--history-days", type=int, default=730)
    sim.add_argument("--faults", help="JSON of FaultConfig fields, e.g. '{\"server_error_rate\": 0.1}'")
    sim.add_argument(
        "--personas",
        help="comma-separated persona cycle (default: the four fixed-offset ones); "
        "helsinki_night_owl lives in a DST zone",
    )
    sim.set_defaults(handler=_cmd_simulator)

    users = sub.add_parser("users", help="manage users")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="register a user with AccessLink and store the token encrypted")
    add.add_argument("--user", required=True, help="user id (letters, digits, '_' or '-')")
    add.add_argument("--token", required=True, help="the user's AccessLink access token")
    users_sub.add_parser("list", help="list users")
    zone = users_sub.add_parser(
        "set-zone", help="set the user's IANA time zone (records never overwrite it); default: from records"
    )
    zone.add_argument("--user", required=True, help="user id")
    zone.add_argument("zone", help="an IANA time zone, e.g. Europe/Helsinki")
    users.set_defaults(handler=_cmd_users)

    sync = sub.add_parser(
        "sync", help="run the main job (raw + marts) over users' last N days in one run, then publish"
    )
    sync.add_argument("--user", action="append", help="user id (repeatable; default: all users)")
    sync.add_argument("--days", type=int, default=28)
    sync.add_argument("--until", help="last day YYYY-MM-DD (default: today)")
    sync.add_argument("--no-publish", action="store_true")
    sync.set_defaults(handler=_cmd_sync)

    pub = sub.add_parser("publish", help="publish a new serving snapshot")
    pub.set_defaults(handler=_cmd_publish)

    keys = sub.add_parser("keys", help="manage API keys (per user, or admin keys that read every user)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser(
        "create", help="create a key; the full key is printed alone on the last line"
    )
    owner = create.add_mutually_exclusive_group(required=True)
    owner.add_argument("--user", help="the user this key may read")
    owner.add_argument("--admin", action="store_true", help="a key that reads every user")
    create.add_argument("--name", default="", help="a label to recognise the key by in `keys list`")
    create.add_argument("--rate-limit", type=int, help="requests per minute (default 600)")
    revoke = keys_sub.add_parser("revoke", help="stop a key working (from the API's next request on)")
    revoke.add_argument("key_id", help="the key's id (key_…), as `keys list` shows it")
    key_list = keys_sub.add_parser("list", help="list keys (never their secrets)")
    key_list.add_argument("--user", help="only this user's keys")
    keys.set_defaults(handler=_cmd_keys)

    api = sub.add_parser("api", help="serve the REST API over the serving snapshot")
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    api.set_defaults(handler=_cmd_api)

    dev = sub.add_parser("dev", help="dagster dev (webserver + daemon) with DAGSTER_HOME under POLAR_HOME")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(handler=_cmd_dev)

    sql = sub.add_parser(
        "sql", help="SQL on the current serving snapshot, read-only (interactive without a statement)"
    )
    sql.add_argument("statement", nargs="?", help='e.g. "SELECT * FROM marts.daily_metrics LIMIT 5"')
    sql.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    sql.add_argument("--output", type=Path, help="the file --format parquet writes")
    sql.set_defaults(handler=_cmd_sql)

    demo = sub.add_parser("demo", help="simulator + 3 users + history + materialize + API + Dagster UI")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    args = build_parser().parse_args(argv)
    handler: Any = args.handler
    try:
        return int(handler(args))
    except (ValueError, KeyError) as exc:
        print(f"polar-flow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
