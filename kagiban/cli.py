"""The ``kagiban`` command: one program, a subcommand per job.

Each subcommand imports only its own side (the device never loads the hub, the hub never
loads hardware libraries).
"""
from __future__ import annotations

import argparse
import logging
import sys

from kagiban.configfile import ConfigError


def _device(args: argparse.Namespace) -> int:
    if not args.config:
        print("kagiban device: give the unit's YAML file: kagiban device --config /etc/kagiban/station.yaml",
              file=sys.stderr)
        return 2
    from device import unit_file
    from device.missing_library import LibraryMissing

    cfg = unit_file.load(args.config)
    from device import agent

    try:
        return agent.run(cfg, scenario_file=args.scenario)
    except LibraryMissing as exc:
        # A configuration error for this machine: one line, and exit 2 so systemd does not
        # restart it (RestartPreventExitStatus=2); the traceback only when asked for.
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"kagiban device: {args.config}: {exc}", file=sys.stderr)
        return 2


def _device_enroll(args: argparse.Namespace) -> int:
    """Make the unit's signing key (mode 600) and print what to run at the hub."""
    import os
    from pathlib import Path

    from device import unit_file
    from kagiban.event_signing import create_station_key, load_station_key
    from kagiban.signing import key_id, public_key_b64

    cfg = unit_file.load(args.config)
    path = cfg.station_key_path()
    replace = ""
    if path.exists() and args.replace:
        old = key_id(load_station_key(path).public_key())
        # The new key is made beside the old one and put in its place: never a moment without one.
        fresh = Path(f"{path}.new")
        fresh.unlink(missing_ok=True)
        key = create_station_key(fresh)
        os.replace(fresh, path)
        print(f"kagiban: replaced the station key {old} (the hub keeps its public half to verify "
              "what it signed)", file=sys.stderr)
        replace = " --replace"
    elif path.exists():
        key = load_station_key(path)
        print(f"kagiban: {path} exists: this unit is enrolled already (--replace makes a new key)", file=sys.stderr)
    else:
        key = create_station_key(path)
        print(f"kagiban: created the station key {path} (mode 600)", file=sys.stderr)
    print(f"station {cfg.station.id} (site {cfg.site}): key id {key_id(key.public_key())}")
    print("run on the hub:")
    print(f"  kagiban hub station-key add --config /etc/kagiban/hub.yaml --station {cfg.station.id} "
          f"--public-key {public_key_b64(key)}{replace}")
    return 0


# What `kagiban hub` needs and how to give it, in one line a newcomer can copy.
HUB_CONFIG_HINT = "give the hub's YAML file: {command} --config /etc/kagiban/hub.yaml (example: config/hub.example.yaml)"


def _hub(args: argparse.Namespace) -> int:
    # Checked before the hub's modules are imported: nothing is logged before this line.
    if not args.config:
        print(f"kagiban hub: {HUB_CONFIG_HINT.format(command='kagiban hub')}", file=sys.stderr)
        return 2
    from hub import config, service
    from hub.store.migrate import StoreNewer

    try:
        return service.run(config.load(args.config))
    except StoreNewer as exc:  # code older than the store: it must not start on it
        print(f"kagiban hub: {exc}", file=sys.stderr)
        return 2


def _hub_policy_key(args: argparse.Namespace) -> int:
    from hub import config
    from hub.registry.policy import load_signing_key
    from kagiban.signing import key_id, public_key_b64

    if not args.config:
        print(f"kagiban hub policy-key: {HUB_CONFIG_HINT.format(command='kagiban hub policy-key')}", file=sys.stderr)
        return 2
    path = config.load(args.config).policy_key_path()
    existed = path.exists()
    key = load_signing_key(path)
    if not existed:
        print(f"kagiban: created the policy signing key {path} (mode 600)", file=sys.stderr)
    # The lines to paste into every station's YAML file.
    print("policy:")
    print(f"  public_key: \"{public_key_b64(key)}\"   # key id {key_id(key.public_key())}")
    return 0


