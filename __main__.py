"""WordPress, MySQL and a logging daemon on the Docker Swarm nodes of one environment."""

import pulumi
import pulumi_docker as docker

from components.logging_daemon import LoggingDaemon, LoggingDaemonArgs
from components.mysql import MySqlWithSecrets, MySqlWithSecretsArgs
from components.node_labels import node_env_labels
from components.settings import read_settings
from components.wordpress import WordPressSite, WordPressSiteArgs
from swarmops.docker_host import ssh_options
from swarmops.preflight import preflight

settings = read_settings()
preflight(settings)

swarm = docker.Provider(
    "swarm",
    host=settings.docker_host,
    # The provider's own ssh gets only -T and a connect timeout: ours make it give up, not hang.
    ssh_opts=ssh_options(settings.docker_ssh_opts) if settings.docker_host.startswith("ssh://") else None,
)
on_swarm = pulumi.ResourceOptions(providers=[swarm], depends_on=node_env_labels(settings))

logging = LoggingDaemon(
    "logging",
    LoggingDaemonArgs(placement_constraint=settings.placement_constraint, settings=settings.logging),
    on_swarm,
)
mysql = MySqlWithSecrets(
    "db",
    MySqlWithSecretsArgs(placement_constraint=settings.placement_constraint, settings=settings.mysql),
    on_swarm,
)
wordpress = WordPressSite(
    "site",
    WordPressSiteArgs(
        placement_constraint=settings.placement_constraint,
        settings=settings.wordpress,
        database=mysql.connection,
    ),
    on_swarm,
)

pulumi.export("envLabel", settings.env_label)
pulumi.export("url", wordpress.url)
pulumi.export("publishMode", settings.wordpress.publish_mode)
pulumi.export("wordpressService", wordpress.service_name)
pulumi.export("mysqlService", mysql.service_name)
pulumi.export("loggingService", logging.service_name)
pulumi.export("mysqlSecrets", mysql.secret_names)
pulumi.export("wordpressSecrets", wordpress.secret_names)
