"""MySqlWithSecrets: generated passwords as swarm secrets, MySQL on a private (encrypted) overlay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import PACKAGE
from components.specs import (
    MYSQL,
    ROOT,
    HealthCheck,
    Limits,
    SecretMount,
    converge,
    data_volume,
    generated_secret,
    placement,
    restart_policy,
    secret_data,
    service_labels,
    service_options,
    stop_grace_period,
    task_resources,
)
from stackconfig.names import (
    ENCRYPTED_LABEL,
    MYSQL_INIT_FILE,
    MYSQL_ROOT_PASSWORD_FILE,
    MYSQL_USER_PASSWORD_FILE,
    ROLE_LABEL,
)

# The name WordPress dials. It is a network alias of MySQL's task, so it exists as soon as the
# network does and WordPress need not wait for MySQL's auto-named service to learn it.
MYSQL_ALIAS = "mysql"
MYSQL_PORT = 3306
DATA_DIR = "/var/lib/mysql"

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
    image: pulumi.Input[str]
    placement_constraints: Sequence[str]  # where the stack's services may run
    database: str
    user: str
    data_node: str | None  # hostname of the node holding the data volume; MySQL is pinned there
    # Bumping a generation regenerates that password on purpose (docs/operations.md, "Rotation").
    root_password_generation: int
    user_password_generation: int
    # IPsec on the private overlay; off only where the nodes' network drops ESP between hosts.
    encrypt_network: bool
    limits: Limits


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


def mysql_constraints(args: MySqlWithSecretsArgs) -> list[str]:
    # A local volume lives on one node: pin a rescheduled task to the node holding the data.
    pinned = [f"node.hostname=={args.data_node}"] if args.data_node else []
    return [*args.placement_constraints, *pinned]


def init_file_sql(user: str, password: str) -> str:
    """What the server runs at each start: the application user's password is the secret's. The
    image reads the _FILE secrets only on a first start, so without it a data directory kept by
    `pulumi destroy` would refuse the password a later `up` generates, and a new password would
    need the server taught by hand. A user that doesn't exist yet (the image's own first start,
    which runs the server with these arguments too) is left alone. One statement per line: the
    server's init-file format."""

    def quoted(text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"

    return f"ALTER USER IF EXISTS {quoted(user)}@'%' IDENTIFIED BY {quoted(password)};\n"


def mysql_service_args(
    args: MySqlWithSecretsArgs,
    network_id: pulumi.Input[str],
    volume_name: pulumi.Input[str],
    root_secret: SecretMount,
    user_secret: SecretMount,
    init_file: SecretMount,
) -> docker.ServiceArgs:
    return docker.ServiceArgs(
        mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
        labels=service_labels("mysql"),
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=args.image,
                # The image's command, with the init file that keeps the user's password the secret's.
                args=["mysqld", f"--init-file={init_file.path}"],
                env={
                    "MYSQL_ROOT_PASSWORD_FILE": root_secret.path,
                    "MYSQL_PASSWORD_FILE": user_secret.path,
                    "MYSQL_USER": args.user,
                    "MYSQL_DATABASE": args.database,
                    # Without it the image creates root@'%' too: root could be tried from every task
                    # on the overlay. Applies on a fresh data directory only (docs/operations.md).
                    "MYSQL_ROOT_HOST": "localhost",
                },
                secrets=[root_secret.args(), user_secret.args(), init_file.args()],
                mounts=[
                    docker.ServiceTaskSpecContainerSpecMountArgs(type="volume", source=volume_name, target=DATA_DIR)
                ],
                # InnoDB flushes and closes its files on SIGTERM; killed, it runs crash recovery.
                stop_grace_period=stop_grace_period(MYSQL_STOP_GRACE_SECONDS),
                healthcheck=MYSQL_HEALTH.args(),
            ),
            networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=network_id, aliases=[MYSQL_ALIAS])],
            placement=placement(mysql_constraints(args)),
            resources=task_resources(args.limits),
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
    """Generated passwords as swarm secrets, and MySQL on a private overlay; `connection` is what a
    client needs."""

    connection: DatabaseConnection
    network_id: pulumi.Output[str]
    service_name: pulumi.Output[str]
    secret_names: pulumi.Output[list[str]]  # root's, the application user's, the init file's

    def __init__(self, name: str, args: MySqlWithSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PACKAGE}:mysql:MySqlWithSecrets", name, None, opts)
        # No fixed names: secrets are immutable and can't be removed while in use, so a new
        # password must roll in as a new auto-named secret before the old one is deleted.
        root = generated_secret(f"{name}-root-password", args.root_password_generation, self)
        user = generated_secret(f"{name}-user-password", args.user_password_generation, self)
        init_file = docker.Secret(
            f"{name}-init-file",
            args=docker.SecretArgs(data=secret_data(user.password.result.apply(lambda p: init_file_sql(args.user, p)))),
            opts=pulumi.ResourceOptions(parent=self),
        )
        network = docker.Network(
            f"{name}-net",
            args=mysql_network_args(args.encrypt_network),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=[NETWORK_OPTIONS]),
        )
        # Kept on `pulumi destroy`: the database outlives the stack unless removed by hand.
        volume = data_volume(f"{name}-data", "mysql-data", parent=self)
        service = docker.Service(
            f"{name}-mysql",
            args=mysql_service_args(
                args,
                network_id=network.id,
                volume_name=volume.name,
                # The entrypoint reads these as root, before it re-executes itself as mysql;
                root_secret=root.mount(MYSQL_ROOT_PASSWORD_FILE, ROOT),
                user_secret=user.mount(MYSQL_USER_PASSWORD_FILE, ROOT),
                # the server reads this one, as mysql.
                init_file=SecretMount(init_file.id, init_file.name, MYSQL_INIT_FILE, MYSQL),
            ),
            opts=service_options(self, exclusive=True),
        )

        self.network_id = network.id
        self.service_name = service.name
        self.secret_names = pulumi.Output.all(root.secret.name, user.secret.name, init_file.name)
        self.connection = DatabaseConnection(
            host=MYSQL_ALIAS,
            port=MYSQL_PORT,
            database=args.database,
            user=args.user,
            network_id=network.id,
            password_secret_id=user.secret.id,
            password_secret_name=user.secret.name,
        )
        self.register_outputs(
            {
                "host": MYSQL_ALIAS,
                "port": MYSQL_PORT,
                "database": args.database,
                "user": args.user,
                "network_id": self.network_id,
                "password_secret_id": self.connection.password_secret_id,
                "password_secret_name": self.connection.password_secret_name,
                "service_name": self.service_name,
                "secret_names": self.secret_names,
            }
        )
