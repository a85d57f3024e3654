"""The dev stack under the real Pulumi CLI and providers, on this machine's single-node swarm.

What a mock engine can't show: diffs against what the provider reads back, replacements, converge,
signals, and what the state holds. One stack (unique env label and port, the lab images,
this node listed in nodes.names so the stack labels it itself) goes through a life in order:
preview with the policy pack, up, idempotence, small changes, replacements, an interrupted up,
destroy and a re-up that finds the old data. Each test leaves the stack converged for the next.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import docker
import pytest

from stackconfig.names import STACK_LABEL, WORDPRESS_KEYS
from swarmops.rotate import RANDOM_PASSWORD, find_password_resource, password_from_export, rotation_script

from . import harness, site, swarm_tasks
from .pulumi_cli import Project, Stack, disposable_stack, stack_service, steps, tail

STACK = f"rt{harness.SESSION_ID}"
ROLE_OUTPUT = {"mysql": "mysqlService", "wordpress": "wordpressService", "logging": "loggingService"}


def stack_config(images: dict[str, str], port: int, node: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "envLabel": f"rt-{harness.SESSION_ID}",
        "wordpress": {
            "image": images["wordpress"],
            "port": port,
            "publishMode": "host",
            "publicHost": "127.0.0.1",
            "memoryMb": 256,
        },
        "mysql": {"image": images["mysql"], "memoryMb": 512},
        "logging": {"image": images["logging"], "memoryMb": 32},
        "nodes": {"names": [node]},
    }
    for group, values in overrides.items():
        config[group] = {**config.get(group, {}), **values}
    return config


class Life:
    """The module's one stack and what the tests change on it."""

    def __init__(self, project: Project, engine: docker.DockerClient, images: dict[str, str]) -> None:
        self.engine = engine
        self.images = images
        self.port = harness.free_tcp_port()
        self.node = str(engine.info()["Name"])
        self.overrides: dict[str, dict[str, Any]] = {}
        self.last_outputs: dict[str, Any] = {}  # the stack's outputs after the last up
        self.stack: Stack = project.stack(STACK, self.config())

    def config(self) -> dict[str, Any]:
        return stack_config(self.images, self.port, self.node, **self.overrides)

    def change(self, group: str, **values: Any) -> None:
        self.overrides[group] = {**self.overrides.get(group, {}), **values}
        self.stack.write_config(self.config())

    def service(self, role: str) -> Any:
        return stack_service(self.engine, STACK, role)

    def browser(self) -> site.Browser:
        return site.Browser(f"http://127.0.0.1:{self.port}")

    def wait_site(self, timeout: float = 90) -> None:
        """The installed site's front page, served from the database, once WordPress answers."""

        def shown() -> bool:
            try:
                return site.front_page_title(self.browser()) == site.TITLE
            except OSError:
                return False

        harness.wait_for(shown, timeout=timeout, interval=1, what=f"the site's front page on port {self.port}")

    def exits_since(self, since: float) -> dict[str, list[int]]:
        """role -> exit codes of this stack's task containers that died since `since`."""
        events = self.engine.events(
            since=int(since), until=int(time.time()) + 1, filters={"type": "container", "event": "die"}, decode=True
        )
        exits: dict[str, list[int]] = {}
        for event in events:
            attributes = event["Actor"]["Attributes"]
            service = attributes.get("com.docker.swarm.service.name", "")
            for role in ROLE_OUTPUT:
                if service and service == self.service_name_of(role):
                    exits.setdefault(role, []).append(int(attributes.get("exitCode", "-1")))
        return exits

    def service_name_of(self, role: str) -> str:
        return str(self.last_outputs[ROLE_OUTPUT[role]])

    def up(self, *extra: str) -> subprocess.CompletedProcess[str]:
        result = self.stack.up(*extra)
        self.last_outputs = self.stack.outputs()
        return result


@pytest.fixture(scope="module")
def life(pulumi_project: Project, engine: docker.DockerClient, lab_images: dict[str, str]) -> Iterator[Life]:
    with disposable_stack(pulumi_project, STACK, engine):
        # A volume of that name made earlier (by hand, or by an older stack), with other labels: the
        # stack adopts it by name, and its labels must not make every later run replace it.
        engine.volumes.create(
            name=f"wordpress-swarm-{STACK}-wordpress-content", driver="local", labels={STACK_LABEL: STACK}
        )
        yield Life(pulumi_project, engine, lab_images)


def test_preview_passes_the_policy_pack(life: Life) -> None:
    result = life.stack.preview("--policy-pack", str(life.stack.project.policy_pack))
    assert "Loading policy packs...: done" in result.stdout, tail(result)


