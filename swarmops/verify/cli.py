"""The command line: read what to verify, then check the swarm and the URL once, or with --wait again
until every check passes. Exit 0: all pass; 1: a check failed; 2: could not verify."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from swarmlib.client import DockerHostError, reachable_client, resolve_host
from swarmlib.facts import SwarmFacts, gather_facts
from swarmops.verify import EXIT_ERROR, EXIT_OK, Row, VerifyError
from swarmops.verify.backups import read_backups
from swarmops.verify.checks import evaluate
from swarmops.verify.database import try_logins
from swarmops.verify.http_probe import probe_http
from swarmops.verify.observed import Inside
from swarmops.verify.render import exit_code, render_error_json, render_json, render_table
from swarmops.verify.stack import (
    Expected,
    Runner,
    read_outputs_file,
    read_stack_outputs,
    run_command,
    stack_docker_host,
    stack_ssh_opts,
)

if TYPE_CHECKING:
    from docker import DockerClient

# Between two rounds of --wait: a starting task turns healthy at its next probe.
WAIT_INTERVAL = 2.0
# A round reads the swarm in seconds, each API call within the timeout; the ssh deadline only cuts a
# connection that hangs.
DOCKER_TIMEOUT_SECONDS = 30
DOCKER_DEADLINE_SECONDS = 120


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m swarmops.verify",
        description="Check a deployed wordpress-swarm stack against the live swarm. "
        "Exit 0: all checks pass; 1: a check failed; 2: could not verify.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="read the expected shape with `pulumi stack output --json --stack STACK`")
    source.add_argument("--outputs", metavar="FILE", help="a JSON file of the stack outputs ('-' for stdin)")
    parser.add_argument(
        "--docker-host",
        help="Docker host of a swarm manager, e.g. ssh://deploy@swarm-manager "
        "(default: DOCKER_HOST, else with --stack the stack's dockerHost, else the local socket)",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument(
        "--http-timeout", type=_positive_float, default=5.0, help="seconds per HTTP attempt (default 5)"
    )
    parser.add_argument(
        "--http-attempts", type=_positive_int, default=5, help="HTTP attempts before failing (default 5)"
    )
    parser.add_argument("--http-delay", type=float, default=2.0, help="seconds between HTTP attempts (default 2)")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="check again until every check passes or SECONDS have passed (default 0: once). `pulumi up` "
        "returns when the replicated services converged; a global service's tasks may still be starting",
    )
    return parser.parse_args(argv)


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    run: Runner = run_command,
) -> int:
    args = parse_args(argv)
    out, err = stdout or sys.stdout, stderr or sys.stderr
    deadline = time.monotonic() + args.wait
    try:
        if args.stack:
            expected = Expected.parse(read_stack_outputs(args.stack, run), stack=args.stack)
        else:
            expected = Expected.parse(read_outputs_file(args.outputs, stdin))
        host = args.docker_host
        if host is None and args.stack and not os.environ.get("DOCKER_HOST"):
            host = stack_docker_host(args.stack, run)
        ssh_opts = stack_ssh_opts(args.stack, run) if args.stack else ()
        while True:
            rows = _check_once(expected, host, ssh_opts, args)
            if exit_code(rows) == EXIT_OK or time.monotonic() >= deadline:
                break
            time.sleep(WAIT_INTERVAL)
    except VerifyError as exc:
        if args.json:
            print(render_error_json(str(exc)), file=out)
        print(f"verify: {exc}", file=err)
        return EXIT_ERROR
    print(render_json(rows) if args.json else render_table(rows), file=out)
    return exit_code(rows)


def read_facts(client: DockerClient, docker_host: str, expected: Expected) -> SwarmFacts:
    """The facts the checks judge, from a swarm manager; VerifyError when there are none."""
    try:
        facts = gather_facts(client, docker_host, detailed=expected.service_names)
    except Exception as exc:  # a lost connection or API error mid-way: nothing to judge
        raise VerifyError(f"reading the swarm failed: {exc}") from exc
    if facts.swarm_state != "active" or not facts.is_manager:
        raise VerifyError("the Docker host is not a swarm manager; point --docker-host at a manager")
    return facts


def _check_once(expected: Expected, host: str | None, ssh_opts: Sequence[str], args: argparse.Namespace) -> list[Row]:
    try:
        client = reachable_client(host, ssh_opts, timeout=DOCKER_TIMEOUT_SECONDS, deadline=DOCKER_DEADLINE_SECONDS)
    except DockerHostError as exc:
        raise VerifyError(str(exc)) from exc
    try:
        # The host as the client resolves None; the facts only carry it as a label.
        facts = read_facts(client, resolve_host(host), expected)
        inside = look_inside(client, expected)
    finally:
        client.close()
    result = probe_http(
        expected.deployed.url, timeout=args.http_timeout, attempts=args.http_attempts, delay=args.http_delay
    )
    return evaluate(expected, facts, result, inside)


def look_inside(client: DockerClient, expected: Expected) -> Inside:
    """What only the stack's own containers can tell: the database's logins, the backups."""
    logins, why_no_logins = try_logins(client, expected.deployed.mysql_service)
    backups, why_no_backups = None, "the stack takes no backups"
    if expected.deployed.backup_services:
        backups, why_no_backups = read_backups(client, expected.deployed.backup_services[0])
    return Inside(logins, why_no_logins, backups, why_no_backups)
