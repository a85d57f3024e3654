"""Prove the real-engine harness: single-node engine and the netns multi-node swarm."""

from __future__ import annotations

import urllib.request

import docker
from docker.types import EndpointSpec, Healthcheck, SecretReference, ServiceMode

from . import harness, netns, swarm_tasks

SECOND = 1_000_000_000  # docker API durations are nanoseconds

HTTPD_HEALTHCHECK = Healthcheck(
    test=["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/index.html || exit 1"],
    interval=1 * SECOND,
    timeout=3 * SECOND,
    retries=3,
    start_period=1 * SECOND,
)


def test_busybox_image_has_tools_and_no_healthcheck(engine: docker.DockerClient, busybox_image: str) -> None:
    image = engine.images.get(busybox_image)
    assert not (image.attrs["Config"] or {}).get("Healthcheck")
    out = engine.containers.run(
        busybox_image,
        ["sh", "-c", "for t in sh wget nc httpd sleep cat; do which $t; done"],
        remove=True,
        network_mode="none",
    )
    assert out.decode().split() == [f"/bin/{t}" for t in ("sh", "wget", "nc", "httpd", "sleep", "cat")]


def test_replicated_service_becomes_healthy(
    engine: docker.DockerClient, busybox_image: str, engine_resources: harness.TestResources
) -> None:
    res = engine_resources
    service = engine.services.create(
        busybox_image,
        ["httpd", "-f", "-p", "8080", "-h", "/www"],
        name=res.name("healthy"),
        labels=res.labels,
        container_labels=res.labels,
        mode=ServiceMode("replicated", replicas=2),
        healthcheck=HTTPD_HEALTHCHECK,
        init=True,  # PID 1 must forward SIGTERM, else every stop waits out the grace period
        stop_grace_period=1 * SECOND,
    )
    tasks = swarm_tasks.wait_running(engine, str(service.id), 2, timeout=60)
    for task in tasks:
        container_id = swarm_tasks.task_container_id(task)
        assert harness.wait_for(
            lambda cid=container_id: swarm_tasks.container_health(engine, cid) == "healthy",
            timeout=30,
            what=f"container {container_id[:12]} healthy",
        )


def test_secret_mounted_at_absolute_target(
    engine: docker.DockerClient, busybox_image: str, engine_resources: harness.TestResources
) -> None:
    res = engine_resources
    value = f"pw-{res.case_id}"
    secret = engine.secrets.create(name=res.name("db-password"), data=value.encode(), labels=res.labels)
    service = engine.services.create(
        busybox_image,
        ["sleep", "3600"],
        name=res.name("secret"),
        labels=res.labels,
        container_labels=res.labels,
        secrets=[SecretReference(str(secret.id), str(secret.name), filename="/run/secrets/db-password", mode=0o400)],
        init=True,
        stop_grace_period=1 * SECOND,
    )
    (task,) = swarm_tasks.wait_running(engine, str(service.id), 1)
    container = engine.containers.get(swarm_tasks.task_container_id(task))
    assert swarm_tasks.exec_output(container, ["cat", "/run/secrets/db-password"]) == (0, value)


def test_host_mode_published_port_answers_on_localhost(
    engine: docker.DockerClient, busybox_image: str, engine_resources: harness.TestResources
) -> None:
    # Host-mode publishing only: the ingress routing mesh needs IPVS, which this
    # kernel lacks, so an ingress-published port would never answer here.
    res = engine_resources
    port = harness.free_tcp_port()
    service = engine.services.create(
        busybox_image,
        ["sh", "-c", "echo hello-$HOSTNAME > /www/hello.txt && exec httpd -f -p 8080 -h /www"],
        name=res.name("hostport"),
        labels=res.labels,
        container_labels=res.labels,
        endpoint_spec=swarm_tasks.host_port_endpoint(port, 8080),
        healthcheck=HTTPD_HEALTHCHECK,
        init=True,
        stop_grace_period=1 * SECOND,
    )
    swarm_tasks.wait_running(engine, str(service.id), 1)

    def fetch() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello.txt", timeout=3) as resp:
            body: bytes = resp.read()
            return body.decode()

    assert harness.wait_for(fetch, timeout=20, what=f"http://127.0.0.1:{port}").startswith("hello-")


def test_netns_swarm_shape(netns_swarm: netns.NetnsSwarm) -> None:
    nodes = netns_swarm.client.api.nodes()
    assert len(nodes) == 3
    by_id = {n["ID"]: n for n in nodes}
    for node in netns_swarm.nodes:
        assert by_id[node.node_id]["Description"]["Hostname"] == node.hostname
        assert by_id[node.node_id]["Status"]["Addr"] == node.ip
        assert node.client.images.get(netns_swarm.image_tag)
    assert [n["Spec"]["Role"] for n in sorted(nodes, key=lambda n: n["Description"]["Hostname"])] == [
        "manager",
        "worker",
        "worker",
    ]


