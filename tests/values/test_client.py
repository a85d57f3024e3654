"""swarmlib.client: connections to a stack's Docker host never hang. ssh gets options that make it
give up, and is itself cut at a deadline, so nothing is left waiting in a thread."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from swarmlib.client import SSH_SAFETY_OPTIONS, DockerHostError, reachable_client, ssh_options
from tests.support import ROOT


def in_child(script: str, path_prefix: str = "") -> list[str]:
    """The lines `script` prints, run in a child process: the client's ssh wrapper goes first on
    PATH for the rest of the process that made it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": path_prefix + os.environ["PATH"]}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env, check=True)
    return done.stdout.splitlines()


def ssh_config_after(*option_sets: tuple[str, ...]) -> list[str]:
    """`ssh -G swarm-manager` (the options ssh would use) after a client for each set of options."""
    return in_child(
        "import subprocess\n"
        "from swarmlib.client import docker_client\n"
        f"for options in {option_sets!r}:\n"
        "    try:\n"
        "        docker_client('ssh://deploy@swarm-manager', options)\n"
        "    except Exception:\n"
        "        pass  # no such host here; what matters is the ssh the SDK would run\n"
        "print(subprocess.run(['ssh', '-G', 'swarm-manager'], capture_output=True, text=True, check=True).stdout)\n"
    )


def test_operator_ssh_options_come_first_and_safety_options_fill_the_rest() -> None:
    operator = ("-o", "ConnectTimeout=7", "-o", "StrictHostKeyChecking=yes")
    assert ssh_options(operator) == [*operator, *SSH_SAFETY_OPTIONS]
    shown = ssh_config_after(operator)
    assert "connecttimeout 7" in shown  # ssh keeps the first value: the operator's wins
    assert "stricthostkeychecking true" in shown
    assert {"batchmode yes", "serveraliveinterval 10", "serveralivecountmax 3"} <= set(shown)


def test_safety_options_apply_without_operator_options_and_wrappers_never_stack() -> None:
    shown = ssh_config_after((), ("-o", "ConnectTimeout=3"))
    # The newest wrapper calls the real ssh, not the older wrapper (whose ConnectTimeout=10 would win).
    assert "connecttimeout 3" in shown
    assert "batchmode yes" in shown
    assert SSH_SAFETY_OPTIONS[1] == "BatchMode=yes"


def test_options_a_then_b_then_a_run_ssh_with_as() -> None:
    # The cached wrapper of the first options must be put first again, or B's would win.
    assert "connecttimeout 3" in ssh_config_after(
        ("-o", "ConnectTimeout=3"), ("-o", "ConnectTimeout=5"), ("-o", "ConnectTimeout=3")
    )


def test_a_hanging_ssh_makes_read_swarm_fail_within_the_deadline_leaving_nothing_behind(tmp_path: Path) -> None:
    # An ssh that never answers, as a silent server or a Docker Engine that never replies would:
    # preflight's read must fail at its deadline, with no thread or ssh still waiting on it.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    pid_file = tmp_path / "ssh.pid"
    # `exec` keeps the pid; 2>/dev/null keeps only the SDK's pipes, not this test's.
    (fake_bin / "ssh").write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60 2>/dev/null\n")
    (fake_bin / "ssh").chmod(0o755)
    script = (
        "import os, threading, time\n"
        "from swarmlib.client import DockerHostError\n"
        "from swarmlib.preflight import read_swarm\n"
        "from tests.support import settings_of\n"
        "settings = settings_of('prod')\n"
        "threads = threading.enumerate()\n"
        "started = time.monotonic()\n"
        "try:\n"
        "    read_swarm(settings, deadline=2)\n"
        "except DockerHostError as error:\n"
        "    print(round(time.monotonic() - started, 1))\n"
        "    print(error)\n"
        "print(threading.enumerate() == threads, threading.active_count())\n"
        f"pid = int(open({str(pid_file)!r}).read())\n"
        "try:\n"
        "    os.kill(pid, 0)\n"
        "    print('ssh still running')\n"
        "except ProcessLookupError:\n"
        "    print('ssh gone')\n"
    )
    elapsed, reason, threads, ssh = in_child(script, path_prefix=f"{fake_bin}{os.pathsep}")
    assert 2 <= float(elapsed) < 5
    assert reason.startswith("did not answer within 2 s: ")  # not only the broken pipe it ends as
    assert threads == "True 1"
    assert ssh == "ssh gone"


def test_an_unreachable_host_is_a_docker_host_error_naming_it(tmp_path: Path) -> None:
    host = f"unix://{tmp_path}/no-such.sock"
    with pytest.raises(DockerHostError, match=f"^cannot reach the Docker host {re.escape(host)}: "):
        reachable_client(host, timeout=2, deadline=2)
