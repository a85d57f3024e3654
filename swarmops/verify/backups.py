"""Are there backups, young enough and whole? Read inside the database part's backup job, which has
the backups volume mounted (only on the node verify talks to; elsewhere the row says why not).

A backup is the directory of one interval (`YYYYMMDDThhmmssZ`, the interval's UTC start) holding
both parts' manifests (components/backup.sh). The newest complete one must be younger than twice
the interval, and the newest one must not be incomplete once its interval is over (a part failed,
or its job died in the middle).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from swarmops.verify import Verdict
from swarmops.verify.inside import run_in_local_task

if TYPE_CHECKING:
    from docker import DockerClient

PARTS = ("database.json", "wp-content.json")
LISTING_SCRIPT = r"""
echo "interval $BACKUP_INTERVAL_MINUTES"
for dir in /backups/*Z/; do
  [ -d "$dir" ] || continue
  parts=""
  for manifest in database.json wp-content.json; do
    [ -f "$dir/$manifest" ] && parts="$parts,$manifest"
  done
  echo "backup $(basename "$dir") ${parts#,}"
done
if [ -e /backups/.paused ]; then echo "paused $(cat /backups/.paused)"; fi
"""


@dataclass(frozen=True)
class Backup:
    stamp: str  # the interval's start, UTC
    parts: frozenset[str]  # the manifests present

    @property
    def started(self) -> dt.datetime:
        return dt.datetime.strptime(self.stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)

    @property
    def complete(self) -> bool:
        return set(PARTS) <= self.parts


@dataclass(frozen=True)
class BackupListing:
    interval_minutes: int
    backups: tuple[Backup, ...]  # oldest first
    paused: str | None = None  # since when the schedulers take no backups (an operator paused them)


def parse_listing(output: str) -> BackupListing:
    interval, backups, paused = 0, [], None
    for line in output.splitlines():
        words = line.split()
        if words[:1] == ["interval"] and len(words) == 2:
            interval = int(words[1])
        elif words[:1] == ["paused"]:
            paused = " ".join(words[1:]) or "an unknown time"
        elif words[:1] == ["backup"] and len(words) >= 2:
            parts = frozenset(words[2].split(",")) if len(words) > 2 else frozenset[str]()
            backups.append(Backup(words[1], parts))
    return BackupListing(interval, tuple(sorted(backups, key=lambda b: b.stamp)), paused)


def read_backups(client: DockerClient, service_name: str) -> tuple[BackupListing | None, str]:
    """The backups as the database part's job sees them, or None and why not."""
    output, why_not = run_in_local_task(
        client, service_name, LISTING_SCRIPT, task="backup job", placed="the backups are kept on {node}"
    )
    return (parse_listing(output), "") if output is not None else (None, why_not)


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def check_backups(listing: BackupListing | None, why_not: str, now: dt.datetime) -> Verdict:
    if listing is None:
        return "SKIP", why_not
    interval = dt.timedelta(minutes=listing.interval_minutes)
    complete = [b for b in listing.backups if b.complete]
    if not complete:
        return "FAIL", "no complete backup yet: take one (`python -m swarmops.backups --stack <stack> now`)"
    newest = complete[-1]
    problems: list[str] = []
    age = (now - newest.started).total_seconds()
    if age > 2 * interval.total_seconds():
        problems.append(
            f"the newest complete backup, {newest.stamp}, is {_age(age)} old: more than twice the "
            f"{listing.interval_minutes} min interval (are the backup jobs running?)"
        )
    latest = listing.backups[-1]
    if not latest.complete and latest.started + interval < now:
        missing = ", ".join(sorted(set(PARTS) - latest.parts))
        problems.append(f"the newest backup, {latest.stamp}, is incomplete: no {missing} (see the backup jobs' logs)")
    paused = f"; scheduled backups paused since {listing.paused}" if listing.paused else ""
    if problems:
        return "FAIL", "; ".join(problems) + paused
    return "PASS", f"newest {newest.stamp}, {_age(age)} old; {len(complete)} complete backup(s) kept{paused}"