def test_netns_host_mode_port_answers_on_node_ip(
    netns_swarm: netns.NetnsSwarm, netns_resources: harness.TestResources
) -> None:
    client, res = netns_swarm.client, netns_resources
    n2 = netns_swarm.node(2)
    port = harness.free_tcp_port()  # free on the host; certainly free inside the node's netns
    service = client.services.create(
        netns_swarm.image_tag,
        ["httpd", "-f", "-p", "8080", "-h", "/www"],
        name=res.name("nodeport"),
        labels=res.labels,
        container_labels=res.labels,
        constraints=[f"node.hostname=={n2.hostname}"],
        endpoint_spec=swarm_tasks.host_port_endpoint(port, 8080),
        init=True,
        stop_grace_period=1 * SECOND,
    )
    swarm_tasks.wait_running(client, str(service.id), 1)

    def fetch() -> str:
        with urllib.request.urlopen(f"http://{n2.ip}:{port}/index.html", timeout=3) as resp:
            body: bytes = resp.read()
            return body.decode()

    assert harness.wait_for(fetch, timeout=20, what=f"http://{n2.ip}:{port} from the host") == "ok\n"
    from_node1 = netns_swarm.node(1).run_in_netns("busybox", "wget", "-q", "-O", "-", f"http://{n2.ip}:{port}/")
    assert (from_node1.returncode, from_node1.stdout) == (0, "ok\n")


def test_global_service_follows_node_labels(
    netns_swarm: netns.NetnsSwarm, netns_resources: harness.TestResources
) -> None:
    client, res = netns_swarm.client, netns_resources
    n1, n2, n3 = netns_swarm.nodes
    try:
        swarm_tasks.set_node_labels(client, n1.node_id, {"env": "test"})
        swarm_tasks.set_node_labels(client, n2.node_id, {"env": "test"})
        service = client.services.create(
            netns_swarm.image_tag,
            ["sleep", "3600"],
            name=res.name("global"),
            labels=res.labels,
            container_labels=res.labels,
            mode=ServiceMode("global"),
            constraints=["node.labels.env==test"],
            init=True,
            stop_grace_period=1 * SECOND,
        )
        service_id = str(service.id)

        def placement() -> dict[str, int]:
            counts = {n.hostname: 0 for n in netns_swarm.nodes}
            for task in swarm_tasks.running_tasks(client, service_id):
                counts[netns_swarm.node(task["NodeID"]).hostname] += 1
            return counts

        def settled_on(*expected: netns.SwarmNode) -> bool:
            want = {n.hostname: int(n in expected) for n in netns_swarm.nodes}
            return placement() == want and len(swarm_tasks.service_tasks(client, service_id)) == len(expected)

        harness.wait_for(lambda: settled_on(n1, n2), timeout=60, what="one task on each of nodes 1 and 2")
        # Each node's own engine really runs the container (and only the labelled ones).
        task_filter = swarm_tasks.service_filter(service_id)
        assert [len(n.client.containers.list(filters=task_filter)) for n in (n1, n2, n3)] == [1, 1, 0]

        swarm_tasks.set_node_labels(client, n2.node_id, {"env": None})
        swarm_tasks.set_node_labels(client, n3.node_id, {"env": "test"})
        harness.wait_for(lambda: settled_on(n1, n3), timeout=60, what="task moved from node 2 to node 3")
        harness.wait_for(
            lambda: [len(n.client.containers.list(filters=task_filter)) for n in (n1, n2, n3)] == [1, 0, 1],
            timeout=30,
            what="containers on nodes 1 and 3 only",
        )
    finally:
        for node in netns_swarm.nodes:
            swarm_tasks.set_node_labels(client, node.node_id, {"env": None})


def test_netns_overlay_carries_traffic_between_nodes(
    netns_swarm: netns.NetnsSwarm, netns_resources: harness.TestResources
) -> None:
    client, res = netns_swarm.client, netns_resources
    n1, _n2, n3 = netns_swarm.nodes
    network = client.networks.create(res.name("net"), driver="overlay", attachable=True, labels=res.labels)
    common = {
        "labels": res.labels,
        "container_labels": res.labels,
        "networks": [str(network.id)],
        "init": True,
        "stop_grace_period": 1 * SECOND,
        # VIP mode load-balances with IPVS, which this kernel lacks: use DNS round robin.
        "endpoint_spec": EndpointSpec(mode="dnsrr"),
    }
    web = res.name("web")
    client.services.create(
        netns_swarm.image_tag,
        ["sh", "-c", "echo from-$(hostname) > /www/id.txt && exec httpd -f -p 8080 -h /www"],
        name=web,
        constraints=[f"node.hostname=={n3.hostname}"],
        **common,
    )
    probe = client.services.create(
        netns_swarm.image_tag,
        ["sleep", "3600"],
        name=res.name("probe"),
        constraints=[f"node.hostname=={n1.hostname}"],
        **common,
    )
    swarm_tasks.wait_running(client, web, 1)
    (task,) = swarm_tasks.wait_running(client, str(probe.id), 1)
    container = n1.client.containers.get(swarm_tasks.task_container_id(task))

    def fetch() -> str | None:
        code, out = swarm_tasks.exec_output(container, ["wget", "-q", "-O", "-", f"http://{web}:8080/id.txt"])
        return out if code == 0 else None

    assert harness.wait_for(fetch, timeout=30, what=f"{web} reachable from {n1.hostname}").startswith("from-")
