"""Prove the product's MySQL health check (components.mysql.MYSQL_HEALTH) on a real server in a real swarm.

The check is ``mysqladmin ping --protocol=tcp --host=127.0.0.1 --port=3306 --silent`` (exec form),
chosen on two claims:

1. the official image's first start runs a temporary server with ``--skip-networking`` (no TCP
   listener), so the check FAILS during init and the task stays 'starting';
2. ``mysqladmin ping`` exits 0 on any server answer, even "Access denied", so the check needs no
   credentials.

``mysql:8.4`` cannot be pulled here, so the server is MariaDB 10.11 from Debian bookworm, in the lab
mysql image (swarmops/lab_images: its entrypoint keeps the official first start).  Every test runs
the EXACT command list of ``MYSQL_HEALTH.test`` as the service's health check, and also by
``docker exec``.  Only the check's *interval* (and, in test a, its start period) is shortened, for
test time: timeout and retries are the product's.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import docker
import pytest
from docker.models.containers import Container
from docker.models.secrets import Secret
from docker.models.services import Service
from docker.types import Healthcheck, Mount, RestartPolicy, SecretReference

from components.mysql import DATA_DIR, MYSQL_HEALTH
from components.specs import PASSWORD_SPECIALS
from stackconfig.names import MYSQL_ROOT_PASSWORD_FILE, MYSQL_USER_PASSWORD_FILE, SECRETS_DIR

from . import harness, swarm_tasks

SECOND = 1_000_000_000  # docker API durations are nanoseconds
#: The product's health check command, exactly; "CMD" means exec form, the rest is what runs.
HEALTH_TEST: list[str] = list(MYSQL_HEALTH.test)
PROBE: list[str] = HEALTH_TEST[1:]
#: The same probe without --silent: shows *why* it passed or failed (diagnostics only).
PROBE_VERBOSE: list[str] = [arg for arg in PROBE if arg != "--silent"]
#: Test c keeps the init's temporary server up this long (MariaDB's own init takes ~1 s), with an
#: init script of its own, run by the entrypoint like any /docker-entrypoint-initdb.d script.
INIT_HOLD_SECONDS = 4
HOLD_SCRIPT = f'log "hold: start"; sleep {INIT_HOLD_SECONDS}; log "hold: over"\n'
#: The temporary init server's socket (the lab entrypoint's; the real server uses Debian's default).
INIT_SOCKET = "/run/mysqld/init.sock"
APP_USER = "wordpress"
APP_DATABASE = "wordpress"
ROOT_PASSWORD_PATH = f"{SECRETS_DIR}/{MYSQL_ROOT_PASSWORD_FILE}"
USER_PASSWORD_PATH = f"{SECRETS_DIR}/{MYSQL_USER_PASSWORD_FILE}"


@pytest.fixture(scope="module")
def mariadb_image(lab_images: dict[str, str]) -> str:
    return lab_images["mysql"]


@pytest.fixture(scope="module")
def holding_mariadb_image(
    engine: docker.DockerClient, mariadb_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The lab mysql image with HOLD_SCRIPT in /docker-entrypoint-initdb.d."""
    context = tmp_path_factory.mktemp("holding-mariadb")
    (context / "00-hold.sh").write_text(HOLD_SCRIPT)
    (context / "Dockerfile").write_text(f"FROM {mariadb_image}\nCOPY 00-hold.sh /docker-entrypoint-initdb.d/\n")
    tag = f"wpswarm-test/mysql-init-hold:{harness.SESSION_ID}"
    engine.images.build(path=str(context), tag=tag, rm=True, pull=False)
    yield tag
    engine.images.remove(tag, force=True)


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def duration_ns(text: str) -> int:
    """A Go/Pulumi duration such as ``5s``, ``3m`` or ``1m30s`` in nanoseconds."""
    units = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": SECOND, "m": 60 * SECOND, "h": 3600 * SECOND}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return int(sum(float(n) * units[u] for n, u in parts))


def product_healthcheck(*, interval: int = 1 * SECOND, start_period: int | None = None) -> Healthcheck:
    """MYSQL_HEALTH as a docker-py Healthcheck: the product's test, timeout and retries; the
    interval shortened for test time (product: 10s); the start period the product's unless given."""
    return Healthcheck(
        test=HEALTH_TEST,
        interval=interval,
        timeout=duration_ns(MYSQL_HEALTH.timeout),
        retries=MYSQL_HEALTH.retries,
        start_period=duration_ns(MYSQL_HEALTH.start_period) if start_period is None else start_period,
    )


