"""WordPress, MySQL and a logging daemon on the Docker Swarm nodes of one environment."""

import pulumi
import pulumi_docker as docker

from components.backups import SiteBackups, SiteBackupsArgs
from components.logging_daemon import LoggingDaemon, LoggingDaemonArgs
from components.mysql import MySqlWithSecrets, MySqlWithSecretsArgs
from components.node_labels import NodeEnvLabel, NodeEnvLabelArgs
from components.specs import Limits
from components.wordpress import WordPressSite, WordPressSiteArgs
from stackconfig.outputs import StackOutputs
from stackconfig.settings import read_settings
from swarmlib.client import ssh_options
from swarmlib.preflight import preflight

settings = read_settings()
preflight(settings)
db, wp, log, nodes = settings.mysql, settings.wordpress, settings.logging, settings.node_labels
where = [settings.placement_constraint]

swarm = docker.Provider(
    "swarm",
    host=settings.docker_host,
    # The provider's own ssh gets only -T and a connect timeout: ours make it give up, not hang.
    ssh_opts=ssh_options(settings.docker_ssh_opts) if settings.docker_host.startswith("ssh://") else None,
)
# Every service waits for the labels the stack puts on the nodes it lists (none: labelled by hand).
labels: list[pulumi.Resource] = []
if nodes.nodes:
    labels.append(
        NodeEnvLabel(
            "node-env-label",
            NodeEnvLabelArgs(
                docker_host=settings.docker_host,
                nodes=nodes.nodes,
                value=settings.env_label,
                take_over=nodes.take_over,
                ssh_opts=settings.docker_ssh_opts,
            ),
        )
    )
on_swarm = pulumi.ResourceOptions(providers=[swarm], depends_on=labels)

logging_daemon = LoggingDaemon(
    "logging",
    LoggingDaemonArgs(
        image=log.image, placement_constraints=where, route=log.route, limits=Limits(log.cpus, log.memory_mb)
    ),
    on_swarm,
)
mysql = MySqlWithSecrets(
    "db",
    MySqlWithSecretsArgs(
        image=db.image,
        placement_constraints=where,
        database=db.database,
        user=db.user,
        data_node=db.data_node,
        root_password_generation=db.root_password_generation,
        user_password_generation=db.user_password_generation,
        encrypt_network=db.encrypt_network,
        limits=Limits(db.cpus, db.memory_mb),
    ),
    on_swarm,
)
wordpress = WordPressSite(
    "site",
    WordPressSiteArgs(
        image=wp.image,
        placement_constraints=where,
        database=mysql.connection,
        replicas=wp.replicas,
        port=wp.port,
        publish_mode=wp.publish_mode,
        public_host=wp.public_host,
        node=wp.node,
        keys_generation=wp.keys_generation,
        limits=Limits(wp.cpus, wp.memory_mb),
    ),
    on_swarm,
)

backup_services: pulumi.Input[list[str]] = []
if settings.backup.enabled:
    backup = settings.backup
    backups = SiteBackups(
        "backups",
        SiteBackupsArgs(
            mysql_image=db.image,
            wordpress_image=wp.image,
            placement_constraints=[*where, f"node.hostname=={backup.node}"],
            database=mysql.connection,
            content_volume_name=wordpress.content_volume_name,
            interval_minutes=backup.interval_minutes,
            keep=backup.keep,
            limits=Limits(backup.cpus, backup.memory_mb),
        ),
        on_swarm,
    )
    backup_services = backups.service_names

outputs = StackOutputs(
    env_label=settings.env_label,
    url=wordpress.url,
    publish_mode=wp.publish_mode,
    wordpress_service=wordpress.service_name,
    mysql_service=mysql.service_name,
    logging_service=logging_daemon.service_name,
    mysql_secrets=mysql.secret_names,
    wordpress_secrets=wordpress.secret_names,
    backup_services=backup_services,
)
for name, value in outputs.as_exports().items():
    pulumi.export(name, value)
