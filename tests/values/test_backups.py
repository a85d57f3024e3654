"""Backups' values: the jobs' specs, the verifier's judgement of a listing, the tool's reading of one."""

# The Args getters are typed Input[Optional[...]]; here they hold plain values the builders set.
# pyright: reportOptionalMemberAccess=false, reportOptionalSubscript=false, reportOptionalIterable=false
# pyright: reportAttributeAccessIssue=false, reportArgumentType=false, reportIndexIssue=false
# pyright: reportGeneralTypeIssues=false, reportCallIssue=false

from __future__ import annotations

import datetime as dt

import pytest

from components.backups import BACKUP_SCRIPT, BACKUPS_DIR, CONTENT_MOUNT, SiteBackupsArgs, backup_service_args
from components.mysql import DatabaseConnection
from components.specs import Limits
from stackconfig.settings import SettingsError, parse_settings
from swarmops.backups import BackupError, chosen, parse_list
from swarmops.verify.backups import Backup, BackupListing, check_backups, parse_listing

DB = DatabaseConnection("mysql", 3306, "wordpress", "wordpress", "net-id", "user-secret-id", "user-secret")
ARGS = SiteBackupsArgs(
    mysql_image="mysql:8.4.3",
    wordpress_image="wordpress:6.6.2-php8.2-apache",
    placement_constraints=["node.labels.env==prod", "node.hostname==web-1"],
    database=DB,
    content_volume_name="content-volume",
    interval_minutes=60,
    keep=3,
    limits=Limits(0.5, 256),
)


def test_the_database_job_dumps_with_mysqls_image_secret_and_network() -> None:
    spec = backup_service_args(ARGS, "database", "backups-volume")
    container = spec.task_spec.container_spec
    assert container.image == "mysql:8.4.3"
    assert container.args == ["bash", "-c", BACKUP_SCRIPT, "backup.sh", "database", "schedule"]
    (secret,) = container.secrets
    assert (secret.secret_id, secret.file_name, secret.file_uid, secret.file_mode) == (
        "user-secret-id",
        "/run/secrets/backup-db-password",
        "0",
        0o400,
    )
    assert container.env["DB_PASSWORD_FILE"] == secret.file_name
    assert {k: container.env[k] for k in ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER")} == {
        "DB_HOST": "mysql",
        "DB_PORT": "3306",
        "DB_NAME": "wordpress",
        "DB_USER": "wordpress",
    }
    assert (container.env["BACKUP_INTERVAL_MINUTES"], container.env["BACKUP_KEEP"]) == ("60", "3")
    assert [n.id for n in spec.task_spec.networks_advanceds] == ["net-id"]
    ((mount),) = container.mounts
    assert (mount.source, mount.target, mount.read_only) == ("backups-volume", BACKUPS_DIR, None)


def test_the_content_job_reads_wp_content_read_only_in_wordpresss_image_without_a_secret() -> None:
    spec = backup_service_args(ARGS, "content", "backups-volume")
    container = spec.task_spec.container_spec
    assert container.image == "wordpress:6.6.2-php8.2-apache"
    assert container.secrets is None
    assert spec.task_spec.networks_advanceds is None
    backups, content = container.mounts
    assert (backups.source, backups.target) == ("backups-volume", BACKUPS_DIR)
    assert (content.source, content.target, content.read_only) == ("content-volume", CONTENT_MOUNT, True)


@pytest.mark.parametrize("part", ["database", "content"])
def test_both_jobs_run_on_the_backup_node_and_finish_a_backup_before_they_stop(part: str) -> None:
    spec = backup_service_args(ARGS, part, "backups-volume")
    assert spec.task_spec.placement.constraints == ["node.labels.env==prod", "node.hostname==web-1"]
    assert spec.mode.replicated.replicas == 1
    assert spec.task_spec.container_spec.stop_grace_period == "5m"
    # The signal the script stops on, whatever the image's own (Apache's SIGWINCH for WordPress).
    assert spec.task_spec.container_spec.stop_signal == "SIGTERM"
    assert spec.update_config.order == "stop-first"
    assert spec.task_spec.container_spec.healthcheck.tests[:2] == ["CMD", "bash"]
    assert spec.task_spec.resources.limits.memory_bytes == 256 << 20


