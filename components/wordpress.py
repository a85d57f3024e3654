"""WordPressSite: WordPress wired to MySqlWithSecrets' outputs, published on the environment's port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_docker as docker

from components import PACKAGE
from components.mysql import DatabaseConnection
from components.specs import (
    WWW_DATA,
    HealthCheck,
    Limits,
    SecretMount,
    converge,
    data_volume,
    generated_secret,
    placement,
    restart_policy,
    service_labels,
    service_options,
    stop_grace_period,
    task_resources,
)
from stackconfig.names import WORDPRESS_DB_PASSWORD_FILE, WORDPRESS_KEYS, wordpress_key_file

HTTP_PORT = 80
CONTENT_DIR = "/var/www/html/wp-content"

# A page that needs the database: "Error establishing a database connection" is HTTP 500, so a
# task that can't reach MySQL turns unhealthy and is restarted until MySQL's first start is over.
# curl ships in the Debian/apache image; a redirect to the installer counts as healthy.
WORDPRESS_HEALTH = HealthCheck(
    test=(
        "CMD",
        "curl",
        "--fail",
        "--silent",
        "--show-error",
        "--max-time",
        "4",
        "--output",
        "/dev/null",
        "http://127.0.0.1/",
    ),
    interval="15s",
    timeout="5s",
    retries=4,
    # Covers MySQL's first init (its own start period) so the first deploy converges in one go.
    start_period="4m",
)


# wp-config-docker.php evaluates this; no secrets in it (they come as _FILE secrets).
WORDPRESS_CONFIG_EXTRA = "define('WP_AUTO_UPDATE_CORE', false);"


@dataclass(frozen=True)
class WordPressSiteArgs:
    image: pulumi.Input[str]
    placement_constraints: Sequence[str]  # where the stack's services may run
    database: DatabaseConnection
    replicas: int
    port: int  # published
    publish_mode: Literal["ingress", "host"]
    public_host: str  # host name in the site's URL
    node: str | None  # hostname of the node holding wp-content's node-local volume; pinned there
    # Bumping it regenerates the keys and salts on purpose: every session ends.
    keys_generation: int
    limits: Limits


def update_order(args: WordPressSiteArgs) -> str:
    # A host-mode port is bound by the old task until it stops: start-first would collide on it.
    return "stop-first" if args.publish_mode == "host" else "start-first"


def wordpress_service_args(
    args: WordPressSiteArgs, content_volume_name: pulumi.Input[str], keys: Mapping[str, SecretMount]
) -> docker.ServiceArgs:
    """`keys`: WORDPRESS_KEYS -> their mounted secrets. Without them the image writes random keys
    into each new container's wp-config.php: every task replacement would log everyone out, and
    replicas would reject each other's cookies and nonces."""
    db = args.database
    # Read by PHP, as www-data, on every request.
    password = SecretMount(db.password_secret_id, db.password_secret_name, WORDPRESS_DB_PASSWORD_FILE, WWW_DATA)
    return docker.ServiceArgs(
        mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=args.replicas)),
        labels=service_labels("wordpress"),
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=args.image,
                env={
                    "WORDPRESS_DB_HOST": f"{db.host}:{db.port}",
                    "WORDPRESS_DB_USER": db.user,
                    "WORDPRESS_DB_NAME": db.database,
                    "WORDPRESS_DB_PASSWORD_FILE": password.path,
                    # Core lives in the container, not in a volume: an update from the admin would
                    # be lost at the next task replacement. Upgrade by image tag instead.
                    "WORDPRESS_CONFIG_EXTRA": WORDPRESS_CONFIG_EXTRA,
                    **{f"WORDPRESS_{key}_FILE": mount.path for key, mount in keys.items()},
                },
                secrets=[password.args(), *(mount.args() for mount in keys.values())],
                mounts=[
                    docker.ServiceTaskSpecContainerSpecMountArgs(
                        type="volume", source=content_volume_name, target=CONTENT_DIR
                    )
                ],
                healthcheck=WORDPRESS_HEALTH.args(),
                # The php:apache images stop Apache with SIGWINCH (their STOPSIGNAL): a graceful stop
                # that finishes the requests in flight, within this.
                stop_grace_period=stop_grace_period(10),
            ),
            networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=db.network_id)],
            # A host-mode port can be bound once per node.
            placement=placement(
                wordpress_constraints(args), max_replicas_per_node=1 if args.publish_mode == "host" else None
            ),
            resources=task_resources(args.limits),
            restart_policy=restart_policy(),
        ),
        endpoint_spec=docker.ServiceEndpointSpecArgs(
            mode="vip",
            ports=[
                docker.ServiceEndpointSpecPortArgs(
                    target_port=HTTP_PORT,
                    published_port=args.port,
                    publish_mode=args.publish_mode,
                    protocol="tcp",
                )
            ],
        ),
        update_config=docker.ServiceUpdateConfigArgs(
            parallelism=1,
            delay="10s",
            order=update_order(args),
            failure_action="rollback",
            monitor="30s",
            max_failure_ratio="0",
        ),
        rollback_config=docker.ServiceRollbackConfigArgs(
            parallelism=1, delay="0s", order=update_order(args), failure_action="pause", monitor="30s"
        ),
        converge_config=converge("10m"),
    )


def wordpress_constraints(args: WordPressSiteArgs) -> list[str]:
    # wp-content is a node-local volume: a pinned site keeps its uploads when its task is replaced.
    return [*args.placement_constraints, *([f"node.hostname=={args.node}"] if args.node else [])]


def site_url(args: WordPressSiteArgs) -> str:
    return f"http://{args.public_host}:{args.port}/"


class WordPressSite(pulumi.ComponentResource):
    """WordPress on MySqlWithSecrets' network with its password secret, published on `port`."""

    url: pulumi.Output[str]
    service_name: pulumi.Output[str]
    secret_names: pulumi.Output[list[str]]  # the database password's first, then the keys'
    content_volume_name: pulumi.Output[str]

    def __init__(self, name: str, args: WordPressSiteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PACKAGE}:wordpress:WordPressSite", name, None, opts)
        # Kept on `pulumi destroy`, like the database: uploads, themes and plugins live here.
        content = data_volume(f"{name}-content", "wordpress-content", parent=self)
        # Generated once, shared by every replica, kept across updates: sessions survive.
        keys = {
            key: generated_secret(f"{name}-{wordpress_key_file(key)}", args.keys_generation, self, length=64)
            for key in WORDPRESS_KEYS
        }
        service = docker.Service(
            f"{name}-wordpress",
            args=wordpress_service_args(
                args,
                content_volume_name=content.name,
                keys={key: generated.mount(wordpress_key_file(key), WWW_DATA) for key, generated in keys.items()},
            ),
            opts=service_options(self, exclusive=True),
        )
        self.url = pulumi.Output.from_input(site_url(args))
        self.content_volume_name = content.name
        self.service_name = service.name
        self.secret_names = pulumi.Output.all(
            args.database.password_secret_name, *(generated.secret.name for generated in keys.values())
        )
        self.register_outputs(
            {
                "url": self.url,
                "service_name": self.service_name,
                "secret_names": self.secret_names,
                "content_volume_name": self.content_volume_name,
            }
        )
