"""Backups that are restored: the stack's backup jobs, `python -m swarmops.backups` and the verifier,
for real on this machine's swarm with the lab images (MariaDB, WordPress), under the real CLI.

A site with a published post and an upload is backed up, loses both, and gets them back; a backup
taken while transactions run restores consistent; a truncated backup fails its rehearsal; the
verifier notices when no backup is young enough; retention keeps exactly `keep`; and no password
shows in the jobs' specs, processes, environment or logs. The figures (backup and restore times,
a backup's size) appear in the session's summary.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import docker
import pytest
from docker.errors import APIError

from swarmlib import services
from swarmops.rotate import RANDOM_PASSWORD, password_from_export

from . import harness, site, swarm_tasks
from .pulumi_cli import VENV, Project, Stack, disposable_stack, stack_service
from .test_pulumi_real import stack_config

STACK = f"bk{harness.SESSION_ID}"
KEEP = 2
POST = f"A post to keep {harness.SESSION_ID}"
UPLOAD = f"kept-{harness.SESSION_ID}.txt"


@dataclass
class BackedUp:
    engine: docker.DockerClient
    stack: Stack
    port: int
    password: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tool(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`python -m swarmops.backups --stack <stack> ...`, as an operator runs it."""
        done = subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "swarmops.backups", "--stack", STACK, *args],
            cwd=self.stack.project.directory,
            env=self.stack.project.env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def listing(self) -> list[tuple[str, str]]:
        """(stamp, complete|INCOMPLETE) of every backup, oldest first."""
        return [(line.split()[0], line.split()[1]) for line in self.tool("list").stdout.splitlines() if line.strip()]

    def backups_row(self) -> dict[str, Any]:
        verified = self.stack.verify()
        (row,) = [r for r in json.loads(verified.stdout)["rows"] if r["check"] == "backups"]
        return row

    def xmlrpc(self) -> Any:
        return xmlrpc.client.ServerProxy(f"{self.base}/xmlrpc.php")

    def job(self, part: str) -> str:
        return str(stack_service(self.engine, STACK, f"backup-{part}").name)

    def in_job(self, script: str) -> services.Ended:
        """A shell script run once where the backups live (as the tool runs its own)."""
        ended = services.run_like(self.engine, self.job("database"), ["bash", "-c", script])
        assert ended.exit_code == 0, ended
        return ended


@pytest.fixture(scope="module")
def backed_up(pulumi_project: Project, engine: docker.DockerClient, lab_images: dict[str, str]) -> Iterator[BackedUp]:
    node = str(engine.info()["Name"])
    port = harness.free_tcp_port()
    config = stack_config(lab_images, port, node, wordpress={"node": node})
    config["envLabel"] = f"bk-{harness.SESSION_ID}"
    config["backup"] = {"enabled": True, "node": node, "keep": KEEP, "intervalMinutes": 1440}
    with disposable_stack(pulumi_project, STACK, engine):
        stack = pulumi_project.stack(STACK, config)
        stack.up()
        for volume in ("backups",):  # disposable_stack removes the stack's labelled volumes
            assert engine.volumes.get(f"wordpress-swarm-{STACK}-{volume}")
        backed = BackedUp(engine, stack, port, token_urlsafe(18))
        site.answers(site.Browser(backed.base))
        site.install(site.Browser(backed.base), backed.password)
        yield backed


def test_the_schedulers_take_a_backup_of_the_day_and_the_verifier_reports_it(backed_up: BackedUp) -> None:
    def scheduled() -> list[tuple[str, str]] | None:
        found = backed_up.listing()
        return found if any(state == "complete" for _, state in found) else None

    (stamp, state), *_ = harness.wait_for(scheduled, timeout=120, interval=3, what="the first scheduled backup")
    # The day's interval, UTC-aligned: both parts land in the same directory.
    assert stamp == dt.datetime.now(dt.UTC).strftime("%Y%m%dT000000Z")
    assert state == "complete"
    row = harness.wait_for(
        lambda: (r := backed_up.backups_row())["status"] == "PASS" and r, timeout=60, interval=2, what="a PASS"
    )
    assert f"newest {stamp}" in row["detail"]


