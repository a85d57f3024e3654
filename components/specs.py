"""Pieces of a swarm service spec that every component builds the same way: pure builders
returning provider Args, from small frozen values."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from stackconfig.names import ROLE_LABEL, SECRETS_DIR, STACK_LABEL


@dataclass(frozen=True)
class Limits:
    cpus: float
    memory_mb: int


def task_resources(limits: Limits) -> docker.ServiceTaskSpecResourcesArgs:
    """Limits, and a reservation of a quarter of them so the scheduler counts the service."""
    return docker.ServiceTaskSpecResourcesArgs(
        limits=docker.ServiceTaskSpecResourcesLimitsArgs(
            nano_cpus=round(limits.cpus * 1e9),
            memory_bytes=limits.memory_mb * 1024 * 1024,
        ),
        reservation=docker.ServiceTaskSpecResourcesReservationArgs(
            nano_cpus=round(limits.cpus * 1e9 / 4),
            memory_bytes=limits.memory_mb * 1024 * 1024 // 4,
        ),
    )


def placement(
    constraints: Sequence[str], max_replicas_per_node: int | None = None
) -> docker.ServiceTaskSpecPlacementArgs:
    return docker.ServiceTaskSpecPlacementArgs(constraints=list(constraints), max_replicas=max_replicas_per_node)


def restart_policy(condition: str = "any") -> docker.ServiceTaskSpecRestartPolicyArgs:
    # "any", not "on-failure": Swarm stops an unhealthy container and a database server exits 0 on
    # that signal, so the task ends "complete" (seen with MariaDB in tests/engine). max_attempts 0
    # keeps trying: a service that lost its database comes back when it returns.
    return docker.ServiceTaskSpecRestartPolicyArgs(condition=condition, delay="5s", max_attempts=0, window="2m")


@dataclass(frozen=True)
class HealthCheck:
    test: tuple[str, ...]
    interval: str
    timeout: str
    retries: int
    start_period: str

    def args(self) -> docker.ServiceTaskSpecContainerSpecHealthcheckArgs:
        return docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
            tests=list(self.test),
            interval=self.interval,
            timeout=self.timeout,
            retries=self.retries,
            start_period=self.start_period,
        )


@dataclass(frozen=True)
class FileOwner:
    """Who may read a mounted secret: its file is that user's alone (mode 0400)."""

    uid: int
    gid: int


# The images' entrypoints that read a secret before they drop privileges (MySQL's: it exports the
# password, unsets the _FILE variable, then re-executes itself as mysql).
ROOT = FileOwner(0, 0)
# www-data in the Debian-based php:apache images: WordPress reads its _FILE secrets on every request.
WWW_DATA = FileOwner(33, 33)
# mysql (999) in the official MySQL image, and in the lab one: the server reads its init file.
MYSQL = FileOwner(999, 999)


@dataclass(frozen=True)
class SecretMount:
    """A docker.Secret mounted into a container at SECRETS_DIR/<file>, readable by `owner` only."""

    secret_id: pulumi.Input[str]
    secret_name: pulumi.Input[str]
    file: str
    owner: FileOwner = ROOT

    @property
    def path(self) -> str:
        return f"{SECRETS_DIR}/{self.file}"

    def args(self) -> docker.ServiceTaskSpecContainerSpecSecretArgs:
        return docker.ServiceTaskSpecContainerSpecSecretArgs(
            secret_id=self.secret_id,
            secret_name=self.secret_name,
            file_name=self.path,
            file_uid=str(self.owner.uid),
            file_gid=str(self.owner.gid),
            file_mode=0o400,
        )


def provider_duration(seconds: int) -> str:
    """A duration as the provider reads it back (Go's Duration.String() without a trailing "0s"
    or "0m": 60 is "1m", not "60s"): any other spelling is a diff on every preview."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (
        (f"{hours}h" if hours else "")
        + (f"{minutes}m" if minutes or (hours and secs) else "")
        + (f"{secs}s" if secs or not (hours or minutes) else "")
    )


def stop_grace_period(seconds: int) -> str:
    """Always set: an unset grace period reaches the engine as 0 (the provider sends the empty
    nested field as "0s"), so Swarm SIGKILLs the task at once on every update, drain and delete.
    With one set the engine sends SIGTERM and waits that long; the provider's delete also waits for
    the containers to exit within it before removing them."""
    return provider_duration(seconds)


# The Docker client asks the registry on create and fills placement.platforms (and pins a tag to
# its digest); we never declare platforms, so the list read back must not count as a change, or
# the next `up` would update, i.e. restart, every service. (Digest pins: docs/operations.md, "Images".)
REGISTRY_FILLED = ["taskSpec.placement.platforms"]


def service_options(parent: pulumi.Resource, *, exclusive: bool) -> pulumi.ResourceOptions:
    """exclusive: the service holds what a second copy can't share (a published port, a data
    directory), so a replacement deletes the old service before it creates the new one; the
    provider's default, create-then-delete, would collide on the port or open the volume twice."""
    return pulumi.ResourceOptions(parent=parent, delete_before_replace=exclusive, ignore_changes=REGISTRY_FILLED)


