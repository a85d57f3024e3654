"""MySqlWithSecrets: generated passwords as swarm secrets, MySQL on a private encrypted overlay."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.names import ENCRYPTED_LABEL, MYSQL_ROOT_PASSWORD_FILE, MYSQL_USER_PASSWORD_FILE, ROLE_LABEL
from components.settings import PROJECT, MySqlSettings
from components.swarm import (
    HealthCheck,
    SecretMount,
    converge,
    data_volume,
    generated_secret,
    placement,
    resources,
    restart_policy,
    service_labels,
    service_options,
    stop_grace_period,
)

# The name WordPress dials. It is a network alias of MySQL's task, so it exists as soon as the
# network does and WordPress need not wait for MySQL's auto-named service to learn it.
MYSQL_ALIAS = "mysql"
MYSQL_PORT = 3306
DATA_DIR = "/var/lib/mysql"
ROOT_PASSWORD_FILE = MYSQL_ROOT_PASSWORD_FILE
USER_PASSWORD_FILE = MYSQL_USER_PASSWORD_FILE

# The image's first start runs a temporary server with --skip-networking to initialise the data
# directory; probing 127.0.0.1 over TCP fails until the real server listens. `mysqladmin ping`
# exits 0 on any server answer (even "access denied"), so no password is needed on the command line.
MYSQL_HEALTH = HealthCheck(
    test=("CMD", "mysqladmin", "ping", "--protocol=tcp", "--host=127.0.0.1", "--port=3306", "--silent"),
    interval="10s",
    timeout="5s",
    retries=6,
    # A first init (system tables, users) takes 30-90 s on a small node.
    start_period="3m",
)

# A clean shutdown of a busy server; Swarm SIGKILLs after this.
MYSQL_STOP_GRACE_SECONDS = 60


@dataclass(frozen=True)
class DatabaseConnection:
    """What a client (WordPress) needs; deliberately no reference to MySQL's service, so a client
    deploys in parallel with it instead of waiting for it."""

    host: str
    port: int
    database: str
    user: str
    network_id: pulumi.Input[str]
    password_secret_id: pulumi.Input[str]
    password_secret_name: pulumi.Input[str]


@dataclass(frozen=True)
class MySqlWithSecretsArgs:
    placement_constraint: str
    settings: MySqlSettings


def mysql_network_args(encrypted: bool) -> docker.NetworkArgs:
    return docker.NetworkArgs(
        driver="overlay",
        # Not attachable: only swarm services of this stack join, not stray `docker run` containers.
        attachable=False,
        options={"encrypted": "true"} if encrypted else None,
        labels=[
            docker.NetworkLabelArgs(label=ROLE_LABEL, value="mysql-private"),
            # `options` reads back with the engine's own vxlanid_list key, so the network ignores
            # changes to it (NETWORK_OPTIONS); the label carries the choice: labels are ForceNew too,
            # so switching encryption still replaces the network.
            docker.NetworkLabelArgs(label=ENCRYPTED_LABEL, value=str(encrypted).lower()),
        ],
    )


# Read back as {"encrypted": "true", "com.docker.network.driver.overlay.vxlanid_list": "4097"}
# (seen on the real engine): without this every preview replaces the network and both services.
NETWORK_OPTIONS = "options"


def mysql_constraints(placement_constraint: str, settings: MySqlSettings) -> list[str]:
    # A local volume lives on one node: pin a rescheduled task to the node holding the data.
    pinned = [f"node.hostname=={settings.data_node}"] if settings.data_node else []
    return [placement_constraint, *pinned]


def mysql_service_args(
    args: MySqlWithSecretsArgs,
    network_id: pulumi.Input[str],
    volume_name: pulumi.Input[str],
    root_secret: SecretMount,
    user_secret: SecretMount,
) -> docker.ServiceArgs:
    settings = args.settings
    return docker.ServiceArgs(
        mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
        labels=service_labels("mysql"),
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=settings.image,
                env={
                    "MYSQL_ROOT_PASSWORD_FILE": root_secret.path,
                    "MYSQL_PASSWORD_FILE": user_secret.path,
                    "MYSQL_USER": settings.user,
                    "MYSQL_DATABASE": settings.database,
                    # Without it the image creates root@'%' too: root could be tried from every
                    # task on the overlay. Applies on a fresh data directory only (README, "What the images are told").
                    "MYSQL_ROOT_HOST": "localhost",
                },
                secrets=[root_secret.args(), user_secret.args()],
                mounts=[
                    docker.ServiceTaskSpecContainerSpecMountArgs(type="volume", source=volume_name, target=DATA_DIR)
                ],
                # InnoDB flushes and closes its files on SIGTERM; killed, it runs crash recovery.
                stop_grace_period=stop_grace_period(MYSQL_STOP_GRACE_SECONDS),
                healthcheck=MYSQL_HEALTH.args(),
            ),
            networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=network_id, aliases=[MYSQL_ALIAS])],
            placement=placement(mysql_constraints(args.placement_constraint, settings)),
            resources=resources(settings.limits),
            restart_policy=restart_policy(),
        ),
        # dnsrr: the alias resolves straight to the one task, no virtual IP, and nothing published.
        endpoint_spec=docker.ServiceEndpointSpecArgs(mode="dnsrr"),
        # One writer per data directory: stop the old task before the new one opens the volume.
        update_config=docker.ServiceUpdateConfigArgs(
            parallelism=1, delay="0s", order="stop-first", failure_action="pause", monitor="30s"
        ),
        converge_config=converge("10m"),
    )


class MySqlWithSecrets(pulumi.ComponentResource):
    """Outputs what a client needs: host, port, database, user, and the user-password secret."""

    network: docker.Network
    user_password_secret: docker.Secret
    service: docker.Service

    def __init__(self, name: str, args: MySqlWithSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PROJECT}:mysql:MySqlWithSecrets", name, None, opts)
        settings = args.settings

        # No fixed names: secrets are immutable and can't be removed while in use, so a new
        # password must roll in as a new auto-named secret before the old one is deleted.
        root = generated_secret(f"{name}-root-password", settings.root_password_generation, self)
        user = generated_secret(f"{name}-user-password", settings.user_password_generation, self)
        self.user_password_secret = user.secret
        self.network = docker.Network(
            f"{name}-net",
            args=mysql_network_args(settings.encrypt_network),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=[NETWORK_OPTIONS]),
        )
        # Kept on `pulumi destroy`: the database outlives the stack unless removed by hand.
        volume = data_volume(f"{name}-data", "mysql-data", parent=self)
        self.service = docker.Service(
            f"{name}-mysql",
            args=mysql_service_args(
                args,
                network_id=self.network.id,
                volume_name=volume.name,
                root_secret=root.mount(ROOT_PASSWORD_FILE),
                user_secret=user.mount(USER_PASSWORD_FILE),
            ),
            opts=service_options(self, exclusive=True),
        )

        self.connection = DatabaseConnection(
            host=MYSQL_ALIAS,
            port=MYSQL_PORT,
            database=settings.database,
            user=settings.user,
            network_id=self.network.id,
            password_secret_id=self.user_password_secret.id,
            password_secret_name=self.user_password_secret.name,
        )
        self.service_name: pulumi.Output[str] = self.service.name
        self.secret_names: pulumi.Output[list[str]] = pulumi.Output.all(
            root.secret.name, self.user_password_secret.name
        )
        self.register_outputs(
            {
                "host": MYSQL_ALIAS,
                "port": MYSQL_PORT,
                "database": settings.database,
                "user": settings.user,
                "user_password_secret_name": self.user_password_secret.name,
                "service_name": self.service_name,
            }
        )
