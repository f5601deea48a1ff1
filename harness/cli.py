"""The ``gridhil`` command line: one subcommand per job, each in its own module.

A subcommand module exposes ``register(subparsers)`` which adds its parser and sets ``handler`` to a
function taking the parsed arguments and returning the process exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from harness import (
    check_command,
    controller_command,
    fuzz_command,
    plant_demo,
    report_command,
    run_command,
    sim_command,
)

SUBCOMMANDS = (
    plant_demo,
    sim_command,
    check_command,
    controller_command,
    run_command,
    report_command,
    fuzz_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridhil",
        description="Hardware-in-the-loop test harness for battery-microgrid controllers feeding AI racks.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