def test_a_password_in_a_service_env_is_refused_by_the_policy_pack(
    life: Life, tmp_path: Path, pulumi_project: Project
) -> None:
    broken = Project(tmp_path / "broken", pulumi_project.toolchain)
    wordpress = broken.directory / "components" / "wordpress.py"
    source = wordpress.read_text()
    assert '"WORDPRESS_DB_PASSWORD_FILE": password.path,' in source
    wordpress.write_text(
        source.replace(
            '"WORDPRESS_DB_PASSWORD_FILE": password.path,', '"WORDPRESS_DB_PASSWORD": "plain-text-in-env-1",'
        )
    )
    stack = broken.stack("broken", life.config())
    result = stack.preview("--policy-pack", str(broken.policy_pack), check=False)
    assert result.returncode != 0, tail(result)
    assert "service-env-no-secrets" in result.stdout + result.stderr, tail(result)


def test_up_converges_healthy_and_verify_passes(life: Life) -> None:
    life.up()
    # WordPress reaches MySQL with the generated password: its installer writes the site's tables.
    site.answers(life.browser())
    site.install(life.browser(), token_urlsafe(16))
    life.wait_site()
    verified = life.stack.verify("--wait", "120")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    rows = {row["check"]: row for row in json.loads(verified.stdout)["rows"] if row["target"].startswith("mysql ")}
    assert rows["database"]["status"] == "PASS", rows["database"]


def test_a_second_run_changes_nothing(life: Life) -> None:
    life.stack.preview("--expect-no-changes")
    life.stack.pulumi("refresh", "--yes", "--skip-preview", "--expect-no-changes")
    life.stack.up("--expect-no-changes")


