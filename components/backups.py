"""SiteBackups: scheduled backups of the database and wp-content, kept in a volume on one node.

Swarm has no cron, and neither official image has every tool a backup needs (the MySQL image has
mysqldump but no tar, the WordPress image tar but no mysqldump). So a backup is taken by two small
scheduler services, one per part, each running components/backup.sh in the image that has its
tools and waking every 30 s: the interval a moment falls in (UTC-aligned) names the backup, so both
parts of one backup land in the same directory. Both run on the node the backups live on, where
wp-content's node-local volume must be too. The database part logs in as the application user
(root may log in only locally), with the user's password secret mounted for root alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components import PACKAGE
from components.mysql import DatabaseConnection
from components.specs import (
    ROOT,
    HealthCheck,
    Limits,
    SecretMount,
    data_volume,
    placement,
    restart_policy,
    service_labels,
    service_options,
    stop_grace_period,
    task_resources,
)
from stackconfig.outputs import BACKUP_PARTS

# The script is the job; a file beside this module so shellcheck reads it.
BACKUP_SCRIPT = (Path(__file__).parent / "backup.sh").read_text()
BACKUPS_DIR = "/backups"
CONTENT_MOUNT = "/wp-content"
DB_PASSWORD_FILE = "backup-db-password"

# The scheduler touches its heartbeat every 30 s; a loop that stopped turning is unhealthy.
BACKUP_HEALTH = HealthCheck(
    test=("CMD", "bash", "-c", '[ -n "$(find /tmp/backup-heartbeat -mmin -2)" ]'),
    interval="30s",
    timeout="5s",
    retries=3,
    start_period="1m",
)


@dataclass(frozen=True)
class SiteBackupsArgs:
    mysql_image: pulumi.Input[str]  # runs the database part: mysqldump matching the server
    wordpress_image: pulumi.Input[str]  # runs the content part: tar
    placement_constraints: Sequence[str]  # the node the backups live on, and wp-content's volume
    database: DatabaseConnection
    content_volume_name: pulumi.Input[str]
    interval_minutes: int
    keep: int
    limits: Limits


def backup_service_args(args: SiteBackupsArgs, part: str, backups_volume_name: pulumi.Input[str]) -> docker.ServiceArgs:
    """The scheduler of one part of the backups: `database` or `content`."""
    db = args.database
    password = SecretMount(db.password_secret_id, db.password_secret_name, DB_PASSWORD_FILE, ROOT)
    mounts = [
        docker.ServiceTaskSpecContainerSpecMountArgs(type="volume", source=backups_volume_name, target=BACKUPS_DIR)
    ]
    if part == "content":
        mounts.append(
            docker.ServiceTaskSpecContainerSpecMountArgs(
                type="volume", source=args.content_volume_name, target=CONTENT_MOUNT, read_only=True
            )
        )
    return docker.ServiceArgs(
        mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
        labels=service_labels(f"backup-{part}"),
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=args.mysql_image if part == "database" else args.wordpress_image,
                # The images' entrypoints run any other command as is, as root.
                args=["bash", "-c", BACKUP_SCRIPT, "backup.sh", part, "schedule"],
                env={
                    "BACKUP_INTERVAL_MINUTES": str(args.interval_minutes),
                    "BACKUP_KEEP": str(args.keep),
                    "DB_HOST": db.host,
                    "DB_PORT": str(db.port),
                    "DB_NAME": db.database,
                    "DB_USER": db.user,
                    "DB_PASSWORD_FILE": password.path,
                    # Recorded in each backup's manifest: what the data came from.
                    "MYSQL_IMAGE": args.mysql_image,
                    "WORDPRESS_IMAGE": args.wordpress_image,
                },
                secrets=[password.args()] if part == "database" else None,
                mounts=mounts,
                healthcheck=BACKUP_HEALTH.args(),
                # The script stops on SIGTERM; the images' own stop signal needn't be it (WordPress's
                # is Apache's SIGWINCH, which bash ignores: the job would sit out the grace period).
                stop_signal="SIGTERM",
                # A backup in progress is finished before the job stops.
                stop_grace_period=stop_grace_period(300),
            ),
            networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=db.network_id)]
            if part == "database"
            else None,
            placement=placement(args.placement_constraints),
            resources=task_resources(args.limits),
            restart_policy=restart_policy(),
        ),
        # One writer of its part at a time.
        update_config=docker.ServiceUpdateConfigArgs(
            parallelism=1, delay="0s", order="stop-first", failure_action="rollback", monitor="30s"
        ),
    )


class SiteBackups(pulumi.ComponentResource):
    """The two backup schedulers and the volume the backups are kept in (kept on destroy)."""

    service_names: pulumi.Output[list[str]]  # the database part's, then the content part's
    volume_name: pulumi.Output[str]

    def __init__(self, name: str, args: SiteBackupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PACKAGE}:backups:SiteBackups", name, None, opts)
        volume = data_volume(f"{name}-volume", "backups", parent=self)
        services = [
            docker.Service(
                f"{name}-{part}",
                args=backup_service_args(args, part, volume.name),
                # Exclusive: a second copy would write the same part of the same backup.
                opts=service_options(self, exclusive=True),
            )
            for part in BACKUP_PARTS
        ]
        self.service_names = pulumi.Output.all(*(service.name for service in services))
        self.volume_name = volume.name
        self.register_outputs({"service_names": self.service_names, "volume_name": self.volume_name})