def test_a_deleted_post_and_upload_come_back_with_a_restore(backed_up: BackedUp) -> None:
    rpc = backed_up.xmlrpc()
    post = rpc.wp.newPost(0, site.ADMIN, backed_up.password, {"post_title": POST, "post_status": "publish"})
    upload = rpc.wp.uploadFile(
        0,
        site.ADMIN,
        backed_up.password,
        {"name": UPLOAD, "type": "text/plain", "bits": xmlrpc.client.Binary(b"kept\n")},
    )
    assert site.Browser(backed_up.base).request(urlpath(upload["url"])).status == 200

    started = time.monotonic()
    backed_up.tool("now")
    harness.TIMINGS["backups: take one (both parts)"] = time.monotonic() - started
    newest = backed_up.tool("list").stdout.splitlines()[-1].split()
    harness.FIGURES["backups: size of a backup of the test site"] = f"{newest[2]} MB"

    rpc.wp.deletePost(0, site.ADMIN, backed_up.password, int(post))
    wordpress = swarm_tasks.running_tasks(backed_up.engine, backed_up.stack.outputs()["wordpressService"])[0]
    container = backed_up.engine.containers.get(swarm_tasks.task_container_id(wordpress))
    assert container.exec_run(["sh", "-c", "rm -f /var/www/html/wp-content/uploads/*/*/" + UPLOAD]).exit_code == 0
    assert site.Browser(backed_up.base).request(urlpath(upload["url"])).status == 404
    assert not published(backed_up, POST)

    refused = backed_up.tool("restore", check=False)
    assert refused.returncode == 2
    assert f"--confirm {STACK}" in refused.stderr

    started = time.monotonic()
    restored = backed_up.tool("restore", "--confirm", STACK)
    harness.TIMINGS["backups: restore (both parts, WordPress stopped and started)"] = time.monotonic() - started
    assert "stopped" in restored.stdout
    assert "started" in restored.stdout
    assert "database: ok" in restored.stdout
    assert "content: ok" in restored.stdout
    site.answers(site.Browser(backed_up.base))
    assert published(backed_up, POST)
    assert site.Browser(backed_up.base).request(urlpath(upload["url"])).status == 200


