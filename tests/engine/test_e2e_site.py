"""The site end to end: the dev stack deployed by the real `pulumi up` on the lab images, used by a
headless Chromium like a person would, while the swarm loses MySQL, rolls WordPress onto a new
image, and logspout ships the access log to a syslog receiver the test runs. Then the same site with
two WordPress replicas on two nodes, where a login made on one is valid on the other.

Screenshots are kept under .artifacts/e2e (tests/engine/browser.py). The timings (up to the first
rendered page, recovery after the MySQL kill) appear in the session's summary.
"""

from __future__ import annotations

import ipaddress
import re
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from secrets import token_urlsafe
from typing import Any

import docker
import pytest

from components.wordpress import WORDPRESS_HEALTH
from stackconfig.names import ROLE_LABEL, STACK_LABEL

from . import browser, harness, netns, site, swarm_tasks
from .pulumi_cli import Project, Stack, disposable_stack, stack_service
from .test_pulumi_real import stack_config

STACK = f"e2e{harness.SESSION_ID}"
POST_TITLE = f"Hello from the lab {harness.SESSION_ID}"
SECOND = 1_000_000_000


class SyslogReceiver(socketserver.ThreadingTCPServer):
    """A syslog server on TCP: every line logspout sends, kept in `lines`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.lines: list[str] = []
        super().__init__(("0.0.0.0", 0), _SyslogLines)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _SyslogLines(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: Any = self.server
        for raw in self.rfile:
            server.lines.append(raw.decode(errors="replace").rstrip("\n"))


@dataclass
class E2E:
    engine: docker.DockerClient
    stack: Stack
    port: int
    receiver: SyslogReceiver
    config: dict[str, Any]
    password: str = field(default_factory=lambda: token_urlsafe(18))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def task_container(self, role: str) -> Any:
        service = stack_service(self.engine, STACK, role)
        (task,) = swarm_tasks.running_tasks(self.engine, str(service.id))
        return self.engine.containers.get(swarm_tasks.task_container_id(task))


@pytest.fixture(scope="module")
def e2e(pulumi_project: Project, engine: docker.DockerClient, lab_images: dict[str, str]) -> Iterator[E2E]:
    reason = browser.unavailable_reason()
    if reason:
        pytest.skip(reason)
    receiver = SyslogReceiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    # The host as the tasks reach it: the default bridge's gateway (its subnet's first address when
    # the engine doesn't say), where a task without networks of its own is attached.
    ipam = engine.networks.get("bridge").attrs["IPAM"]["Config"][0]
    gateway = ipam.get("Gateway") or str(ipaddress.ip_network(ipam["Subnet"])[1])
    port = harness.free_tcp_port()
    config = stack_config(lab_images, port, str(engine.info()["Name"]))
    config["envLabel"] = f"e2e-{harness.SESSION_ID}"
    config["logging"] = {**config["logging"], "route": f"syslog+tcp://{gateway}:{receiver.port}"}
    with disposable_stack(pulumi_project, STACK, engine):
        yield E2E(engine, pulumi_project.stack(STACK, config), port, receiver, config)
    receiver.shutdown()


@pytest.fixture(scope="module")
def page(e2e: E2E) -> Iterator[browser.Page]:
    """One browser for the module: its cookies are the logged-in session the tests carry along."""
    with browser.chromium(e2e.base) as tab:
        yield tab


def test_the_browser_installs_the_site_logs_in_and_publishes_a_post(e2e: E2E, page: browser.Page) -> None:
    started = time.monotonic()
    e2e.stack.up()
    site.answers(site.Browser(e2e.base))
    page.open("/")
    page.wait_text("WordPress", timeout=30)  # the installer, rendered
    harness.TIMINGS["e2e: pulumi up -> first rendered page"] = time.monotonic() - started

    browser.install(page, site.TITLE, site.ADMIN, e2e.password)
    browser.log_in(page, site.ADMIN, e2e.password)
    browser.publish_post(page, POST_TITLE, "Published by a headless Chromium.")
    assert browser.shown_on_front_page(page, POST_TITLE)
    page.screenshot("04-front-page")


def test_a_killed_mysql_comes_back_and_the_post_and_session_survive(e2e: E2E, page: browser.Page) -> None:
    wordpress_before = e2e.task_container("wordpress").id
    started = time.monotonic()
    e2e.task_container("mysql").kill()  # SIGKILL: crash recovery on the next start

    def recovered() -> bool:
        return site.front_page_title(site.Browser(e2e.base)) == site.TITLE and browser.shown_on_front_page(
            page, POST_TITLE
        )

    # Swarm restarts MySQL (restart policy any); WordPress needs nothing but its next request.
    budget = int(WORDPRESS_HEALTH.interval.rstrip("s")) * WORDPRESS_HEALTH.retries
    harness.wait_for(recovered, timeout=budget, interval=1, what="the site serving the post again")
    harness.TIMINGS["e2e: MySQL killed -> post served again"] = time.monotonic() - started
    assert e2e.task_container("wordpress").id == wordpress_before, "WordPress's task was replaced"
    assert browser.logged_in(page)
    page.screenshot("05-after-mysql-kill")


def test_a_new_wordpress_image_rolls_wordpress_and_the_session_survives(e2e: E2E, page: browser.Page) -> None:
    old = e2e.config["wordpress"]["image"]
    new = f"{old.rpartition(':')[0]}:rebuild-{harness.SESSION_ID}"
    e2e.engine.images.get(old).tag(new)
    try:
        before = e2e.task_container("wordpress").id
        e2e.config["wordpress"] = {**e2e.config["wordpress"], "image": new}
        e2e.stack.write_config(e2e.config)
        e2e.stack.up()
        service = stack_service(e2e.engine, STACK, "wordpress")
        assert service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == new
        assert e2e.task_container("wordpress").id != before
        # The same keys and salts (generated secrets) sign the cookies: the session holds.
        assert browser.logged_in(page)
        assert browser.shown_on_front_page(page, POST_TITLE)
        page.screenshot("06-after-image-roll")
    finally:
        e2e.config["wordpress"] = {**e2e.config["wordpress"], "image": old}
        # Only the tag goes: the image stays under its own, and the running task needs no tag.
        e2e.engine.images.remove(new)


def test_logspout_ships_the_access_log_with_the_nodes_host_name(e2e: E2E) -> None:
    node = str(e2e.engine.info()["Name"])
    site.Browser(e2e.base).request(f"/?wpswarm-e2e={harness.SESSION_ID}")
    wordpress = stack_service(e2e.engine, STACK, "wordpress").name

    def shipped() -> str | None:
        return next((line for line in e2e.receiver.lines if f"wpswarm-e2e={harness.SESSION_ID}" in line), None)

    line = harness.wait_for(shipped, timeout=60, interval=1, what="the access-log line at the syslog receiver")
    # RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME ...; the host name is the node's, not a container id.
    fields = re.match(r"<\d+>1 \S+ (\S+) (\S+) ", line)
    assert fields, line
    assert fields.group(1) == node, line
    assert fields.group(2).startswith(wordpress), line
    assert '"GET /?wpswarm-e2e=' in line, line


def test_logspouts_api_answers_on_its_loopback_only(e2e: E2E, busybox_image: str) -> None:
    logspout = e2e.task_container("logging")
    logspout.reload()
    assert logspout.attrs["State"]["Health"]["Status"] == "healthy"
    addresses = [n["IPAddress"] for n in logspout.attrs["NetworkSettings"]["Networks"].values() if n["IPAddress"]]
    assert addresses, "logspout's task has no address another container could try"
    probe = e2e.engine.containers.run(
        busybox_image,
        # A TCP connect to its API port (busybox's wget dies on a refused connection; nc says so).
        ["sh", "-c", " ; ".join(f"nc -w 3 {a} 80 </dev/null && echo open-{a}" for a in addresses) + "; true"],
        remove=True,
        labels={harness.SESSION_LABEL: harness.SESSION_ID},
    )
    assert b"open-" not in probe, probe


# --------------------------------------------------------------------------- two replicas, two nodes


@pytest.fixture(scope="module")
def replicated_site(
    pulumi_project: Project, netns_swarm: netns.NetnsSwarm, netns_lab_images: dict[str, str]
) -> Iterator[tuple[Stack, list[netns.SwarmNode]]]:
    n1, n2, _ = netns_swarm.nodes
    name = f"e2r{harness.SESSION_ID}"
    config = stack_config(netns_lab_images, 30380, n1.hostname, wordpress={"replicas": 2, "publicHost": n1.ip})
    config["envLabel"] = f"e2r-{harness.SESSION_ID}"
    config["dockerHost"] = netns_swarm.manager.base_url
    config["nodes"] = {"names": [n1.hostname, n2.hostname]}
    # No IPsec between these hosts: MySQL and WordPress may land on different nodes.
    config["mysql"] = {**config["mysql"], "encryptNetwork": False}
    stack = pulumi_project.stack(name, config)
    try:
        stack.up()
        yield stack, [n1, n2]
    finally:
        stack.tear_down()  # a label left behind would break the next netns test


def test_a_login_on_one_replica_is_valid_on_the_other(
    replicated_site: tuple[Stack, list[netns.SwarmNode]], netns_swarm: netns.NetnsSwarm
) -> None:
    stack, (n1, n2) = replicated_site
    (service,) = netns_swarm.client.services.list(
        filters={"label": [f"{STACK_LABEL}={stack.name}", f"{ROLE_LABEL}=wordpress"]}
    )
    nodes = {task["NodeID"] for task in service.tasks(filters={"desired-state": "running"})}
    assert nodes == {n1.node_id, n2.node_id}, "one WordPress task on each node"

    password = token_urlsafe(18)
    host = f"{n1.ip}:30380"  # the site's address: the URL WordPress was installed under
    first = site.Browser(f"http://{n1.ip}:30380", host=host)
    site.answers(first)
    site.install(first, password)
    site.log_in(first, password)
    assert site.logged_in(first)
    # The same cookies, sent to the other node's replica as the same site.
    second = site.Browser(f"http://{n2.ip}:30380", host=host).with_cookies_of(first)
    assert site.logged_in(second)
    # ... and not just any request: without the cookies it is sent to the login page.
    assert not site.logged_in(site.Browser(f"http://{n2.ip}:30380", host=host))
