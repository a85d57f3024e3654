"""What to verify: the stack's outputs, from `pulumi stack output` or a saved copy, and with --stack
the Docker host and ssh options the stack itself deploys with (`pulumi config get`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from stackconfig.outputs import ROLES, DeployedStack, OutputsError
from swarmops.verify import VerifyError

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run_command(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, check=False)


@dataclass(frozen=True)
class Expected:
    """The stack's shape as its outputs describe it, and its name when known (with --stack): every
    service must then carry it as its stack label."""

    deployed: DeployedStack
    stack: str | None = None

    @classmethod
    def parse(cls, outputs: Mapping[str, Any], stack: str | None = None) -> Expected:
        """Outputs that aren't this program's leave nothing to verify against."""
        try:
            return cls(DeployedStack.parse(outputs), stack)
        except OutputsError as exc:
            raise VerifyError(str(exc)) from exc

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(self.deployed.service(role) for role in ROLES)


def read_outputs_file(path: str, stdin: TextIO | None = None) -> dict[str, Any]:
    try:
        if path == "-":
            text = (stdin or sys.stdin).read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as exc:
        raise VerifyError(f"cannot read outputs file {path}: {exc.strerror or exc}") from exc
    return _outputs_json(text, f"outputs file {path}")


def read_stack_outputs(stack: str, run: Runner = run_command) -> dict[str, Any]:
    """`pulumi stack output --json --stack NAME`: what an operator can run where they deploy from."""
    command = ["pulumi", "stack", "output", "--json", "--stack", stack]
    try:
        proc = run(command)
    except FileNotFoundError as exc:
        raise VerifyError("pulumi CLI not found on PATH; use --outputs FILE with a saved copy of the outputs") from exc
    except subprocess.TimeoutExpired as exc:
        raise VerifyError(f"{' '.join(command)} timed out") from exc
    if proc.returncode != 0:
        raise VerifyError(
            f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return _outputs_json(proc.stdout, f"outputs of stack {stack}")


def _outputs_json(text: str, what: str) -> dict[str, Any]:
    try:
        data: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VerifyError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise VerifyError(f"{what} must be a JSON object of stack outputs")
    return {str(k): v for k, v in data.items()}  # pyright: ignore[reportUnknownVariableType]


def _stack_setting(stack: str, key: str, run: Runner) -> str | None:
    """`pulumi config get KEY --stack STACK`; None when the CLI can't say (or the key is unset)."""
    try:
        proc = run(["pulumi", "config", "get", key, "--stack", stack])
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    value = proc.stdout.strip()
    return value if proc.returncode == 0 and value else None


def stack_docker_host(stack: str, run: Runner = run_command) -> str | None:
    """The stack's own `dockerHost`, so `--stack prod` checks prod's swarm rather than whatever
    engine this machine talks to; None when the CLI can't say."""
    return _stack_setting(stack, "dockerHost", run)


def stack_ssh_opts(stack: str, run: Runner = run_command) -> tuple[str, ...]:
    """The stack's own `dockerSshOpts` (a JSON list), for its ssh:// host; () when unset."""
    raw = _stack_setting(stack, "dockerSshOpts", run)
    if raw is None:
        return ()
    try:
        value: object = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise VerifyError(f"dockerSshOpts of stack {stack} is not a JSON list: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(option, str) for option in value):  # pyright: ignore[reportUnknownVariableType]
        raise VerifyError(f"dockerSshOpts of stack {stack} must be a list of strings, got {raw}")
    return tuple(value)  # pyright: ignore[reportUnknownArgumentType]
