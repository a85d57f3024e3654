"""Deploy time of the dev stack with the real Pulumi CLI, against what it replaces and the floor.

Same swarm (this machine's single-node swarm), same lab images (swarmops/lab_images), medians
of --rounds runs:
  (a) a no-op `pulumi preview` of the stack against the preview of an empty Pulumi Python program;
  (b) a first `pulumi up` until `swarmops.verify` passes, against `docker stack deploy` of the same
      services (benchmarks/compose.yaml) until every task is healthy;
  (c) both against the floor: the slowest service's own time from its container's start to its
      first passing health check.
Goals: (a) <= 2x, (b) <= 1.2x, (c) within the floor + one health-check interval + 5 s.

Usage (as root, with scripts/engine-up.sh and scripts/pulumi-toolchain done):
  .venv/bin/python benchmarks/deploy_time.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, NotFound

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stackconfig.names import STACK_LABEL  # noqa: E402
from swarmops.lab_images.build import ensure_images  # noqa: E402
from tests.engine import harness, swarm_tasks  # noqa: E402
from tests.engine.pulumi_cli import VENV, Project, Stack, toolchain_env  # noqa: E402
from tests.engine.test_pulumi_real import stack_config  # noqa: E402

COMPOSE = ROOT / "benchmarks" / "compose.yaml"
# The longest health-check interval of the three services (WordPress's).
LONGEST_INTERVAL = 15.0


def timed(work: Callable[[], object]) -> float:
    started = time.monotonic()
    work()
    return time.monotonic() - started


def started_to_healthy(client: docker.DockerClient, label: str, value: str) -> float:
    """The slowest container's time from its start to its first passing health check."""
    slowest = 0.0
    for container in client.containers.list(filters={"label": f"{label}={value}"}):
        state = container.attrs["State"]
        passed = [entry for entry in state["Health"]["Log"] if entry["ExitCode"] == 0]
        started = datetime.fromisoformat(state["StartedAt"][:26].rstrip("Z"))
        healthy = datetime.fromisoformat(passed[0]["End"][:26].rstrip("Z"))
        slowest = max(slowest, (healthy - started).total_seconds())
    return slowest


def all_healthy(client: docker.DockerClient, namespace: str, expected: int) -> bool:
    containers = client.containers.list(filters={"label": f"com.docker.stack.namespace={namespace}"})
    healthy = [c for c in containers if c.attrs["State"].get("Health", {}).get("Status") == "healthy"]
    return len(containers) == expected and len(healthy) == expected


def empty_program_preview(project: Project, rounds: int) -> list[float]:
    directory = project.directory / "empty"
    directory.mkdir(exist_ok=True)
    (directory / "Pulumi.yaml").write_text(
        f"name: empty\nruntime:\n  name: python\n  options:\n    toolchain: pip\n    virtualenv: {VENV}\n"
    )
    (directory / "__main__.py").write_text("import pulumi  # noqa: F401\n")
    env = project.env()

    def pulumi(*args: str) -> None:
        subprocess.run(["pulumi", *args, "--non-interactive"], cwd=directory, env=env, check=True, capture_output=True)

    pulumi("stack", "init", "bench")
    return [timed(lambda: pulumi("preview", "--stack", "bench")) for _ in range(rounds)]


def verify(stack: Stack) -> None:
    subprocess.run(
        [str(VENV / "bin" / "python"), "-m", "swarmops.verify", "--stack", stack.name, "--wait", "300"],
        cwd=stack.project.directory,
        env=stack.project.env(),
        check=True,
        capture_output=True,
    )


def remove_volumes(client: docker.DockerClient, label: str, value: str) -> None:
    harness.wait_for(
        lambda: not client.containers.list(all=True, filters={"label": f"{label}={value}"}),
        timeout=120,
        what="the old containers to go",
    )
    for volume in client.volumes.list():
        if value in volume.name:
            volume.remove(force=True)


def pulumi_rounds(project: Project, client: docker.DockerClient, images: dict[str, str], rounds: int) -> dict[str, Any]:
    node = str(client.info()["Name"])
    stack = project.stack("bench", stack_config(images, harness.free_tcp_port(), node))
    ups: list[float] = []
    floors: list[float] = []
    previews: list[float] = []
    for round_ in range(rounds):
        ups.append(timed(lambda: (stack.up(), verify(stack))))
        outputs = stack.outputs()
        floors.append(
            max(
                started_to_healthy(client, "com.docker.swarm.service.name", outputs[key])
                for key in ("mysqlService", "wordpressService", "loggingService")
            )
        )
        if round_ == 0:
            previews = [timed(lambda: stack.preview("--expect-no-changes")) for _ in range(rounds)]
        stack.destroy()
        remove_volumes(client, STACK_LABEL, "bench")
    stack.pulumi("stack", "rm", "--yes", "--force")
    return {"up": ups, "floor": floors, "preview": previews}