def test_backups_need_a_node_to_live_on() -> None:
    with pytest.raises(SettingsError, match=r"wordpress-swarm:backup.node: got None; allowed: a node hostname"):
        parse_settings({"envLabel": "prod", "backup": {"enabled": True}})
    settings = parse_settings({"envLabel": "prod", "backup": {"enabled": True, "node": "web-1"}})
    assert (settings.backup.node, settings.backup.interval_minutes, settings.backup.keep) == ("web-1", 1440, 7)


NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
BOTH = frozenset({"database.json", "wp-content.json"})


def listing(*backups: tuple[str, frozenset[str]], paused: str | None = None) -> BackupListing:
    return BackupListing(60, tuple(Backup(stamp, parts) for stamp, parts in backups), paused)


def test_a_young_complete_backup_passes() -> None:
    status, detail = check_backups(listing(("20261207T100000Z", BOTH), ("20261207T110000Z", BOTH)), "", NOW)
    assert (status, detail) == ("PASS", "newest 20261207T110000Z, 1 h 0 min old; 2 complete backup(s) kept")


def test_no_backup_or_one_older_than_twice_the_interval_fails() -> None:
    status, detail = check_backups(listing(), "", NOW)
    assert status == "FAIL"
    assert "no complete backup yet" in detail
    status, detail = check_backups(listing(("20261207T085900Z", BOTH), paused="2026-12-07T09:00:00Z"), "", NOW)
    assert status == "FAIL"
    assert "20261207T085900Z, is 3 h 1 min old: more than twice the 60 min interval" in detail
    assert detail.endswith("scheduled backups paused since 2026-12-07T09:00:00Z")


def test_an_incomplete_newest_backup_fails_once_its_interval_is_over_but_not_while_it_runs() -> None:
    over = listing(("20261207T100000Z", BOTH), ("20261207T104000Z", frozenset({"database.json"})))
    status, detail = check_backups(over, "", NOW)
    assert status == "FAIL"
    assert "the newest backup, 20261207T104000Z, is incomplete: no wp-content.json" in detail
    running = listing(("20261207T110000Z", BOTH), ("20261207T113000Z", frozenset({"database.json"})))
    assert check_backups(running, "", NOW)[0] == "PASS"


def test_backups_that_cant_be_read_from_here_are_skipped_with_the_reason() -> None:
    why = "not tried: the backups are kept on web-1, not on the node verify talks to"
    assert check_backups(None, why, NOW) == ("SKIP", why)


def test_the_listings_are_read() -> None:
    output = (
        "interval 60\nbackup 20261207T100000Z database.json,wp-content.json\nbackup 20261207T110000Z database.json\n"
    )
    assert parse_listing(output + "paused 2026-12-07T11:10:00Z\n") == listing(
        ("20261207T100000Z", BOTH), ("20261207T110000Z", frozenset({"database.json"})), paused="2026-12-07T11:10:00Z"
    )
    manifest = '{"part": "database", "bytes": 1500000} {"part": "content", "bytes": 500000}'
    (first, second) = parse_list(f"backup 20261207T110000Z {manifest}\nbackup 20261207T100000Z\npaused x\n")
    assert (first.stamp, first.complete, second.stamp, second.complete) == (
        "20261207T100000Z",
        False,
        "20261207T110000Z",
        True,
    )
    assert second.bytes == 2_000_000


def test_the_newest_complete_backup_is_the_default_and_a_named_one_must_exist() -> None:
    backups = parse_list(
        'backup 20261207T100000Z {"part": "database"} {"part": "content"}\nbackup 20261207T110000Z {"part": "database"}'
    )
    assert chosen(backups, None).stamp == "20261207T100000Z"
    assert chosen(backups, "20261207T110000Z").stamp == "20261207T110000Z"
    with pytest.raises(BackupError, match="no backup 2025; there are: 20261207T100000Z, 20261207T110000Z"):
        chosen(backups, "2025")
    with pytest.raises(BackupError, match="no complete backup"):
        chosen(parse_list(""), None)
