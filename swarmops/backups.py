"""Backups on demand, listed, restored and rehearsed (docs/operations.md, "Backups").

    python -m swarmops.backups --stack prod list
    python -m swarmops.backups --stack prod now
    python -m swarmops.backups --stack prod pause | resume
    python -m swarmops.backups --stack prod rehearse [--from STAMP] [--expect-post TITLE]
    python -m swarmops.backups --stack prod restore [--from STAMP] --confirm prod

Every action runs as a one-shot task shaped like one of the stack's backup jobs (swarmlib.oneshot):
in its image, with its secret, network, mounts and node, running the very script the job runs
(components/backup.sh, in a mode of its own). So it works where the backups live, however far, and
no password passes through this process. A restore stops WordPress and the backup jobs first, so
nobody is served half-restored data and no backup is taken of it, and starts them again after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stackconfig.outputs import BACKUP_PARTS
from swarmlib.client import DockerHostError, reachable_client
from swarmlib.services import Ended, OneShotError, run_like, scale, wait_for_replicas
from swarmops.verify import VerifyError
from swarmops.verify.stack import Expected, read_stack_outputs, stack_docker_host, stack_ssh_opts

if TYPE_CHECKING:
    from docker import DockerClient


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class Backup:
    stamp: str
    manifests: tuple[dict[str, Any], ...]  # one per part present

    @property
    def complete(self) -> bool:
        return {m.get("part") for m in self.manifests} >= set(BACKUP_PARTS)

    @property
    def bytes(self) -> int:
        return sum(int(m.get("bytes", 0)) for m in self.manifests)


def parse_list(output: str) -> list[Backup]:
    """`backup <stamp> {manifest} {manifest}` lines, oldest first."""
    backups: list[Backup] = []
    decoder = json.JSONDecoder()
    for line in output.splitlines():
        if not line.startswith("backup "):
            continue
        stamp, _, rest = line.removeprefix("backup ").partition(" ")
        manifests: list[dict[str, Any]] = []
        rest = rest.strip()
        while rest:
            value, end = decoder.raw_decode(rest)
            manifests.append(value)
            rest = rest[end:].strip()
        backups.append(Backup(stamp, tuple(manifests)))
    return sorted(backups, key=lambda b: b.stamp)


@dataclass(frozen=True)
class Stack:
    """The stack's deployed services, and a client of its swarm."""

    client: DockerClient
    expected: Expected

    @property
    def jobs(self) -> dict[str, str]:
        services = self.expected.deployed.backup_services
        if len(services) != len(BACKUP_PARTS):
            raise BackupError("this stack takes no backups: set backup.enabled (docs/configuration.md)")
        return dict(zip(BACKUP_PARTS, services, strict=True))

    def run(self, part: str, mode: str, env: dict[str, str] | None = None, writable: Sequence[str] = ()) -> Ended:
        job = self.jobs[part]
        script = self.client.api.inspect_service(job)["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"]
        # ["bash", "-c", <script>, "backup.sh", <part>, "schedule"]: the same script, another mode.
        return run_like(self.client, job, [*script[:-1], mode], env=env, writable=writable)


def list_backups(stack: Stack) -> list[Backup]:
    ended = stack.run("database", "list")
    if ended.exit_code != 0:
        raise BackupError(f"listing the backups failed ({ended.state} {ended.error}): {ended.output[-2000:]}")
    return parse_list(ended.output)


def chosen(backups: Sequence[Backup], stamp: str | None) -> Backup:
    """The backup named, or the newest complete one."""
    if stamp:
        found = [b for b in backups if b.stamp == stamp]
        if not found:
            raise BackupError(f"no backup {stamp}; there are: {', '.join(b.stamp for b in backups) or 'none'}")
        return found[0]
    complete = [b for b in backups if b.complete]
    if not complete:
        raise BackupError("no complete backup to use: take one with `now`")
    return complete[-1]