def make_password(length: int = 24) -> str:
    """Like the product's generated passwords: letters, digits and PASSWORD_SPECIALS."""
    alphabet = string.ascii_letters + string.digits + PASSWORD_SPECIALS
    return "".join(secrets.choice(alphabet) for _ in range(length))


def parse_time(text: str) -> float:
    """RFC 3339 with up to nanoseconds (docker, ``date +%N``) as a POSIX timestamp."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    base, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    return stamp + (float("0." + fraction) if fraction else 0.0)


def secret_ref(secret: Secret, path: str) -> SecretReference:
    # As the product mounts MySQL's (components.specs.SecretMount): absolute path, root's alone.
    return SecretReference(str(secret.id), str(secret.name), filename=path, uid="0", gid="0", mode=0o400)


def create_mariadb_service(
    engine: docker.DockerClient,
    res: harness.TestResources,
    image: str,
    name: str,
    *,
    healthcheck: Healthcheck,
    args: Sequence[str] | None = None,
    env: dict[str, str] | None = None,
    secret_refs: Sequence[SecretReference] = (),
    mounts: Sequence[Mount] = (),
) -> Service:
    # `args` replaces the image's CMD, keeping its ENTRYPOINT (a service's `command` would replace that).
    return engine.services.create(
        image,
        args=list(args) if args is not None else None,
        name=res.name(name),
        labels=res.labels,
        container_labels=res.labels,
        env=env or {},
        secrets=list(secret_refs),
        mounts=list(mounts),
        healthcheck=healthcheck,
        restart_policy=RestartPolicy(condition="none"),  # one task per test: its fate is the result
        init=True,  # PID 1 forwards SIGTERM: no waiting out the grace period
        stop_grace_period=1 * SECOND,
    )


def with_password_file(path: str, mariadb_args: Sequence[str]) -> list[str]:
    """Run ``mariadb`` with the password read from ``path`` into an option file on a pipe:
    the password is on no command line and printed nowhere."""
    script = 'exec mariadb --defaults-extra-file=<(printf \'[client]\\npassword="%s"\\n\' "$(cat "$1")") "${@:2}"'
    return ["bash", "-c", script, "bash", path, *mariadb_args]


@dataclass(frozen=True)
class Probe:
    """One health-check run, from the container's State.Health.Log."""

    start: float
    end: float
    exit_code: int
    output: str


@dataclass
class Sample:
    at: float
    task_state: str | None
    health: str | None


@dataclass
class ServiceWatch:
    """Polls the (single) task of a service: its state, its container's health status, every
    health-check run (docker keeps only the last 5) and the entrypoint's log lines."""

    engine: docker.DockerClient
    service_id: str
    created_at: float = field(default_factory=time.time)
    samples: list[Sample] = field(default_factory=list)
    probes: dict[str, Probe] = field(default_factory=dict)
    task: dict[str, Any] | None = None
    container_id: str | None = None
    entrypoint_log: dict[str, float] = field(default_factory=dict)

    def poll(self) -> Sample:
        tasks = swarm_tasks.service_tasks(self.engine, self.service_id, desired_state=None)
        self.task = tasks[0] if tasks else None
        state = str(self.task["Status"]["State"]) if self.task else None
        health: str | None = None
        if self.task and not self.container_id:
            self.container_id = (self.task["Status"].get("ContainerStatus") or {}).get("ContainerID") or None
        if self.container_id:
            inspect = self.engine.api.inspect_container(self.container_id)
            health_state = (inspect.get("State") or {}).get("Health") or {}
            health = health_state.get("Status")
            for entry in health_state.get("Log") or []:
                self.probes.setdefault(
                    str(entry["Start"]),
                    Probe(
                        parse_time(entry["Start"]), parse_time(entry["End"]), int(entry["ExitCode"]), entry["Output"]
                    ),
                )
        sample = Sample(time.time(), state, health)
        self.samples.append(sample)
        return sample

    def container(self) -> Container:
        assert self.container_id, "no container yet"
        return self.engine.containers.get(self.container_id)

    def read_entrypoint_log(self) -> dict[str, float]:
        """``{event: time}`` of the entrypoint's ``<time> [Entrypoint]: <event>`` lines, keyed
        "init: start", "init: temporary server ready", "hold: start", "hold: over", "init: done"."""
        keys = {
            "initialising the data directory": "init: start",
            "temporary server ready": "init: temporary server ready",
            "hold: start": "hold: start",
            "hold: over": "hold: over",
            "init process done": "init: done",
        }
        text = self.container().logs(stdout=True, stderr=False).decode(errors="replace")
        for line in text.splitlines():
            stamp, marker, event = line.partition(" [Entrypoint]: ")
            key = next((keys[k] for k in keys if event.startswith(k)), None)
            if marker and key:
                self.entrypoint_log.setdefault(key, parse_time(stamp))
        return self.entrypoint_log

    def sorted_probes(self) -> list[Probe]:
        return sorted(self.probes.values(), key=lambda p: p.start)


