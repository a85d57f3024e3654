"""Deliberate rotation helpers: the value travels by pipe only, the SQL keeps WordPress working."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from swarmops.rotate import RANDOM_PASSWORD, RotationError, main, password_from_export, rotation_script
from tests.sdk_mocks import SECRET_SIG, SECRET_VALUE

NEW = "n3w#Pass+w0rd~!"  # '#' would start a comment in an unquoted option-file value
ROOT = "r00t#Pass=%x"


def export(result: Any) -> dict[str, Any]:
    urn = "urn:pulumi:prod::wordpress-swarm::wordpress-swarm:mysql:MySqlWithSecrets$random:index/randomPassword"
    return {
        "deployment": {
            "resources": [
                {
                    "urn": f"{urn}:RandomPassword::db-user-password",
                    "type": RANDOM_PASSWORD,
                    "outputs": {"result": result},
                },
                {"urn": f"{urn}:RandomPassword::db-root-password", "type": RANDOM_PASSWORD, "outputs": {}},
                {"urn": "urn:pulumi:prod::wordpress-swarm::docker:index/secret:Secret::db-user-password", "type": "x"},
            ]
        }
    }


def test_password_comes_from_a_show_secrets_export() -> None:
    shown = {SECRET_SIG: SECRET_VALUE, "plaintext": json.dumps(NEW)}
    assert password_from_export(export(shown), "db-user-password") == NEW
    assert password_from_export(export(NEW), "db-user-password") == NEW


def test_encrypted_or_missing_values_are_refused_with_the_fix() -> None:
    encrypted = {SECRET_SIG: SECRET_VALUE, "ciphertext": "v1:abc"}
    with pytest.raises(RotationError, match="--show-secrets"):
        password_from_export(export(encrypted), "db-user-password")
    with pytest.raises(RotationError, match="targeted `pulumi up` first"):
        password_from_export(export(NEW), "db-root-password")
    with pytest.raises(RotationError, match="it has: db-root-password, db-user-password"):
        password_from_export(export(NEW), "db-admin-password")


def test_urn_is_printed_for_a_targeted_up(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(export(NEW))))
    assert main(["urn", "db-user-password"]) == 0
    assert capsys.readouterr().out.strip().endswith("RandomPassword::db-user-password")


def test_password_is_never_printed_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(export(NEW))))
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["password", "db-user-password"]) == 1
    captured = capsys.readouterr()
    assert NEW not in captured.out + captured.err
    assert "refusing to print a password on a terminal" in captured.err


def run_in_fake_mysql_task(tmp_path: Path, script: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """Runs the script with bash as the task would, with a recording `mysql` first on PATH and the
    secret file and /tmp mapped into tmp_path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "mysql-root-password").write_text(ROOT)
    recorder = bin_dir / "mysql"
    recorder.write_text(
        "#!/bin/bash\n"
        f'printf "%s\\n" "$@" > {tmp_path}/argv\n'
        f"cat > {tmp_path}/stdin\n"
        f'cp "${{1#--defaults-extra-file=}}" {tmp_path}/cnf\n'
    )
    recorder.chmod(0o755)
    script = script.replace("/run/secrets", str(secrets)).replace("/tmp/rotate.cnf", str(tmp_path / "rotate.cnf"))
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "MYSQL_USER": "wordpress"}
    return subprocess.run(["bash", "-c", script], input=stdin, env=env, capture_output=True, text=True, check=False)


def test_root_script_switches_both_root_accounts_without_a_password_on_a_command_line(tmp_path: Path) -> None:
    done = run_in_fake_mysql_task(tmp_path, rotation_script(), NEW + "\n")
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "argv").read_text()
    assert NEW not in argv and ROOT not in argv  # noqa: PT018 - one claim: no password on mysql's command line
    assert (tmp_path / "stdin").read_text().splitlines() == [
        f"ALTER USER IF EXISTS 'root'@'%' IDENTIFIED BY '{NEW}';",
        f"ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED BY '{NEW}';",
    ]
    assert (tmp_path / "cnf").read_text() == f'[client]\nuser=root\npassword="{ROOT}"\n'
    assert not (tmp_path / "rotate.cnf").exists(), "the option file is removed"


def test_script_refuses_an_empty_new_password(tmp_path: Path) -> None:
    done = run_in_fake_mysql_task(tmp_path, rotation_script(), "")
    assert done.returncode == 1
    assert "no new password on stdin" in done.stderr
    assert not (tmp_path / "stdin").exists()


def test_only_root_has_a_script(capsys: pytest.CaptureFixture[str]) -> None:
    # The application user's password follows its secret at every start of the server.
    with pytest.raises(SystemExit):
        main(["script", "user"])
    assert "invalid choice: 'user'" in capsys.readouterr().err