def _policy_targets(engine, cfg) -> dict[str, str]:
    """Every station that gets a policy (id -> site): seen ones and configured ones."""
    from sqlalchemy import select

    from hub.store.schema import stations

    with engine.connect() as conn:
        seen = {r.station: r.site for r in conn.execute(select(stations.c.station, stations.c.site))}
    return {**seen, **cfg.known_stations()}


def _hub_policy_key_rotate(args: argparse.Namespace) -> int:
    """``kagiban hub policy-key rotate``: a new policy key, announced under the old one."""
    from hub import config
    from hub.registry.policy_control import issue_key_changes, rotate_key_file
    from hub.store.timestamps import now_utc
    from kagiban.signing import key_id, public_key_b64

    def action(engine, args) -> int:
        cfg = config.load(args.config)
        path = cfg.policy_key_path()
        if not path.exists():
            print(f"kagiban: no policy key at {path} yet: run `kagiban hub policy-key` first", file=sys.stderr)
            return 1
        targets = _policy_targets(engine, cfg)
        old, new, kept = rotate_key_file(path)
        files = issue_key_changes(cfg.policy_control_dir(), old, new, targets, now_utc())
        print(f"policy key {key_id(old.public_key())} -> {key_id(new.public_key())}; old key kept as {kept}")
        print(f"key changes signed with the old key for {len(files)} station(s) in {cfg.policy_control_dir()}")
        print("restart the hub: it publishes the key changes, then every policy signed with the new key.")
        print("new stations' YAML files (existing ones follow the key change):")
        print("policy:")
        print(f"  public_key: \"{public_key_b64(new)}\"   # key id {key_id(new.public_key())}")
        return 0

    return _on_hub_store(args, "kagiban hub policy-key rotate", action, (OSError, ValueError))


def _hub_policy_reset(args: argparse.Namespace) -> int:
    """``kagiban hub policy-reset --station ID``: a signed reset for one pinned station."""
    from hub import config
    from hub.registry.policy import load_signing_key
    from hub.registry.policy_control import issue_reset
    from hub.store.timestamps import now_utc

    def action(engine, args) -> int:
        cfg = config.load(args.config)
        site = _policy_targets(engine, cfg).get(args.station)
        if site is None:
            print(f"kagiban: unknown station {args.station!r}", file=sys.stderr)
            return 1
        path = issue_reset(cfg.policy_control_dir(), load_signing_key(cfg.policy_key_path()), site,
                           args.station, now_utc())
        print(f"reset for {site}/{args.station} written to {path}")
        print("the running hub publishes it within seconds; the station takes the next valid policy "
              "whatever version it holds (once; valid for a day)")
        return 0

    return _on_hub_store(args, "kagiban hub policy-reset", action, (OSError, ValueError))