def test_a_memory_limit_updates_only_mysql_in_place_and_its_old_task_stops_cleanly(life: Life) -> None:
    life.change("mysql", memoryMb=640)
    assert steps(life.stack.preview_json()) == {"db-mysql": "update"}
    since = time.time()
    life.up()
    assert life.service("mysql").attrs["Spec"]["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] == 640 << 20
    # SIGTERM, and the server's own clean exit: not the SIGKILL (137) of a zero grace period.
    assert life.exits_since(since).get("mysql") == [0]
    life.wait_site()


def test_a_log_route_updates_only_the_logging_daemon(life: Life) -> None:
    life.change("logging", route="syslog://127.0.0.1:5514")
    assert steps(life.stack.preview_json()) == {"logging-logspout": "update"}
    life.up()
    assert life.service("logging").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"] == ["syslog://127.0.0.1:5514"]


@pytest.mark.parametrize("resource", ["site-wordpress", "db-mysql"])
def test_a_replaced_service_takes_over_its_port_and_volume(life: Life, resource: str) -> None:
    before = life.last_outputs
    life.up("--replace", life.stack.urn(resource))
    key = "wordpressService" if resource == "site-wordpress" else "mysqlService"
    assert life.last_outputs[key] != before[key], "the service was not replaced"
    # The same keys and salts (and secrets) on the new service: nobody is logged out.
    assert life.last_outputs["wordpressSecrets"] == before["wordpressSecrets"]
    assert set(before["wordpressSecrets"]) <= set(secrets_of(life, "wordpress"))
    life.wait_site()
    life.stack.preview("--expect-no-changes")


def test_no_plaintext_password_in_the_state_or_on_the_swarm(life: Life) -> None:
    revealed = life.stack.export(show_secrets=True)
    names = [r["urn"].rsplit("::", 1)[1] for r in revealed["deployment"]["resources"] if r["type"] == RANDOM_PASSWORD]
    passwords = {password_from_export(revealed, name) for name in names}
    # The database's two passwords and WordPress's eight keys and salts.
    assert len(passwords) == 2 + len(WORDPRESS_KEYS), "expected every generated value in the revealed state"
    state = json.dumps(life.stack.export())
    inspected = json.dumps([life.service(role).attrs for role in ("mysql", "wordpress", "logging")])
    secrets = json.dumps([s.attrs for s in life.engine.secrets.list()])
    for where, text in (("the state", state), ("the services", inspected), ("the secrets' metadata", secrets)):
        leaked = sum(password in text for password in passwords)
        assert leaked == 0, f"{leaked} generated password(s) in plain text in {where}"


def secrets_of(life: Life, role: str) -> list[str]:
    container = life.service(role).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    return sorted(secret["SecretName"] for secret in container.get("Secrets", []))


def in_mysql(life: Life, script: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """A bash script in MySQL's task, as an operator runs one: `docker exec -i`, input on a pipe."""
    task = swarm_tasks.running_tasks(life.engine, life.service_name_of("mysql"))[0]
    return subprocess.run(
        ["docker", "exec", "-i", swarm_tasks.task_container_id(task), "bash", "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


# Root's login with the root password mounted now (an option file on a pipe, as rotate's own).
_ROOT_OPTIONS = 'printf \'[client]\\nuser=root\\npassword="%s"\\n\' "$(cat $MYSQL_ROOT_PASSWORD_FILE)"'
ROOT_LOGIN = f"mysql --defaults-extra-file=<({_ROOT_OPTIONS}) -N -e 'SELECT CURRENT_USER()'"


def test_a_new_user_password_rolls_out_with_one_up(life: Life) -> None:
    """docs/operations.md, "Rotating passwords on purpose": bump the generation, `pulumi up`. MySQL
    takes the new password from its init file as it restarts; WordPress gets the new secret."""
    old_secret = life.last_outputs["wordpressSecrets"][0]
    life.change("mysql", userPasswordGeneration=2)
    # The password and its secret (one name, two resources), the init file; both services in place.
    assert steps(life.stack.preview_json()) == {
        "db-user-password": "replace",
        "db-init-file": "replace",
        "db-mysql": "update",
        "site-wordpress": "update",
    }
    life.up()
    new_secret = life.last_outputs["wordpressSecrets"][0]
    assert new_secret != old_secret
    assert new_secret in secrets_of(life, "mysql")
    assert new_secret in secrets_of(life, "wordpress")
    assert old_secret not in {secret.name for secret in life.engine.secrets.list()}
    life.wait_site()  # WordPress logs in with the new password
    life.stack.preview("--expect-no-changes")


def test_the_root_runbook_sets_a_new_root_password(life: Life) -> None:
    """docs/operations.md, root's rotation, for real: a targeted up generates the new value; the
    rotation tool's script, fed through a pipe, sets it with the old one still mounted; an up
    mounts the new one, which then logs in."""
    old = password_from_export(life.stack.export(show_secrets=True), "db-root-password")
    life.change("mysql", rootPasswordGeneration=2)
    life.stack.up("--target", find_password_resource(life.stack.export(), "db-root-password")["urn"])
    new = password_from_export(life.stack.export(show_secrets=True), "db-root-password")
    assert new != old
    taught = in_mysql(life, rotation_script(), new + "\n")
    assert taught.returncode == 0, taught.stderr
    life.up()
    logged_in = in_mysql(life, ROOT_LOGIN)
    assert (logged_in.returncode, logged_in.stdout.strip()) == (0, "root@localhost"), logged_in.stderr
    life.wait_site()


def pending_operations(stack: Stack) -> list[Any]:
    return stack.export()["deployment"].get("pending_operations") or []


@pytest.mark.parametrize("presses", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_an_interrupted_up_is_recovered_as_the_readme_says(life: Life, presses: int) -> None:
    life.change("mysql", memoryMb=600 - 8 * presses)
    interrupted = life.stack.interrupted_up(after=4, presses=presses)
    assert interrupted.returncode != 0, interrupted.stdout[-2000:]
    if presses == 1:
        # The operations in flight finish and are recorded: nothing is left pending.
        assert "update canceled" in interrupted.stdout, interrupted.stdout[-2000:]
        assert pending_operations(life.stack) == []
    else:
        # Stopped at once: the state doesn't know how the in-flight updates ended.
        assert pending_operations(life.stack), interrupted.stdout[-2000:]
        life.stack.pulumi("refresh", "--yes", "--skip-preview")
        assert pending_operations(life.stack) == []
    life.up()
    life.stack.preview("--expect-no-changes")
    life.wait_site()


def test_destroy_keeps_the_data_volumes_and_a_later_up_finds_the_data(life: Life) -> None:
    wordpress_task = swarm_tasks.running_tasks(life.engine, life.last_outputs["wordpressService"])[0]
    container = life.engine.containers.get(swarm_tasks.task_container_id(wordpress_task))
    upload = f"/var/www/html/wp-content/uploads/before-destroy-{harness.SESSION_ID}.txt"
    assert swarm_tasks.exec_output(container, ["sh", "-c", f"echo kept > {upload}"])[0] == 0

    since = time.time()
    life.stack.destroy()
    exits = life.exits_since(since)
    assert exits.get("mysql") == [0], exits
    assert life.engine.services.list(filters={"label": f"{STACK_LABEL}={STACK}"}) == []
    volumes = {v.name for v in life.engine.volumes.list(filters={"label": f"{STACK_LABEL}={STACK}"})}
    assert volumes == {f"wordpress-swarm-{STACK}-mysql-data", f"wordpress-swarm-{STACK}-wordpress-content"}
    node_labels = life.engine.nodes.get(swarm_tasks.local_node_id(life.engine)).attrs["Spec"].get("Labels") or {}
    assert node_labels.get("env") != life.config()["envLabel"]

    life.up()
    # The database kept the installed site, wp-content the upload.
    life.wait_site()
    wordpress_task = swarm_tasks.running_tasks(life.engine, life.last_outputs["wordpressService"])[0]
    container = life.engine.containers.get(swarm_tasks.task_container_id(wordpress_task))
    assert swarm_tasks.exec_output(container, ["cat", upload]) == (0, "kept\n")
    life.stack.preview("--expect-no-changes")
