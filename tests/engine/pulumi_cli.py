"""The real Pulumi CLI and providers (scripts/pulumi-toolchain) on a copy of the project.

A `Project` is a copy of the program (Pulumi.yaml, __main__.py, components, swarmops) and of the
policy pack in a temporary directory, with its own local file backend and a passphrase *file*;
both project files name the repository's virtualenv. A `Stack` writes its own Pulumi.<stack>.yaml
and runs `pulumi` commands on it. Nothing here prints a command's output unless it failed, and
the stacks hold only generated passwords, which the state keeps encrypted.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml

from stackconfig.names import ROLE_LABEL, STACK_LABEL
from stackconfig.settings import NAMESPACE

from . import swarm_tasks

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
# The program and what it imports, and the operations tools the tests run from the copy.
PROGRAM_FILES = ("__main__.py", "components", "stackconfig", "swarmlib", "swarmops", "requirements.txt")
# One Pulumi operation; a first `up` waits for converge (health checks), so minutes, not seconds.
OPERATION_TIMEOUT = 900


class PulumiError(AssertionError):
    """A pulumi command failed; carries the tail of its output."""


def toolchain_env() -> dict[str, str] | str:
    """The toolchain's environment (PATH, PULUMI_HOME, no downloads), or why there is none."""
    try:
        answer = subprocess.run(
            [str(ROOT / "scripts" / "pulumi-toolchain"), "--env"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"scripts/pulumi-toolchain --env failed: {error}"
    if answer.returncode != 0:
        return f"no Pulumi toolchain: {answer.stderr.strip() or answer.returncode} (scripts/pulumi-toolchain builds it)"
    env: dict[str, str] = {}
    for line in answer.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value.replace("$PATH", os.environ.get("PATH", ""))
    return env


def _ignore_caches(_: str, names: list[str]) -> set[str]:
    return {name for name in names if name in ("__pycache__", ".venv")}


@dataclass
class Project:
    """A copy of the project with its own backend; `stack(name)` makes or reuses a stack."""

    directory: Path
    toolchain: Mapping[str, str]
    state: Path = field(init=False)
    passphrase_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in PROGRAM_FILES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, self.directory / name, ignore=_ignore_caches, dirs_exist_ok=True)
            else:
                shutil.copy2(source, self.directory / name)
        project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
        project["runtime"]["options"]["virtualenv"] = str(VENV)
        (self.directory / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
        policy = self.directory / "policy"
        shutil.copytree(ROOT / "policy", policy, ignore=_ignore_caches, dirs_exist_ok=True)
        pack = yaml.safe_load((policy / "PulumiPolicy.yaml").read_text())
        pack["runtime"]["options"]["virtualenv"] = str(VENV)
        (policy / "PulumiPolicy.yaml").write_text(yaml.safe_dump(pack, sort_keys=False))
        self.state = self.directory / ".state"
        self.state.mkdir(mode=0o700, exist_ok=True)
        self.passphrase_file = self.directory / ".passphrase"
        if not self.passphrase_file.exists():
            self.passphrase_file.touch(mode=0o600)
            self.passphrase_file.write_text(secrets.token_urlsafe(24))

    @property
    def policy_pack(self) -> Path:
        return self.directory / "policy"

    def env(self) -> dict[str, str]:
        env = {
            key: value for key, value in os.environ.items() if not key.startswith("PULUMI_") or key in ("PULUMI_HOME",)
        }
        env.update(self.toolchain)
        env.update(
            PULUMI_BACKEND_URL=f"file://{self.state}",
            PULUMI_CONFIG_PASSPHRASE_FILE=str(self.passphrase_file),
            # The venv's python for the dynamic provider and the policy pack; no colour codes.
            PATH=f"{VENV / 'bin'}{os.pathsep}{self.toolchain.get('PATH', os.environ.get('PATH', ''))}",
            NO_COLOR="1",
        )
        return env

    def stack(self, name: str, config: Mapping[str, Any]) -> Stack:
        stack = Stack(self, name)
        stack.write_config(config)
        if not (self.state / ".pulumi" / "stacks" / NAMESPACE / f"{name}.json").exists():
            stack.pulumi("stack", "init", name, with_stack=False)
        return stack


@dataclass
class Stack:
    project: Project
    name: str

    @property
    def config_file(self) -> Path:
        return self.project.directory / f"Pulumi.{self.name}.yaml"

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Sets the stack's whole config (keys without the project prefix); keeps its salt."""
        previous = yaml.safe_load(self.config_file.read_text()) if self.config_file.exists() else {}
        document: dict[str, Any] = {key: value for key, value in (previous or {}).items() if key != "config"}
        document["config"] = {f"{NAMESPACE}:{key}": value for key, value in config.items()}
        self.config_file.write_text(yaml.safe_dump(document, sort_keys=False))

    def pulumi(
        self, *args: str, check: bool = True, timeout: float = OPERATION_TIMEOUT, with_stack: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = ["pulumi", *args, "--non-interactive"]
        if with_stack:
            command += ["--stack", self.name]
        started = time.monotonic()
        result = subprocess.run(
            command,
            cwd=self.project.directory,
            env=self.project.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        TIMINGS.append((" ".join(args[:1]), self.name, time.monotonic() - started))
        if check and result.returncode != 0:
            raise PulumiError(f"`{' '.join(command)}` exited {result.returncode}:\n{tail(result)}")
        return result

    def up(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.pulumi("up", "--yes", "--skip-preview", *extra, check=check)

    def preview(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.pulumi("preview", *extra, check=check)

    def preview_json(self, *extra: str) -> dict[str, Any]:
        """`pulumi preview --json`: steps with their ops, urns and diffed keys."""
        return json.loads(self.pulumi("preview", "--json", *extra).stdout)

    def destroy(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.pulumi("destroy", "--yes", "--skip-preview", *extra, check=check)

    def tear_down(self) -> None:
        """Destroys and removes the stack, raising when something is left. After a failed destroy,
        docs/operations.md's recovery: the provider deletes a service, then waits for its containers
        only as long as the stop grace period, so a task that uses all of it (WordPress finishing a
        request stuck on the network) fails the delete of a service that is already gone, and a
        second delete fails on "not found" until a refresh drops it from the state."""
        try:
            if self.destroy(check=False).returncode != 0:
                self.pulumi("refresh", "--yes", "--skip-preview")
                self.destroy()
        finally:
            self.pulumi("stack", "rm", "--yes", "--force", check=False)

    def outputs(self) -> dict[str, Any]:
        return json.loads(self.pulumi("stack", "output", "--json").stdout)

    def export(self, *, show_secrets: bool = False) -> dict[str, Any]:
        args = ("stack", "export", "--show-secrets") if show_secrets else ("stack", "export")
        return json.loads(self.pulumi(*args).stdout)

    def verify(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """`python -m swarmops.verify --stack <stack> --json`, from the project's copy."""
        return subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "swarmops.verify", "--stack", self.name, "--json", *extra],
            cwd=self.project.directory,
            env=self.project.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def urn(self, resource_name: str) -> str:
        """The URN of the one resource named `resource_name` in the stack's state."""
        urns = [
            r["urn"]
            for r in self.export()["deployment"].get("resources", [])
            if r["urn"].endswith(f"::{resource_name}")
        ]
        assert len(urns) == 1, f"{resource_name}: {urns}"
        return urns[0]

    def interrupted_up(self, after: float, presses: int = 1) -> subprocess.CompletedProcess[str]:
        """`pulumi up` sent SIGINT `after` seconds in, as an operator's Ctrl-C (pressed twice: the
        CLI stops at once instead of letting the operations in flight finish)."""
        process = subprocess.Popen(
            ["pulumi", "up", "--yes", "--skip-preview", "--non-interactive", "--stack", self.name],
            cwd=self.project.directory,
            env=self.project.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(after)
        for _ in range(presses):
            process.send_signal(signal.SIGINT)
            time.sleep(1)
        output, _ = process.communicate(timeout=OPERATION_TIMEOUT)
        return subprocess.CompletedProcess(process.args, process.returncode, output, "")


def stack_service(engine: docker.DockerClient, stack: str, role: str) -> Any:
    """The one service of `role` (its wordpress-swarm.role label) that `stack` runs."""
    found = engine.services.list(filters={"label": [f"{ROLE_LABEL}={role}", f"{STACK_LABEL}={stack}"]})
    assert len(found) == 1, f"{stack} {role}: {[s.name for s in found]}"
    return found[0]


@contextmanager
def disposable_stack(project: Project, name: str, engine: docker.DockerClient) -> Iterator[Stack]:
    """A stack for this machine's swarm, held under the engine tests' shared node lock (the stacks
    label this node); afterwards destroyed, removed, and its retained volumes deleted too. The
    stack is initialised by the first `project.stack(name, config)`."""
    with swarm_tasks.shared_node_lock(timeout=600):
        stack = Stack(project, name)
        try:
            yield stack
        finally:
            stack.tear_down()
            for volume in engine.volumes.list(filters={"label": f"{STACK_LABEL}={name}"}):
                volume.remove(force=True)


def tail(result: subprocess.CompletedProcess[str], lines: int = 40) -> str:
    """The lines that name an error, then the last `lines` lines."""
    text = ((result.stdout or "") + (result.stderr or "")).splitlines()
    errors = [line for line in text[:-lines] if "error" in line.lower()]
    return "\n".join([*errors[-20:], "...", *text[-lines:]])


def steps(preview: Mapping[str, Any]) -> dict[str, str]:
    """resource name -> op of every step of a `preview --json` that is not 'same'."""
    return {step["urn"].rsplit("::", 1)[1]: step["op"] for step in preview.get("steps", []) if step.get("op") != "same"}


#: (command, stack, seconds) of every pulumi run, for the session's summary.
TIMINGS: list[tuple[str, str, float]] = []
