"""Connections to a stack's Docker host never hang: ssh gets options that make it give up, and
callers put a deadline around the exchange."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swarmops.docker_host import SSH_SAFETY_OPTIONS, within
from tests.support import ROOT


def ssh_config_in_child(script: str, path_prefix: str = "") -> list[str]:
    # In a child process: the wrapper goes first on PATH for the rest of the process.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": path_prefix + os.environ["PATH"]}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env, check=True)
    return done.stdout.splitlines()


def test_operator_ssh_options_come_first_and_safety_options_fill_the_rest() -> None:
    shown = ssh_config_in_child(
        "import subprocess\n"
        "from swarmops.docker_host import docker_client\n"
        "try:\n"
        "    options = ('-o', 'ConnectTimeout=7', '-o', 'StrictHostKeyChecking=yes')\n"
        "    docker_client('ssh://deploy@swarm-manager', options)\n"
        "except Exception:\n"
        "    pass  # no such host here; what matters is the ssh the SDK ran\n"
        "print(subprocess.run(['ssh', '-G', 'swarm-manager'], capture_output=True, text=True, check=True).stdout)\n"
    )
    assert "connecttimeout 7" in shown  # ssh keeps the first value: the operator's wins
    assert "stricthostkeychecking true" in shown
    assert {"batchmode yes", "serveraliveinterval 10", "serveralivecountmax 3"} <= set(shown)


def test_safety_options_apply_without_operator_options_and_wrappers_never_stack() -> None:
    shown = ssh_config_in_child(
        "import subprocess\n"
        "from swarmops.docker_host import docker_client\n"
        "for options in ((), ('-o', 'ConnectTimeout=3')):\n"
        "    try:\n"
        "        docker_client('ssh://deploy@swarm-manager', options)\n"
        "    except Exception:\n"
        "        pass  # no such host here; what matters is the ssh the SDK ran\n"
        "print(subprocess.run(['ssh', '-G', 'swarm-manager'], capture_output=True, text=True, check=True).stdout)\n"
    )
    # The newest wrapper calls the real ssh, not the older wrapper (whose ConnectTimeout=10 would win).
    assert "connecttimeout 3" in shown
    assert "batchmode yes" in shown
    assert SSH_SAFETY_OPTIONS[1] == "BatchMode=yes"


def test_options_a_then_b_then_a_run_ssh_with_as() -> None:
    shown = ssh_config_in_child(
        "import subprocess\n"
        "from swarmops.docker_host import docker_client\n"
        "for options in (('-o', 'ConnectTimeout=3'), ('-o', 'ConnectTimeout=5'), ('-o', 'ConnectTimeout=3')):\n"
        "    try:\n"
        "        docker_client('ssh://deploy@swarm-manager', options)\n"
        "    except Exception:\n"
        "        pass  # no such host here; what matters is the ssh the SDK would run\n"
        "print(subprocess.run(['ssh', '-G', 'swarm-manager'], capture_output=True, text=True, check=True).stdout)\n"
    )
    # The cached wrapper of the first options was reused without being put first again: B's won.
    assert "connecttimeout 3" in shown


def test_within_returns_results_and_errors_of_work_that_finishes() -> None:
    assert within(5, lambda: 42, "answer") == 42
    with pytest.raises(ValueError, match="boom"):
        within(5, lambda: (_ for _ in ()).throw(ValueError("boom")), "failure")


def test_within_gives_up_on_work_that_hangs() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=re.escape("the Docker host ssh://x did not answer within 0.3 s")):
        within(0.3, lambda: time.sleep(30), "the Docker host ssh://x")
    assert time.monotonic() - started < 2


def test_a_hanging_ssh_makes_preflight_report_the_host_unreachable(tmp_path: Path) -> None:
    # An ssh that never answers, as a silent server or a prompt would: preflight must not hang.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "ssh").write_text("#!/bin/sh\nexec sleep 60 2>/dev/null\n")  # keeps only the SDK's pipes
    (fake_bin / "ssh").chmod(0o755)
    script = (
        "import time\n"
        "from components.settings import parse_settings\n"
        "from swarmops.preflight import facts_from_docker_host\n"
        "from tests.support import stack_config\n"
        "settings = parse_settings(stack_config('prod'))\n"
        "started = time.monotonic()\n"
        "facts = facts_from_docker_host(settings, deadline=1.5)\n"
        "print(round(time.monotonic() - started, 1))\n"
        "print(facts.unreachable)\n"
    )
    elapsed, reason = ssh_config_in_child(script, path_prefix=f"{fake_bin}{os.pathsep}")
    assert float(elapsed) < 5
    assert reason == "the Docker host ssh://deploy@swarm-manager did not answer within 1.5 s"