# Safe inside a file, a shell word and a PHP string; no quotes, backslash, '$' or '`'.
PASSWORD_SPECIALS = "!#%*+-.:=?@^_~"


def secret_data(password: pulumi.Input[str]) -> pulumi.Output[str]:
    """docker.Secret `data` is standard base64 (with '+', '/' and padding): the provider decodes it
    with base64.StdEncoding even though its docs say url-safe. Stays a secret output."""
    return pulumi.Output.secret(password).apply(lambda text: base64.b64encode(text.encode()).decode("ascii"))


def password_keepers(generation: int) -> dict[str, str]:
    """Inputs of a RandomPassword: only a deliberate generation bump replaces it (MySQL keeps its
    passwords in its data directory, WordPress signs sessions with its keys: an accidental change
    would lock WordPress out or log everyone out)."""
    return {"generation": str(generation)}


@dataclass(frozen=True)
class GeneratedSecret:
    """A RandomPassword (the `openssl rand` of the manual set-up) and the swarm secret holding it."""

    password: random.RandomPassword
    secret: docker.Secret

    def mount(self, file: str, owner: FileOwner = ROOT) -> SecretMount:
        return SecretMount(self.secret.id, self.secret.name, file, owner)


def generated_secret(name: str, generation: int, parent: pulumi.Resource, length: int = 32) -> GeneratedSecret:
    child = pulumi.ResourceOptions(parent=parent)
    password = random.RandomPassword(
        name,
        length=length,
        special=True,
        override_special=PASSWORD_SPECIALS,
        min_lower=2,
        min_upper=2,
        min_numeric=2,
        keepers=password_keepers(generation),
        opts=child,
    )
    secret = docker.Secret(name, args=docker.SecretArgs(data=secret_data(password.result)), opts=child)
    return GeneratedSecret(password, secret)


def converge(timeout: str) -> docker.ServiceConvergeConfigArgs:
    """Makes `pulumi up` wait for running, healthy tasks and fail after `timeout` instead of hanging.
    Replicated services only: the provider refuses it on a global service. The provider polls the
    tasks `delay` after the create or update, then 5 s later, then every 10 s (its retry loop has a
    fixed 5 s minimum and doubles up to 10 s), so `delay` only shifts that schedule: measured with
    benchmarks/deploy_time.py, 1 s made a first deploy slower than 5 s (the check after a 15 s
    health-check interval lands at 16 s or 26 s instead of 20 s)."""
    return docker.ServiceConvergeConfigArgs(delay="5s", timeout=timeout)


def service_labels(role: str) -> list[docker.ServiceLabelArgs]:
    """Marks a service as this stack's, so preflight and verification can tell ours from others'."""
    return [
        docker.ServiceLabelArgs(label=ROLE_LABEL, value=role),
        docker.ServiceLabelArgs(label=STACK_LABEL, value=pulumi.get_stack()),
    ]


def volume_name(purpose: str) -> str:
    """A fixed name per project and stack. An auto-named volume gets a new name whenever it is
    replaced, and the service would silently start on an empty one; a fixed name makes the engine
    hand back the existing volume instead, and is what the engine on another node creates too."""
    return f"{pulumi.get_project()}-{pulumi.get_stack()}-{purpose}"


def data_volume(resource_name: str, purpose: str, parent: pulumi.Resource) -> docker.Volume:
    """A local volume for data that outlives the stack: kept on `pulumi destroy`."""
    return docker.Volume(
        resource_name,
        args=docker.VolumeArgs(
            name=volume_name(purpose),
            driver="local",
            labels=[
                docker.VolumeLabelArgs(label=ROLE_LABEL, value=purpose),
                docker.VolumeLabelArgs(label=STACK_LABEL, value=pulumi.get_stack()),
            ],
        ),
        # Labels are ForceNew, and a volume adopted by name (kept by an earlier destroy, or made
        # by hand) keeps the labels it had: a create with other labels returns it unchanged. They
        # describe the volume, they don't define it, so a difference is no reason to replace it.
        opts=pulumi.ResourceOptions(parent=parent, retain_on_delete=True, ignore_changes=["labels"]),
    )
