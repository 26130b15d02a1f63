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
    from device import config

    cfg = config.load(args.config)
    from device import agent

    return agent.run(cfg, scenario_file=args.scenario)


def _hub(args: argparse.Namespace) -> int:
    from hub import config, service

    return service.run(config.load(args.config))


def _verify(args: argparse.Namespace) -> int:
    from hub import verify

    if args.db:
        url = args.db if "://" in args.db else f"sqlite:///{args.db}"
    else:
        from hub import config

        url = config.load(args.config).db_url()
    return verify.run(url)


def _demo(args: argparse.Namespace) -> int:
    from hub import demo

    return demo.run(
        port=args.port,
        data_dir=args.data,
        duration=args.duration,
        admin_password=args.admin_password,
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
    p.add_argument("--config", required=True, help="the unit's YAML file (see config/*.example.yaml)")
    p.add_argument("--scenario", help="play a scripted scenario (mock pins and stand-in reader only)")
    p.set_defaults(func=_device)

    p = sub.add_parser(
        "hub",
        help="run the hub: ingest events, store the audit trail, publish station policies",
        description="Run the hub service, configured by its YAML file.",
    )
    p.add_argument("--config", required=True, help="the hub's YAML file (see config/hub.example.yaml)")
    p.set_defaults(func=_hub)

    p = sub.add_parser(
        "verify",
        help="check the audit trail's hash chain and name the first altered or removed row",
        description="Recompute the hash chain of stored events. Exit 0 if intact, 1 if not.",
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--config", help="the hub's YAML file (its database is checked)")
    g.add_argument("--db", help="a database URL or SQLite file path")
    p.set_defaults(func=_verify)

    p = sub.add_parser(
        "demo",
        help="run broker, hub and simulated stations on this machine, with a web page to open",
        description="Start mosquitto on loopback, the hub and simulated key cabinets with a scenario.",
    )
    p.add_argument("--port", type=int, default=8080, help="web page port (default 8080)")
    p.add_argument("--data", default=None, help="folder for databases and logs (default: a temp folder)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--admin-password", default=None, help="password for the demo admin user")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"kagiban: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