def exec_probe(container: Container, cmd: Sequence[str]) -> tuple[int, str]:
    return swarm_tasks.exec_output(container, cmd)


# --------------------------------------------------------------------------- #
# the product's command itself
# --------------------------------------------------------------------------- #


def test_product_check_is_exec_form_without_credentials() -> None:
    assert HEALTH_TEST[0] == "CMD"  # exec form: no shell, so `docker exec <PROBE>` is exactly what runs
    assert PROBE[:2] == ["mysqladmin", "ping"]
    assert "--protocol=tcp" in PROBE
    assert "--silent" in PROBE
    credential_flags = ("-p", "--password", "-u", "--user", "--defaults-file", "--defaults-extra-file", "--login-path")
    assert not [arg for arg in PROBE if arg.startswith(credential_flags)]


# --------------------------------------------------------------------------- #
# a. init-like server (--skip-networking): the check must fail
# --------------------------------------------------------------------------- #


def test_skip_networking_server_fails_health_check(
    engine: docker.DockerClient, mariadb_image: str, engine_resources: harness.TestResources
) -> None:
    """Like the official image's init server: up and answering on its socket, but no TCP listener.

    Health check: the product's test, timeout (5s) and retries (6); interval 1s (product 10s) and
    start period 5s (product 3m: "unhealthy" would take minutes).  The 5s cover the data directory's
    initialisation and the server's start (~1-2 s here), so the failures that count come while the
    server is verifiably up.
    """
    res = engine_resources
    service = create_mariadb_service(
        engine,
        res,
        mariadb_image,
        "mysql-nonet",
        args=["mariadbd", "--skip-networking"],
        env={"MYSQL_ALLOW_EMPTY_PASSWORD": "yes"},
        healthcheck=product_healthcheck(interval=1 * SECOND, start_period=5 * SECOND),
    )
    watch = ServiceWatch(engine, str(service.id))
    harness.wait_for(lambda: watch.poll() and watch.container_id, timeout=60, what="the task's container")
    container = watch.container()

    # The server is up: it answers SQL on its unix socket, and networking is off.
    socket_query = ["mariadb", "--protocol=socket", "-uroot", "-N", "-e", "SELECT @@skip_networking"]
    harness.wait_for(
        lambda: watch.poll() and exec_probe(container, socket_query) == (0, "1\n"),
        timeout=30,
        what="mariadbd --skip-networking answering on its socket",
    )
    alive_at = time.time()

    # The product's exact command fails against it -- a connect error, not a server answer.
    code, output = exec_probe(container, PROBE)
    assert code != 0, f"the health check passed against a --skip-networking server: {output!r}"
    code_verbose, output_verbose = exec_probe(container, PROBE_VERBOSE)
    assert code_verbose != 0
    assert "Can't connect to server on '127.0.0.1'" in output_verbose, output_verbose

    # Swarm: the container turns unhealthy, swarm stops it, the task never ran.  mariadbd (like
    # mysqld) exits 0 on that SIGTERM, so the task ends 'complete' rather than 'failed' (swarmkit
    # records the health error only on a non-zero exit): only restart condition "any" replaces it.
    def task_ended() -> dict[str, Any] | None:
        watch.poll()
        task = watch.task
        return task if task and task["Status"]["State"] in ("complete", "failed", "shutdown", "rejected") else None

    task = harness.wait_for(task_ended, timeout=45, interval=0.2, what="the task to end on its health check")
    harness.TIMINGS["a: service created -> task ended (unhealthy)"] = time.time() - watch.created_at
    status = task["Status"]
    exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
    harness.log(f"a: unhealthy task ended {status['State']!r}, exit code {exit_code}, err {status.get('Err')!r}")
    assert status["State"] in ("complete", "failed"), status
    if status["State"] == "failed":
        assert "unhealthy" in str(status.get("Err")), status
    assert "unhealthy" in [s.health for s in watch.samples]
    assert "healthy" not in [s.health for s in watch.samples]
    # Never running while it could serve.  After the unhealthy stop, a zero exit makes swarmkit's
    # controller return from Start without error, so the task can pass through 'running' for an
    # instant on its way to 'complete' (seen once in CI) -- only after the container turned unhealthy.
    first_unhealthy = next(s.at for s in watch.samples if s.health == "unhealthy")
    running_before = [s for s in watch.samples if s.task_state == "running" and s.at < first_unhealthy]
    assert not running_before, (first_unhealthy, watch.samples)
    assert swarm_tasks.container_health(engine, str(watch.container_id)) == "unhealthy"
    probes = watch.sorted_probes()
    assert probes, "no health-check run recorded"
    assert all(p.exit_code != 0 for p in probes), probes
    # ... including runs while the server was verifiably up (not just before it started).
    assert [p for p in probes if p.start >= alive_at], (alive_at, probes)


