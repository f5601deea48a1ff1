"""``gridhil controller``: the reference controller (or a broken variant) as its own process.

It connects to the plant's PCS/BMS face — the bench file's ``[sim] pcs``, or ``--pcs`` for a lab's
PCS — serves its own face at the bench file's ``roles.controller`` resource, and runs its control
loop on the wall clock until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

from drivers.errors import InstrumentError
from harness.bench_file import BenchFileError, load_bench_file
from harness.controller.reference import ControllerConfig
from harness.controller.runner import ControllerRunner
from harness.controller.variants import build_controller, variant_names


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "controller",
        help="run the reference controller (or a broken variant) against a bench's PCS face",
        description=__doc__,
    )
    parser.add_argument("--bench", type=Path, metavar="FILE", help="bench file (roles.controller, [sim] pcs)")
    parser.add_argument("--pcs", metavar="RESOURCE", help="the PCS/BMS face to drive (default: [sim] pcs)")
    parser.add_argument("--variant", metavar="NAME", help="a broken variant (see --list-variants)")
    parser.add_argument("--list-variants", action="store_true", help="print the variant names and exit")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.list_variants:
        print("\n".join(variant_names()))
        return 0
    try:
        runner = _runner(args)
    except (BenchFileError, ValueError) as error:
        print(f"gridhil controller: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with runner:
            name = args.variant or "reference"
            print(f"gridhil controller: {name} driving {runner.link.resource}", flush=True)
            print(f"  serving its face at {runner.face_resource}; stop with Ctrl-C or SIGTERM", flush=True)
            runner.run_realtime(stop)
    except InstrumentError as error:
        print(f"gridhil controller: {error}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("gridhil controller: stopped", flush=True)
    return 0


def _runner(args: argparse.Namespace) -> ControllerRunner:
    if args.bench is None:
        raise ValueError("--bench FILE is needed (its roles.controller says where to serve)")
    spec = load_bench_file(args.bench)
    pcs = args.pcs or (spec.sim.pcs if spec.sim is not None else None)
    if pcs is None:
        raise ValueError(f"{args.bench}: no [sim] pcs and no --pcs: which PCS face should it drive?")
    role = spec.roles.get("controller")
    if role is None:
        raise ValueError(f"{args.bench}: no [roles.controller]: where should the controller serve its face?")
    address = urlsplit(role.resource)
    if address.scheme != "modbus+tcp" or address.hostname is None or address.port is None:
        raise ValueError(f"{args.bench}: [roles.controller] resource {role.resource!r} is not modbus+tcp://host:port/N")
    controller = build_controller(args.variant, ControllerConfig())
    return ControllerRunner(controller, pcs, face_host=address.hostname, face_port=address.port)