def _on_hub_store(args: argparse.Namespace, command: str, action, errors: tuple[type[Exception], ...] = ()) -> int:
    """Run ``action(engine, args)`` against the hub's store (migrated first, except a failover
    pair's: hub.store.migrate.ready_for_command); an error of ``errors`` is printed on one line
    and exits 1."""
    from hub import config
    from hub.store import migrate
    from hub.store.db import make_engine

    if not args.config:
        print(f"{command}: {HUB_CONFIG_HINT.format(command=command)}", file=sys.stderr)
        return 2
    cfg = config.load(args.config)
    engine = make_engine(cfg.db_url())
    try:
        try:
            migrate.ready_for_command(engine, in_pair=cfg.failover.enabled)
        except (migrate.StoreNewer, migrate.StoreBehind) as exc:
            print(f"{command}: {exc}", file=sys.stderr)
            return 1
        return action(engine, args)
    except errors as exc:
        print(f"kagiban: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _hub_user(args: argparse.Namespace) -> int:
    """``kagiban hub user ACTION``: the action run against the hub's store (migrated)."""
    return _on_hub_store(args, f"kagiban hub user {args.user_command}", args.user_action)


def _hub_station_key(args: argparse.Namespace) -> int:
    """``kagiban hub station-key ACTION`` against the hub's store (migrated)."""
    from hub.stations.keys import StationKeyError

    return _on_hub_store(args, f"kagiban hub station-key {args.key_command}", args.key_action, (StationKeyError,))


def _station_key_add(engine, args: argparse.Namespace) -> int:
    from hub.stations.keys import add_key

    key, retired = add_key(engine, args.station, args.public_key, replace=args.replace, note=args.note)
    for old in retired:
        print(f"kagiban: retired key {old.key_id} of {old.station}: it still verifies what it signed, "
              "and signs no new outbox", file=sys.stderr)
    print(f"kagiban: key {key.key_id} registered for {key.station}: its events must now be signed with it",
          file=sys.stderr)
    return 0


def _station_key_list(engine, args: argparse.Namespace) -> int:
    from hub.stations.keys import list_keys

    for key in list_keys(engine, args.station):
        state = f"retired {key.retired_at}" if key.retired_at else "active"
        print(f"{key.station}\t{key.key_id}\t{key.public_key}\tadded {key.added_at}\t{state}\t{key.note}".rstrip())
    return 0


def _station_key_retire(engine, args: argparse.Namespace) -> int:
    from hub.stations.keys import retire_key

    key = retire_key(engine, args.key_id)
    print(f"kagiban: retired key {key.key_id} of {key.station}", file=sys.stderr)
    return 0


def _hub_token(args: argparse.Namespace) -> int:
    """``kagiban hub token ACTION`` against the hub's store (migrated)."""
    from hub.accounts.tokens import TokenError

    return _on_hub_store(args, f"kagiban hub token {args.token_command}", args.token_action, (TokenError,))


def _token_add(engine, args: argparse.Namespace) -> int:
    from hub.accounts.tokens import create

    made = create(engine, args.username, args.name, actor=args.actor)
    if args.file:
        from kagiban.signing import write_private_file

        # Prometheus' authorization.credentials_file: the token alone, mode 600.
        write_private_file(args.file, made.token.encode() + b"\n", exclusive=True)
        print(f"kagiban: token {made.info.hint} ({made.info.name}) of {args.username} written to {args.file} "
              "(mode 600)", file=sys.stderr)
    else:
        print(made.token)
        print(f"kagiban: token {made.info.hint} ({made.info.name}) of {args.username}: shown only this once",
              file=sys.stderr)
    return 0


def _token_list(engine, args: argparse.Namespace) -> int:
    from hub.accounts.tokens import list_tokens

    for t in list_tokens(engine, args.username):
        state = f"revoked {t.revoked_at} by {t.revoked_by}" if t.revoked_at else "active"
        print(f"{t.username}\t{t.hint}\t{t.name}\tmade {t.created_at}\tlast used {t.last_used_at or 'never'}\t{state}")
    return 0


def _token_revoke(engine, args: argparse.Namespace) -> int:
    from hub.accounts.tokens import revoke

    if not revoke(engine, args.key_id, actor=args.actor):
        print(f"kagiban: no unrevoked token {args.key_id}", file=sys.stderr)
        return 1
    print(f"kagiban: token {args.key_id} revoked: it is refused from now on", file=sys.stderr)
    return 0


def _read_password(args: argparse.Namespace) -> str | None:
    import getpass
    import os

    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            print(f"kagiban: the environment variable {args.password_env} is empty or unset", file=sys.stderr)
            return None
        return value
    first = getpass.getpass(f"Password for {args.username}: ")
    if getpass.getpass("The same password again: ") != first:
        print("kagiban: the two passwords differ; nothing was changed", file=sys.stderr)
        return None
    return first


def _user_add(engine, args: argparse.Namespace) -> int:
    from hub.accounts.users import UserError, add_user

    password = _read_password(args)
    if password is None:
        return 1
    try:
        add_user(engine, args.username, password, args.role, display_name=args.display_name,
                 language=args.language, replace=args.replace)
    except UserError as exc:
        print(f"kagiban: {exc}", file=sys.stderr)
        return 1
    print(f"kagiban: user {args.username} ({args.role}) can now sign in", file=sys.stderr)
    return 0


def _user_list(engine, args: argparse.Namespace) -> int:
    from hub.accounts.users import list_users

    for user in list_users(engine, include_inactive=args.all):
        state = "" if user["active"] else "  (deactivated)"
        print(f"{user['username']}\t{user['role']}\t{user['display_name']}\t{user['language']}{state}")
    return 0


def _user_sites(engine, args: argparse.Namespace) -> int:
    from hub import config
    from hub.accounts.sites import SiteScopeError, set_sites, sites_of
    from hub.accounts.users import list_users
    from hub.ledgers.closeout import sites_known

    found = [u for u in list_users(engine) if u["username"] == args.username]
    if not found:
        print(f"kagiban: no active user {args.username}", file=sys.stderr)
        return 1
    if args.site or args.all_sites:
        known = sites_known(engine, config.load(args.config))
        try:
            set_sites(engine, "cli", args.username, [] if args.all_sites else args.site, known=known)
        except SiteScopeError as exc:
            print(f"kagiban: {exc}", file=sys.stderr)
            return 1
    chosen = sorted(sites_of(engine, int(found[0]["id"])))
    print(f"{args.username}\t{','.join(chosen) if chosen else '(every site)'}")
    return 0


def _user_deactivate(engine, args: argparse.Namespace) -> int:
    from hub.accounts.users import deactivate

    if not deactivate(engine, args.username):
        print(f"kagiban: no active user {args.username}", file=sys.stderr)
        return 1
    from hub.accounts.tokens import revoke_all  # so reactivating the user later brings none of them back

    revoked = revoke_all(engine, args.username, actor="cli")
    print(f"kagiban: user {args.username} can no longer sign in ({revoked} API token(s) revoked)", file=sys.stderr)
    return 0


def _audit_public_key(args: argparse.Namespace, cfg):
    """The audit public key for ``verify --checkpoints``: --audit-key (base64, or a file holding
    it), else the hub's own key file named by --config; None if neither is there."""
    from pathlib import Path

    from kagiban.signing import load_private_key, parse_public_key

    if args.audit_key:
        value = args.audit_key
        if Path(value).is_file():
            value = Path(value).read_text(encoding="utf-8").split()[0]
        return parse_public_key(value)
    if cfg is not None and cfg.audit_key_path().is_file():
        return load_private_key(cfg.audit_key_path()).public_key()
    return None


def _verify(args: argparse.Namespace) -> int:
    from hub.audit import verify

    cfg = None
    if args.db:
        url = args.db if "://" in args.db else f"sqlite:///{args.db}"
    else:
        from hub import config

        cfg = config.load(args.config)
        url = cfg.db_url()
    key = None
    if args.checkpoints:
        try:
            key = _audit_public_key(args, cfg)
        except (OSError, ValueError) as exc:
            print(f"kagiban verify: --audit-key: {exc}", file=sys.stderr)
            return 2
    return verify.run(url, checkpoints=args.checkpoints, audit_key=key)


def _store_url(value: str) -> str:
    """A database URL as given, or a SQLite file path made into one."""
    return value if "://" in value else f"sqlite:///{value}"


def _hub_migrate_store(args: argparse.Namespace) -> int:
    from hub.audit import verify
    from hub.store.db import make_engine
    from hub.store.transfer import TransferError, copy_store

    source_url, target_url = _store_url(args.source), _store_url(args.target)
    print(f"verifying the source {_shown(source_url)}")
    if verify.run(source_url) != 0:
        print("kagiban hub migrate-store: the source's trail does not verify: nothing copied", file=sys.stderr)
        return 1
    source, target = make_engine(source_url), make_engine(target_url)
    try:
        report = copy_store(source, target)
    except TransferError as exc:
        print(f"kagiban hub migrate-store: {exc}", file=sys.stderr)
        return 2
    finally:
        source.dispose()
        target.dispose()
    print(f"copied {report.total} rows in {len(report.rows)} tables (revision {report.revision}); "
          f"events: {report.rows.get('events', 0)}")
    print(f"verifying the copy {_shown(target_url)}")
    code = verify.run(target_url)
    if code == 0:
        print("done: set database: url: in the hub's file to the new store, then start the hub")
    return code


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _hub_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hub import config
    from hub.store.transfer import TransferError, backup_postgres, backup_sqlite
    from hub.store.db import is_sqlite

    if not args.db and not getattr(args, "config", None):
        print(f"kagiban hub backup: {HUB_CONFIG_HINT.format(command='kagiban hub backup --to FILE')}, "
              "or --db URL", file=sys.stderr)
        return 2
    url = _store_url(args.db) if args.db else config.load(args.config).db_url()
    try:
        made = backup_sqlite(url, Path(args.to)) if is_sqlite(url) else backup_postgres(url, Path(args.to))
    except TransferError as exc:
        print(f"kagiban hub backup: {exc}", file=sys.stderr)
        return 2
    how = "SQLite online backup" if is_sqlite(url) else "pg_dump custom format (restore: pg_restore)"
    print(f"backed up {_shown(url)} to {made} ({how}); check it with: kagiban verify --db "
          + (str(made) if is_sqlite(url) else "URL-OF-THE-RESTORED-DATABASE"))
    return 0


def _hub_audit_key(args: argparse.Namespace) -> int:
    from hub import config
    from hub.audit.checkpoints import load_audit_key
    from kagiban.signing import key_id, public_key_b64

    if not args.config:
        print(f"kagiban hub audit-key: {HUB_CONFIG_HINT.format(command='kagiban hub audit-key')}", file=sys.stderr)
        return 2
    path = config.load(args.config).audit_key_path()
    existed = path.exists()
    key = load_audit_key(path)
    if not existed:
        print(f"kagiban: created the audit signing key {path} (mode 600)", file=sys.stderr)
    # Kept with the checkpoint log, off the hub: `kagiban verify --checkpoints PATH --audit-key KEY`.
    print(f"{public_key_b64(key)}   # audit key id {key_id(key.public_key())}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from demo import run as demo

    return demo.run(
        port=args.port,
        data_dir=args.data,
        duration=args.duration,
        admin_password=args.admin_password,
        speed=args.speed,
        repeat=args.repeat,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kagiban",
        description="kagiban (鍵番): who used the keys, the shredder, the printer and the doors.",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "device",
        help="run a station unit (badge reader, door switch, camera) and send its events to the hub",
        description="Run the Pi agent for one station, configured by its YAML file.",
    )
    # Not required=True here: `kagiban device enroll --config FILE` gives it after the subcommand.
    p.add_argument("--config", help="the unit's YAML file (required; see config/*.example.yaml)")
    p.add_argument("--scenario", help="play a scripted scenario (mock pins and stand-in reader only)")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of a hardware library that cannot be loaded")
    p.set_defaults(func=_device)
    device_commands = p.add_subparsers(dest="device_command", metavar="SUBCOMMAND")
    q = device_commands.add_parser(
        "enroll",
        help="make this unit's signing key and print the line that registers it at the hub",
        description="Create the station's Ed25519 signing key (mode 600, never leaves the unit) at "
        "signing.key_file or station.key in the storage folder, and print the `kagiban hub "
        "station-key add` line to run at the hub. With the key already there, print that line again.",
    )
    q.add_argument("--config", required=True, help="the unit's YAML file")
    q.add_argument("--replace", action="store_true",
                   help="make a new key in place of the existing one (a rebuilt unit, a key that leaked)")
    q.set_defaults(func=_device_enroll)

    p = sub.add_parser(
        "hub",
        help="run the hub: ingest events, store the audit trail, publish station policies",
        description="Run the hub service, configured by its YAML file.",
        # --config is needed either way; argparse's own usage line would show it as optional.
        usage="kagiban hub --config FILE\n       kagiban hub SUBCOMMAND ... --config FILE",
    )
    # Not required=True here: `kagiban hub SUBCOMMAND --config FILE` gives it after the subcommand;
    # _hub says how to give it when it is missing.
    p.add_argument("--config", metavar="FILE", help="the hub's YAML file (required; see config/hub.example.yaml)")
    p.set_defaults(func=_hub)
    hub_commands = p.add_subparsers(dest="hub_command", metavar="SUBCOMMAND")
    # `kagiban hub SUBCOMMAND --config FILE` works too; SUPPRESS keeps a --config given before
    # the subcommand when none follows it.
    hub_config = argparse.ArgumentParser(add_help=False)
    hub_config.add_argument("--config", default=argparse.SUPPRESS, help="the hub's YAML file")
    q = hub_commands.add_parser(
        "policy-key",
        parents=[hub_config],
        help="print the public key of the hub's policy signing key, for the stations' YAML files",
        description="Print the `policy: public_key:` lines every station's YAML file needs; "
        "creates the signing key (mode 600) if it does not exist yet.",
    )
    q.set_defaults(func=_hub_policy_key)
    key_commands = q.add_subparsers(dest="policy_key_command", metavar="ACTION")
    r = key_commands.add_parser(
        "rotate",
        parents=[hub_config],
        help="replace the policy signing key; stations are told under the old key",
        description="Make a new policy signing key (the old one is kept beside it, mode 600) and, for "
        "every station, a key change signed with the old key; the hub, once restarted, publishes "
        "them and then every policy signed with the new key. See docs/security/policy.md.",
    )
    r.set_defaults(func=_hub_policy_key_rotate)
    q = hub_commands.add_parser(
        "policy-reset",
        parents=[hub_config],
        help="let a station pinned by a wrong policy version take the hub's policy again",
        description="Write a reset signed with the policy key, naming one station, with a nonce and "
        "the time: the running hub publishes it once and the station then takes the next valid "
        "policy whatever version it holds. A copy of it is refused.",
    )
    q.add_argument("--station", required=True, help="the station id")
    q.set_defaults(func=_hub_policy_reset)
    q = hub_commands.add_parser(
        "audit-key",
        parents=[hub_config],
        help="print the public key of the hub's audit (checkpoint) signing key, for verify --checkpoints",
        description="Print the public key `kagiban verify --checkpoints` checks the hub's signed checkpoints "
        "with; creates the audit signing key (mode 600) if it does not exist yet.",
    )
    q.set_defaults(func=_hub_audit_key)
    q = hub_commands.add_parser(
        "migrate-store",
        help="copy the hub's store (SQLite) into a new, empty store (PostgreSQL), trail intact",
        description="Verify the source's trail, copy every table row for row into the destination "
        "(migrated first; it must be empty; one transaction), then verify the copy. Stop the hub "
        "first. Each of --from and --to is a database URL (postgresql+psycopg://USER@HOST/DB; the "
        "password from PGPASSWORD or ~/.pgpass) or a SQLite file path. docs/store.md.",
    )
    q.add_argument("--from", dest="source", required=True, metavar="URL", help="the store to copy")
    q.add_argument("--to", dest="target", required=True, metavar="URL", help="the new, empty store")
    q.set_defaults(func=_hub_migrate_store)
    q = hub_commands.add_parser(
        "backup",
        parents=[hub_config],
        help="back the hub's store up: SQLite online backup, or pg_dump for PostgreSQL",
        description="SQLite: a consistent copy of the database file with SQLite's online backup "
        "(safe while the hub runs). PostgreSQL: pg_dump in its custom format (restore with "
        "pg_restore). See docs/store.md, also for base backups and point-in-time recovery.",
    )
    q.add_argument("--db", help="a database URL or SQLite file path (instead of --config)")
    q.add_argument("--to", required=True, metavar="FILE", help="the backup file to write (must not exist)")
    q.set_defaults(func=_hub_backup)
    q = hub_commands.add_parser(
        "user",
        help="add, list or deactivate the people who sign in to the web page, and set their sites",
        description="Web page users: admin, supervisor (acknowledges alerts), auditor (reads, exports).",
    )
    q.set_defaults(func=_hub_user)
    user_commands = q.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    u = user_commands.add_parser(
        "add",
        parents=[hub_config],
        # No abbreviations: `--password SECRET` must fail, not pass as --password-env.
        allow_abbrev=False,
        help="add a user (the password is read from --password-env, else asked twice)",
        description="Add a web page user. The password never goes on the command line: it comes "
        "from the environment variable named by --password-env, or is asked for twice.",
    )
    u.add_argument("--username", required=True)
    u.add_argument("--role", required=True, choices=["admin", "supervisor", "auditor", "staff"])
    u.add_argument("--display-name", default="", help="the name shown on the page (default: the username)")
    u.add_argument("--language", default="ja", choices=["ja", "en"], help="page language (default ja)")
    u.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
    u.add_argument("--replace", action="store_true",
                   help="if the user exists: set the new password, role and name, and reactivate")
    u.set_defaults(user_action=_user_add)
    u = user_commands.add_parser("list", parents=[hub_config], help="list active users",
                                 description="List the web page users.")
    u.add_argument("--all", action="store_true", help="include deactivated users")
    u.set_defaults(user_action=_user_list)
    u = user_commands.add_parser(
        "sites", parents=[hub_config],
        help="show or set the sites a supervisor or auditor sees",
        description="A supervisor sees only the sites they are responsible for, an auditor the sites "
        "they audit. With --site (repeat it) the user sees exactly those; --all-sites: every site again "
        "(also the case with none set). Admins see every site. Changes go to the registry change log.")
    u.add_argument("--username", required=True)
    which = u.add_mutually_exclusive_group()
    which.add_argument("--site", action="append", default=[], metavar="SITE", help="a site the user sees")
    which.add_argument("--all-sites", action="store_true", help="the user sees every site")
    u.set_defaults(user_action=_user_sites)
    u = user_commands.add_parser("deactivate", parents=[hub_config],
                                 help="stop a user from signing in (the record stays)",
                                 description="Deactivate a web page user; acknowledgements keep naming them.")
    u.add_argument("--username", required=True)
    u.set_defaults(user_action=_user_deactivate)
    q = hub_commands.add_parser(
        "station-key",
        help="register, list or retire the stations' signing keys",
        description="Each station signs its events with its own key (made by `kagiban device enroll`); "
        "the hub accepts and verifies them against the keys registered here.",
    )
    q.set_defaults(func=_hub_station_key)
    key_commands = q.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    u = key_commands.add_parser("add", parents=[hub_config], help="register a station's public key",
                                description="Register the public key `kagiban device enroll` printed.")
    u.add_argument("--station", required=True)
    u.add_argument("--public-key", required=True, help="base64, as printed by kagiban device enroll")
    u.add_argument("--replace", action="store_true",
                   help="the unit was swapped or rebuilt: retire its active key (old rows still verify)")
    u.add_argument("--note", default="", help="e.g. the unit's serial number")
    u.set_defaults(key_action=_station_key_add)
    u = key_commands.add_parser("list", parents=[hub_config], help="list registered keys",
                                description="List registered station keys, active and retired.")
    u.add_argument("--station", default=None)
    u.set_defaults(key_action=_station_key_list)
    u = key_commands.add_parser("retire", parents=[hub_config], help="retire a key (the unit is gone)",
                                description="Retire a key: it verifies what it signed, and signs no new outbox.")
    u.add_argument("--key-id", required=True)
    u.set_defaults(key_action=_station_key_retire)
    q = hub_commands.add_parser(
        "token",
        help="make, list or revoke personal API tokens (scripts, Prometheus)",
        description="Personal API tokens: sent as `Authorization: Bearer TOKEN` to the API and /metrics. "
        "Only a hash is stored; the token is shown once. Users make their own on their page (/account).",
    )
    q.set_defaults(func=_hub_token)
    token_commands = q.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    u = token_commands.add_parser("add", parents=[hub_config], help="make a token for a user",
                                  description="Make a token for an active user and print it once (or write "
                                  "it to --file, mode 600, for Prometheus' credentials_file).")
    u.add_argument("--username", required=True)
    u.add_argument("--name", required=True, help="what uses it, e.g. prometheus")
    u.add_argument("--file", default=None,
                   help="write the token here (mode 600; must not exist) instead of printing it")
    u.add_argument("--actor", default="cli", help="who the change log names (default: cli)")
    u.set_defaults(token_action=_token_add)
    u = token_commands.add_parser("list", parents=[hub_config], help="list tokens (never the tokens themselves)",
                                  description="List tokens: user, start, name, made, last used, revoked.")
    u.add_argument("--username", default=None)
    u.set_defaults(token_action=_token_list)
    u = token_commands.add_parser("revoke", parents=[hub_config], help="revoke a token (refused at once)",
                                  description="Revoke a token by its key id (the 8 characters after kgb_).")
    u.add_argument("--key-id", required=True)
    u.add_argument("--actor", default="cli", help="who the change log names (default: cli)")
    u.set_defaults(token_action=_token_revoke)

    p = sub.add_parser(
        "verify",
        help="check the audit trail (events chain, station signatures, side logs, checkpoints) and name "
        "what was altered",
        description="Recompute the hash chain of stored events, check every stored station signature "
        "against the registered keys and every outbox incarnation for missing seqs, and recompute the "
        "side logs (alerts, sign-ins, registry, quarantine, snapshots, station keys), one line per part; with "
        "--checkpoints, prove the store extends every signed checkpoint kept off the hub. Exit 0 if "
        "intact, 1 if not, 2 if it cannot tell.",
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--config", help="the hub's YAML file (its database is checked)")
    g.add_argument("--db", help="a database URL or SQLite file path")
    p.add_argument("--checkpoints", metavar="PATH",
                   help="the checkpoint log kept off the hub: a checkpoints.jsonl file, a syslog file, or a folder")
    p.add_argument("--audit-key", metavar="KEY",
                   help="the audit public key (base64, or a file holding it; `kagiban hub audit-key` prints it); "
                   "default: the key of the hub named by --config")
    p.set_defaults(func=_verify)

    p = sub.add_parser(
        "demo",
        help="run broker, hub and simulated stations on this machine, with a web page to open",
        description="Start mosquitto and a print server on loopback, the hub and simulated stations of "
        "every kind (key cabinets, shredder, printer, door), each playing a scenario.",
    )
    p.add_argument("--port", type=int, default=8080, help="web page port (default 8080)")
    p.add_argument("--data", default=None, help="folder for databases and logs (default: a temp folder)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--admin-password", default=None, help="password for the demo admin user")
    p.add_argument("--speed", type=float, default=70.0,
                   help="how many times faster than real time the office's day runs (default 70: about ten "
                        "minutes for 07:55-19:35)")
    p.add_argument("--repeat", action="store_true", help="play the day again and again instead of once")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # alembic (1.16+) logs seven "setup plugin" lines at INFO whenever it is imported (hub.store.migrate):
    # noise before anything the hub has to say.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"kagiban: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