# --------------------------------------------------------------------------- #
# b. networked server, root with a password: the check passes without credentials
# --------------------------------------------------------------------------- #


def test_password_protected_server_passes_health_check_without_credentials(
    engine: docker.DockerClient, mariadb_image: str, engine_resources: harness.TestResources
) -> None:
    """Root's password comes from a docker secret at init. Health check: the product's test,
    timeout, retries and start period; interval 1s (product 10s)."""
    res = engine_resources
    root_secret = engine.secrets.create(
        name=res.name("mysql-root-password"), data=make_password().encode(), labels=res.labels
    )
    service = create_mariadb_service(
        engine,
        res,
        mariadb_image,
        "mysql-auth",
        env={"MYSQL_ROOT_PASSWORD_FILE": ROOT_PASSWORD_PATH},
        secret_refs=[secret_ref(root_secret, ROOT_PASSWORD_PATH)],
        healthcheck=product_healthcheck(interval=1 * SECOND),
    )
    started = time.monotonic()
    (task,) = swarm_tasks.wait_running(engine, str(service.id), 1, timeout=60)  # running = healthy
    harness.TIMINGS["b: service created -> task running (healthy)"] = time.monotonic() - started
    container_id = swarm_tasks.task_container_id(task)
    assert swarm_tasks.container_health(engine, container_id) == "healthy"
    container = engine.containers.get(container_id)

    # Nothing hands the check credentials: no option file, no MYSQL_PWD, nothing in my.cnf.
    assert exec_probe(container, ["test", "!", "-e", "/root/.my.cnf"])[0] == 0
    env = container.attrs["Config"]["Env"] or []
    assert not [e for e in env if e.startswith(("MYSQL_PWD=", "MYSQL_ROOT_PASSWORD="))], env
    code, defaults = exec_probe(container, ["mysqladmin", "--print-defaults"])
    assert code == 0, defaults
    assert "password" not in defaults.lower(), defaults

    # Root needs a password over TCP ...
    code, output = exec_probe(
        container, ["mariadb", "--protocol=tcp", "--host=127.0.0.1", "--port=3306", "-uroot", "-e", "SELECT 1"]
    )
    assert code != 0, output
    assert "Access denied" in output, output
    # ... the secret's password is the one (read from the secret file, never on a command line) ...
    code, output = exec_probe(
        container,
        with_password_file(
            ROOT_PASSWORD_PATH, ["--protocol=tcp", "--host=127.0.0.1", "--port=3306", "-uroot", "-N", "-e", "SELECT 1"]
        ),
    )
    assert (code, output) == (0, "1\n"), (code, output)
    # ... and yet the product's exact check passes: the server answered, with "Access denied".
    assert exec_probe(container, PROBE) == (0, "")
    code, output = exec_probe(container, PROBE_VERBOSE)
    assert code == 0, output
    assert "Access denied for user 'root'" in output, output

    health = engine.api.inspect_container(container_id)["State"]["Health"]
    assert health["Log"][-1]["ExitCode"] == 0, health["Log"]  # earlier runs may predate the server


# --------------------------------------------------------------------------- #
# c. the official-like first start: 'starting' during init, healthy after
# --------------------------------------------------------------------------- #