def stack_deploy_rounds(client: docker.DockerClient, images: dict[str, str], rounds: int) -> dict[str, Any]:
    label = f"bench-{harness.SESSION_ID}"
    node = swarm_tasks.local_node_id(client)
    swarm_tasks.set_node_labels(client, node, {"env": label})
    namespace = "benchcompose"
    deploys: list[float] = []
    floors: list[float] = []
    try:
        for _ in range(rounds):
            names: dict[str, str] = {}
            for purpose in ("root", "user"):
                names[purpose] = f"bench-{purpose}-{secrets.token_hex(4)}"
                client.secrets.create(name=names[purpose], data=secrets.token_urlsafe(24))
            env = {
                **os.environ,
                "MYSQL_IMAGE": images["mysql"],
                "WORDPRESS_IMAGE": images["wordpress"],
                "LOGGING_IMAGE": images["logging"],
                "ENV_LABEL": label,
                "WORDPRESS_PORT": str(harness.free_tcp_port()),
                "ROOT_SECRET": names["root"],
                "USER_SECRET": names["user"],
            }

            def deploy(env: dict[str, str] = env) -> None:
                subprocess.run(
                    ["docker", "stack", "deploy", "-c", str(COMPOSE), namespace],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                harness.wait_for(lambda: all_healthy(client, namespace, 3), timeout=300, interval=0.5, what="healthy")

            deploys.append(timed(deploy))
            floors.append(started_to_healthy(client, "com.docker.stack.namespace", namespace))
            subprocess.run(["docker", "stack", "rm", namespace], check=True, capture_output=True)
            remove_volumes(client, "com.docker.stack.namespace", namespace)
            for name in names.values():
                harness.wait_for(lambda n=name: _remove_secret(client, n), timeout=60, what=f"secret {name} removed")
    finally:
        swarm_tasks.set_node_labels(client, node, {"env": None})
    return {"deploy": deploys, "floor": floors}


def _remove_secret(client: docker.DockerClient, name: str) -> bool:
    try:
        client.secrets.get(name).remove()
    except NotFound:
        return True
    except APIError:
        return False  # still in use by a task that is stopping
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    toolchain = toolchain_env()
    if isinstance(toolchain, str):
        print(f"deploy_time: {toolchain}", file=sys.stderr)
        return 2
    client = docker.from_env()
    images = {role: image.tag for role, image in ensure_images(client).items()}
    with tempfile.TemporaryDirectory(prefix="wpswarm-bench-") as scratch:
        project = Project(Path(scratch), toolchain)
        empty = empty_program_preview(project, rounds)
        with swarm_tasks.shared_node_lock(timeout=600):
            ours = pulumi_rounds(project, client, images, rounds)
            theirs = stack_deploy_rounds(client, images, rounds)
    median = statistics.median
    floor = max(median(ours["floor"]), median(theirs["floor"]))
    allowed = floor + LONGEST_INTERVAL + 5
    rows = [
        ("(a) no-op preview of dev", median(ours["preview"]), "empty program's preview", median(empty), 2.0),
        (
            "(b) first up to verified",
            median(ours["up"]),
            "docker stack deploy to healthy",
            median(theirs["deploy"]),
            1.2,
        ),
    ]
    print(f"medians of {rounds} rounds, seconds")
    for what, value, against, reference, goal in rows:
        ratio = value / reference
        verdict = "ok" if ratio <= goal else "SLOWER than the goal"
        print(f"{what:28} {value:6.1f}  vs {against:32} {reference:6.1f}  = {ratio:4.2f}x (goal <= {goal}x: {verdict})")
    print(f"(c) floor: slowest service start -> first passing health check {floor:6.1f}")
    for what, value in (("pulumi up + verify", median(ours["up"])), ("docker stack deploy", median(theirs["deploy"]))):
        verdict = "ok" if value <= allowed else "SLOWER than the goal"
        print(
            f"    {what:24} {value:6.1f}  (goal <= floor + {LONGEST_INTERVAL:.0f} s interval + 5 s"
            f" = {allowed:.1f}: {verdict})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
