"""A local image registry for the real-engine tests: the distribution project's server, built from
its Go module (tools/registry) and cached per machine, listening on the loopback.

Only a registry shows what the Docker client does to a service's image on create: it asks the
registry (`QueryRegistry`), pins the tag to the digest it reports and fills in the placement
platforms. The engine treats 127.0.0.0/8 as an insecure registry by default, so no TLS is needed.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker

from . import harness

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "tools" / "registry"
CACHE = Path(os.environ.get("WPSWARM_CACHE", Path.home() / ".cache" / "wordpress-swarm"))


def registry_binary() -> Path | str:
    """The built server, or why there is none."""
    if shutil.which("go") is None:
        return "no Go toolchain to build the test registry (tools/registry)"
    key = hashlib.sha256((MODULE / "go.mod").read_bytes() + (MODULE / "go.sum").read_bytes()).hexdigest()[:16]
    binary = CACHE / "registry" / key / "registry"
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    built = subprocess.run(
        ["go", "build", "-trimpath", "-o", f"{binary}.partial", "github.com/distribution/distribution/v3/cmd/registry"],
        cwd=MODULE,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if built.returncode != 0:
        return f"building the test registry failed: {built.stderr.strip()[-500:]}"
    Path(f"{binary}.partial").rename(binary)
    return binary


@contextmanager
def running_registry(binary: Path, storage: Path) -> Iterator[str]:
    """Serves until the block ends; yields its address, 127.0.0.1:<port>."""
    address = f"127.0.0.1:{harness.free_tcp_port()}"
    config = storage / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {storage / 'data'}\n"
        f"http:\n  addr: {address}\n"
    )
    log = (storage / "registry.log").open("w")
    server = subprocess.Popen([str(binary), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        harness.wait_for(lambda: _answers(address), timeout=30, what=f"the test registry on {address}")
        yield address
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _answers(address: str) -> bool:
    with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
        return response.status == 200


def push(client: docker.DockerClient, tag: str, address: str) -> tuple[str, str]:
    """Pushes an image of its own made from local image `tag` (one more label) as
    <address>/<repository>:<tag>; returns (tagged, tagged@digest). Its own: a push records the
    registry's digest on the image it pushes, and the engine then resolves every tag of that image
    to the registry, so pushing a shared image would move other stacks' services onto it."""
    repository, _, version = tag.rpartition(":")
    target = f"{address}/{repository}"
    dockerfile = f"FROM {tag}\nLABEL wpswarm.test.registry={harness.SESSION_ID}\n".encode()
    client.images.build(fileobj=io.BytesIO(dockerfile), tag=f"{target}:{version}", rm=True, pull=False)
    for line in client.images.push(target, version, stream=True, decode=True):
        if "error" in line:
            raise harness.HarnessError(f"push of {target}:{version} failed: {line['error']}")
    digests = client.images.get(f"{target}:{version}").attrs["RepoDigests"]
    digest = next(d.split("@", 1)[1] for d in digests if d.startswith(f"{target}@"))
    return f"{target}:{version}", f"{target}:{version}@{digest}"
