"""What one round of verification observed: the swarm's facts, and what could be read inside the
stack's own containers (the database's logins, the backups) or why not."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from swarmlib.facts import SwarmFacts
from swarmops.verify.backups import BackupListing


@dataclass(frozen=True)
class DatabaseLogins:
    """The application user's and root's logins, tried inside MySQL's task with their own secrets.
    None for a login that worked, else the client's error; `node` is where the task runs."""

    node: str
    user_error: str | None
    root_error: str | None


@dataclass(frozen=True)
class Inside:
    """Read inside the stack's containers, which only works on the node verify talks to."""

    logins: DatabaseLogins | None = None
    why_no_logins: str = "not tried"
    backups: BackupListing | None = None
    why_no_backups: str = "not tried"


@dataclass(frozen=True)
class Observed:
    facts: SwarmFacts
    inside: Inside = field(default_factory=Inside)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
