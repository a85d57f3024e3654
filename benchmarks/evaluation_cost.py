"""Evaluation cost of the program under Pulumi's mock engine, as a ratio to an empty Pulumi program.

Two figures, each the median of several rounds:
- cold: a fresh Python process that imports what the program imports and evaluates it once, as
  `pulumi preview` starts the program (wall and CPU seconds of the child process);
- warm: one more evaluation inside an already started process (what a test pays per run).

Usage: .venv/bin/python benchmarks/evaluation_cost.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pulumi

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class NoProviders(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def evaluate_empty() -> None:
    """The baseline: a Pulumi program that declares nothing, importing nothing but pulumi."""
    pulumi.runtime.set_mocks(NoProviders(), project="wordpress-swarm", stack="dev", preview=False)
    pulumi.runtime.test(lambda: None)()


def evaluate_program() -> None:
    """The real __main__.py on the dev stack file, as tests/support.py runs it; what it imports
    (pulumi_docker, pulumi_random, the docker SDK) is part of its cost."""
    from tests.support import deploy, run_main, stack_config

    deploy(run_main, stack_config("dev"), "dev")


def evaluate(kind: str) -> None:
    if kind == "program":
        evaluate_program()
    else:
        evaluate_empty()


def cold_round(kind: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--child", kind], check=True, cwd=ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def warm_round(kind: str) -> float:
    started = time.perf_counter()
    evaluate(kind)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--child", choices=["empty", "program"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        evaluate(options.child)
        # Skip interpreter teardown in both children alike: asyncio's loop finaliser is noisy there.
        sys.stdout.flush()
        os._exit(0)

    figures: dict[str, dict[str, float]] = {}
    for kind in ("empty", "program"):
        cold = [cold_round(kind) for _ in range(options.rounds)]
        evaluate(kind)  # warm-up: imports and first-call caches
        warm = [warm_round(kind) for _ in range(options.rounds)]
        figures[kind] = {
            "cold wall s": statistics.median(w for w, _ in cold),
            "cold cpu s": statistics.median(c for _, c in cold),
            "warm wall s": statistics.median(warm),
        }

    print(f"rounds: {options.rounds}, python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"{'figure':<14}{'empty':>10}{'program':>10}{'ratio':>8}")
    for figure in ("cold wall s", "cold cpu s"):
        empty, program = figures["empty"][figure], figures["program"][figure]
        print(f"{figure:<14}{empty:>10.3f}{program:>10.3f}{program / empty:>7.2f}x")
    # An empty program evaluates in well under a millisecond once started: a ratio would be noise.
    warm_ms = {kind: figures[kind]["warm wall s"] * 1e3 for kind in ("empty", "program")}
    print(f"{'warm wall ms':<14}{warm_ms['empty']:>10.1f}{warm_ms['program']:>10.1f}")
    cold_ratio = figures["program"]["cold wall s"] / figures["empty"]["cold wall s"]
    print(f"goal: cold wall ratio <= 2.00x: {'met' if cold_ratio <= 2 else 'NOT met'} ({cold_ratio:.2f}x)")


if __name__ == "__main__":
    main()