def test_first_start_stays_starting_during_init_then_healthy(
    engine: docker.DockerClient, holding_mariadb_image: str, engine_resources: harness.TestResources
) -> None:
    """The entrypoint initialises a fresh volume like the official image: temporary server with
    --skip-networking and a socket, root password / database / user from the secret files over
    that socket, the init scripts, shutdown, then the real server.  An init script holds the
    temporary server for INIT_HOLD_SECONDS (MariaDB's init alone takes ~1 s, too short to watch
    with 1 s probes); the reported init time excludes the hold.  Health check: the product's test, timeout, retries and
    start period (3m); interval 1s (product 10s)."""
    res = engine_resources
    root_secret = engine.secrets.create(
        name=res.name("mysql-root-password"), data=make_password().encode(), labels=res.labels
    )
    user_secret = engine.secrets.create(
        name=res.name("mysql-user-password"), data=make_password().encode(), labels=res.labels
    )
    volume = engine.volumes.create(name=res.name("mysql-data"), driver="local", labels=res.labels)
    service = create_mariadb_service(
        engine,
        res,
        holding_mariadb_image,
        "mysql-init",
        env={  # the product's environment (components.mysql.mysql_service_args)
            "MYSQL_ROOT_PASSWORD_FILE": ROOT_PASSWORD_PATH,
            "MYSQL_PASSWORD_FILE": USER_PASSWORD_PATH,
            "MYSQL_USER": APP_USER,
            "MYSQL_DATABASE": APP_DATABASE,
        },
        secret_refs=[secret_ref(root_secret, ROOT_PASSWORD_PATH), secret_ref(user_secret, USER_PASSWORD_PATH)],
        mounts=[Mount(target=DATA_DIR, source=str(volume.name), type="volume")],
        healthcheck=product_healthcheck(interval=1 * SECOND),
    )
    watch = ServiceWatch(engine, str(service.id))
    in_init: tuple[Sample, tuple[int, str], tuple[int, str]] | None = None
    deadline = time.monotonic() + 60
    while True:
        sample = watch.poll()
        if sample.task_state == "running" and sample.health == "healthy":
            break
        if sample.task_state in ("failed", "shutdown", "rejected", "orphaned"):
            pytest.fail(f"task ended as {sample.task_state}: {watch.task and watch.task['Status']}")
        if watch.container_id and in_init is None:
            events = watch.read_entrypoint_log()
            if "hold: start" in events and "hold: over" not in events:
                # The temporary server is up (it answers on its socket, networking off) ...
                # (the init scripts run after root got its password, as in the official image)
                socket_query = with_password_file(
                    ROOT_PASSWORD_PATH, [f"--socket={INIT_SOCKET}", "-uroot", "-N", "-e", "SELECT @@skip_networking"]
                )
                in_init = (sample, exec_probe(watch.container(), socket_query), exec_probe(watch.container(), PROBE))
        assert time.monotonic() < deadline, f"not healthy within 60s; samples {watch.samples[-5:]}"
        time.sleep(0.2)
    healthy_after = time.time() - watch.created_at
    events = watch.read_entrypoint_log()

    # While the temporary init server ran, the product's exact check failed and the task was 'starting'.
    assert in_init is not None, f"the init phase was not observed; entrypoint log: {events}"
    sample_in_init, socket_answer, probe_in_init = in_init
    assert socket_answer == (0, "1\n"), socket_answer
    assert probe_in_init[0] != 0, probe_in_init
    assert (sample_in_init.task_state, sample_in_init.health) == ("starting", "starting"), sample_in_init

    init_start, init_done = events["init: start"], events["init: done"]
    during_init = [s for s in watch.samples if init_start <= s.at <= init_done]
    assert during_init
    assert all(s.task_state != "running" and s.health != "healthy" for s in during_init), during_init
    probes = watch.sorted_probes()
    probes_in_init = [p for p in probes if init_start <= p.start and p.end <= init_done]
    assert probes_in_init, f"no health-check run during init {init_start}..{init_done}: {probes}"
    assert all(p.exit_code != 0 for p in probes_in_init), probes_in_init
    first_pass = next(p for p in probes if p.exit_code == 0)
    assert first_pass.start >= init_done, (first_pass, init_done)

    # The init did what the product relies on: the app user reaches its database with its password.
    code, output = exec_probe(
        watch.container(),
        with_password_file(
            USER_PASSWORD_PATH,
            ["--protocol=tcp", "--host=127.0.0.1", f"-u{APP_USER}", APP_DATABASE, "-N", "-e", "SELECT DATABASE()"],
        ),
    )
    assert (code, output) == (0, f"{APP_DATABASE}\n"), (code, output)
    assert exec_probe(watch.container(), PROBE) == (0, "")

    hold = events["hold: over"] - events["hold: start"]
    init_seconds = init_done - init_start - hold
    harness.TIMINGS["c: first-start init (excl. test hold)"] = init_seconds
    harness.TIMINGS["c: init: temporary server ready"] = events["init: temporary server ready"] - init_start
    harness.TIMINGS["c: real server start -> first passing check"] = first_pass.end - events["init: done"]
    harness.TIMINGS["c: service created -> task running (healthy), excl. hold"] = healthy_after - hold
    harness.log(
        f"c: {len(probes_in_init)} failing check runs during init (interval 1s, hold {INIT_HOLD_SECONDS}s); "
        f"entrypoint events (s after init start): { {k: round(v - init_start, 3) for k, v in events.items()} }"
    )