def take_now(stack: Stack, now: dt.datetime | None = None) -> tuple[str, dict[str, Ended]]:
    """Both parts of a backup stamped with this second."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return stamp, {part: stack.run(part, "once", {"BACKUP_STAMP": stamp}) for part in BACKUP_PARTS}


def rehearse(stack: Stack, backup: Backup, expect_post: str | None) -> dict[str, Ended]:
    env = {"BACKUP_STAMP": backup.stamp, **({"REHEARSE_POST_TITLE": expect_post} if expect_post else {})}
    return {part: stack.run(part, "rehearse", env) for part in BACKUP_PARTS}


def restore(stack: Stack, backup: Backup, say: Any = print) -> dict[str, Ended]:
    """Stops WordPress and the backup jobs, restores both parts, starts them again."""
    client = stack.client
    paused = [stack.expected.deployed.wordpress_service, *stack.jobs.values()]
    replicas = {service: scale(client, service, 0) for service in paused}
    results: dict[str, Ended] = {}
    try:
        for service in paused:
            wait_for_replicas(client, service, 0)
        say(f"stopped {', '.join(paused)}")
        results["database"] = stack.run("database", "restore", {"BACKUP_STAMP": backup.stamp})
        if results["database"].exit_code == 0:
            results["content"] = stack.run(
                "content", "restore", {"BACKUP_STAMP": backup.stamp}, writable=["/wp-content"]
            )
    finally:
        for service, count in replicas.items():
            scale(client, service, count)
        for service, count in replicas.items():
            wait_for_replicas(client, service, count)
        say(f"started {', '.join(paused)} again")
    return results


def _report(results: dict[str, Ended], say: Any) -> int:
    failed = False
    for part, ended in results.items():
        lines = [line for line in ended.output.splitlines() if line.strip()]
        say(f"{part}: {'ok' if ended.exit_code == 0 else 'FAILED'} in {ended.seconds:.1f} s")
        for line in lines[-12:]:
            say(f"  {line}")
        failed |= ended.exit_code != 0
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swarmops.backups", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stack", required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the backups, oldest first")
    commands.add_parser("now", help="take a backup now")
    commands.add_parser("pause", help="the schedulers take no backups until `resume` (the verifier notices)")
    commands.add_parser("resume", help="the schedulers take backups again")
    rehearsal = commands.add_parser("rehearse", help="restore into a scratch server and check it; nothing live")
    rehearsal.add_argument("--from", dest="stamp", help="a backup's stamp (default: the newest complete)")
    rehearsal.add_argument("--expect-post", help="the title of a published post the backup must hold")
    restoring = commands.add_parser("restore", help="put a backup back into the live stack")
    restoring.add_argument("--from", dest="stamp", help="a backup's stamp (default: the newest complete)")
    restoring.add_argument("--confirm", metavar="STACK", help="the stack's name again: a restore replaces its data")
    options = parser.parse_args(argv)
    say = print
    try:
        if options.command == "restore" and options.confirm != options.stack:
            raise BackupError(
                f"a restore replaces {options.stack}'s database and wp-content: add --confirm {options.stack}"
            )
        expected = Expected.parse(read_stack_outputs(options.stack), stack=options.stack)
        # As the verifier does: DOCKER_HOST when set, else the stack's own dockerHost.
        host = None if os.environ.get("DOCKER_HOST") else stack_docker_host(options.stack)
        ssh_opts = stack_ssh_opts(options.stack)
        client = reachable_client(host, ssh_opts, timeout=120, deadline=7200)
        stack = Stack(client, expected)
        if options.command == "list":
            for backup in list_backups(stack):
                state = "complete" if backup.complete else "INCOMPLETE"
                say(f"{backup.stamp}  {state:10}  {backup.bytes / 1e6:8.2f} MB")
            return 0
        if options.command == "now":
            stamp, results = take_now(stack)
            say(f"backup {stamp}")
            return _report(results, say)
        if options.command in ("pause", "resume"):
            return _report({"database": stack.run("database", options.command)}, say)
        backup = chosen(list_backups(stack), options.stamp)
        if options.command == "rehearse":
            say(f"rehearsing backup {backup.stamp} (nothing live is touched)")
            return _report(rehearse(stack, backup, options.expect_post), say)
        say(f"restoring backup {backup.stamp} into stack {options.stack}")
        return _report(restore(stack, backup, say), say)
    except (BackupError, VerifyError, DockerHostError, OneShotError) as error:
        print(f"backups: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