def urlpath(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def published(backed_up: BackedUp, title: str) -> bool:
    posts = backed_up.xmlrpc().wp.getPosts(0, site.ADMIN, backed_up.password, {"post_status": "publish"})
    return any(p["post_title"] == title for p in posts)


WRITER = (Path(__file__).parent / "scripts" / "ledger-writer.sh").read_text()
SUM = "SELECT (SELECT balance FROM wpswarm_ledger_a WHERE id = 1) + (SELECT balance FROM wpswarm_ledger_b WHERE id = 1)"


def test_a_backup_taken_while_transactions_run_restores_consistent(backed_up: BackedUp) -> None:
    writing: dict[str, services.Ended] = {}

    def write() -> None:
        writing["writer"] = services.run_like(
            backed_up.engine,
            backed_up.job("database"),
            ["bash", "-c", WRITER],
            env={"WRITE_SECONDS": "40"},
        )

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(20)  # the ledger and the filler are in; transfers are running
    backed_up.tool("now")
    writer.join(timeout=300)
    assert writing["writer"].exit_code == 0, writing["writer"]
    moved = int(writing["writer"].output.split("moved ")[-1].split()[0])
    assert moved > 50, "too few transactions ran to say anything"

    backed_up.tool("restore", "--confirm", STACK)
    total = backed_up.in_job(
        "mysql --defaults-extra-file=<(printf '[client]\\nuser=%s\\npassword=\"%s\"\\nhost=%s\\n' "
        '"$DB_USER" "$(cat "$DB_PASSWORD_FILE")" "$DB_HOST") "$DB_NAME" -N -e ' + f'"{SUM}"'
    )
    assert total.output.split()[-1] == "1000", total.output


def test_a_good_backup_rehearses_and_a_truncated_one_fails_saying_why(backed_up: BackedUp) -> None:
    started = time.monotonic()
    good = backed_up.tool("rehearse", "--expect-post", POST)
    harness.TIMINGS["backups: rehearsal (scratch server, both parts)"] = time.monotonic() - started
    assert "rehearsing backup" in good.stdout
    assert "post found" in good.stdout
    assert good.stdout.count("rehearsal: PASS") == 2
    stamp = backed_up.listing()[-1][0]
    before = backed_up.in_job("sha256sum /backups/*/database.sql.gz").output

    backed_up.in_job(f"f=/backups/{stamp}/database.sql.gz; truncate -s $(($(stat -c %s $f) / 2)) $f")
    bad = backed_up.tool("rehearse", "--from", stamp, check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "doesn't match its checksum (damaged or truncated)" in bad.stdout
    # Nothing live was touched: the other backups, the site.
    assert before.count("database.sql.gz") == backed_up.in_job("ls /backups/*/database.sql.gz").output.count("sql.gz")
    site.answers(site.Browser(backed_up.base))


def test_the_verifier_fails_without_a_young_backup_and_passes_after_one_runs(backed_up: BackedUp) -> None:
    backed_up.tool("pause")
    # Only a backup of three days ago is left.
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).strftime("%Y%m%dT000000Z")
    backed_up.in_job(
        f"rm -rf /backups/*Z && mkdir /backups/{old} && "
        f'echo \'{{"part": "database"}}\' > /backups/{old}/database.json && '
        f'echo \'{{"part": "content"}}\' > /backups/{old}/wp-content.json'
    )
    row = backed_up.backups_row()
    assert row["status"] == "FAIL", row
    assert f"the newest complete backup, {old}" in row["detail"]
    assert "more than twice the 1440 min interval" in row["detail"]
    assert "paused since" in row["detail"]

    backed_up.tool("resume")
    row = harness.wait_for(
        lambda: (r := backed_up.backups_row())["status"] == "PASS" and r, timeout=120, interval=3, what="a PASS"
    )
    assert "paused" not in row["detail"]


def test_retention_keeps_exactly_keep_backups(backed_up: BackedUp) -> None:
    for _ in range(KEEP + 1):
        backed_up.tool("now")
        time.sleep(1)  # one backup per second's stamp
    listing = backed_up.listing()
    assert [state for _, state in listing] == ["complete"] * KEEP, listing


@pytest.mark.parametrize("part", ["database", "content"])
def test_a_job_between_backups_stops_at_once(backed_up: BackedUp, part: str) -> None:
    # The scheduler ends its wait on SIGTERM, in either image (WordPress's own stop signal is
    # Apache's SIGWINCH): a job's update, drain or destroy doesn't sit out its 5-minute grace.
    # A forced update stops the task and, unlike a scale-down, keeps it in the task history.
    engine, job = backed_up.engine, backed_up.job(part)
    services.wait_for_replicas(engine, job, 1)
    (before,) = swarm_tasks.running_tasks(engine, job)
    started = time.monotonic()
    engine.services.get(job).force_update()
    while (old := engine.api.inspect_task(before["ID"]))["Status"]["State"] == "running":
        assert time.monotonic() - started < 360, old["Status"]
        time.sleep(0.5)
    stopped_in = time.monotonic() - started
    services.wait_for_replicas(engine, job, 1)
    assert stopped_in < 30, f"{job} took {stopped_in:.0f} s to stop"
    # A stopped task ends "shutdown" either way: its exit code tells a clean exit from a kill (137).
    assert old["Status"]["ContainerStatus"]["ExitCode"] == 0, old["Status"]


PROCESSES = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; tr '\\0' ' ' < $p/environ; echo; done 2>/dev/null"


def processes_during_a_backup(backed_up: BackedUp) -> str:
    """Every process's command line and environment in the on-demand backup's tasks, sampled
    while they run (mysqldump, tar, and the shells around them)."""
    taking = threading.Thread(target=lambda: backed_up.tool("now"))
    taking.start()
    seen: list[str] = []
    # One-shot tasks are named after the job they copy (swarmlib.services.run_like).
    once = tuple(f"{backed_up.job(part)[:40]}-once-" for part in ("database", "content"))
    while taking.is_alive():
        for container in backed_up.engine.containers.list(filters={"name": "-once-"}):
            if str(container.name).startswith(once):
                with contextlib.suppress(APIError):  # it ended between list and exec
                    seen.append(swarm_tasks.exec_output(container, ["bash", "-c", PROCESSES])[1])
        time.sleep(0.2)
    taking.join()
    assert seen, "no on-demand backup task was caught running"
    return "\n".join(seen)


def test_no_password_in_the_jobs_specs_processes_environment_or_logs(backed_up: BackedUp) -> None:
    revealed = backed_up.stack.export(show_secrets=True)
    names = [r["urn"].rsplit("::", 1)[1] for r in revealed["deployment"]["resources"] if r["type"] == RANDOM_PASSWORD]
    passwords = {password_from_export(revealed, name) for name in names}
    texts: dict[str, str] = {"processes during a backup": processes_during_a_backup(backed_up)}
    for part in ("database", "content"):
        service = stack_service(backed_up.engine, STACK, f"backup-{part}")
        texts[f"{part} spec"] = json.dumps(service.attrs["Spec"])
        texts[f"{part} logs"] = b"".join(service.logs(stdout=True, stderr=True)).decode(errors="replace")
        for task in service.tasks(filters={"desired-state": "running"}):
            container = backed_up.engine.containers.get(swarm_tasks.task_container_id(task))
            texts[f"{part} container"] = json.dumps(container.attrs["Config"])
            texts[f"{part} processes"] = swarm_tasks.exec_output(container, ["bash", "-c", PROCESSES])[1]
    for where, text in texts.items():
        leaked = sum(password in text for password in passwords)
        assert leaked == 0, f"{leaked} password(s) in the backup job's {where}"
