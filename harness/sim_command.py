"""``gridhil sim``: the simulated bench in real time, for controllers that run as their own process.

It starts every stand-in around one plant, writes the bench file that points drivers at them (with
a free loopback address under ``roles.controller`` where a controller started with that file will
serve its own face), prints where everything listens, and advances the plant with the wall clock
until SIGINT or SIGTERM; then it closes every port and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from harness.sim.bench import LOOPBACK, SimBench, free_loopback_port
from harness.sim.plant import PlantConfig, scaled_to_fleet


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="run the simulated bench in real time and write its bench file",
        description=__doc__,
    )
    parser.add_argument("--write-bench", type=Path, required=True, metavar="PATH", help="bench file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the plant (default 0)")
    parser.add_argument(
        "--packs", type=int, default=805, help="number of packs (default 805); PCS, racks, PV scale with it"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        bench = SimBench(scaled_to_fleet(PlantConfig(seed=args.seed), args.packs))
    except ValueError as error:
        print(f"gridhil sim: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with bench:
            controller = f"modbus+tcp://{LOOPBACK}:{free_loopback_port()}/1"
            try:
                args.write_bench.write_text(bench.bench_file(controller), encoding="utf-8")
            except OSError as error:
                print(f"gridhil sim: cannot write {args.write_bench}: {error}", file=sys.stderr)
                return 2
            _announce(bench, controller, args.write_bench)
            bench.run_realtime(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("gridhil sim: stopped; every port closed", flush=True)
    return 0


def _announce(bench: SimBench, controller: str, path: Path) -> None:
    print(f"gridhil sim: plant of {bench.plant.packs.n} packs, seed {bench.config.seed}, in real time")
    for role, resource in bench.resources.items():
        print(f"  {role:<11} {resource}")
    print(f"  {'pcs face':<11} {bench.pcs_face.resource}")
    print(f"  {'controller':<11} {controller}   (free: a controller started with the bench file serves here)")
    print(f"bench file: {path}")
    print("stop with Ctrl-C or SIGTERM", flush=True)
