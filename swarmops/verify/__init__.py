"""Post-deploy verification: does the live swarm match what the stack's outputs say was deployed?

    python -m swarmops.verify --stack dev               # expected shape from `pulumi stack output`
    python -m swarmops.verify --outputs outputs.json    # ... or from a saved copy ('-' = stdin)
    python -m swarmops.verify --stack prod --docker-host ssh://deploy@swarm-manager --json

One row per check; exit 0 when no row fails (a check that can't be tried from here says SKIP and
why), 1 when any fails, 2 when verification could not run at all (unreadable outputs, no Docker
manager). One job per module, so the judgement is tested without an engine:

- `stack`: what to verify, read with the pulumi CLI (or from a saved copy of the outputs);
- `swarmlib.facts` (shared with preflight) and `http_probe`: the swarm and the URL as plain data;
- `checks` (with `tasks` and `secret_files`): a registry of checks turning those facts into rows;
- `render`: the rows as a table or JSON;
- `cli`: the command line and its --wait loop.

This module holds what they share: the row, the exit codes and the could-not-verify error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2

# SKIP: a check that could not be tried from here; it says why and fails nothing.
Status = Literal["PASS", "FAIL", "SKIP"]
# What a check says about one service: its status and the row's detail.
Verdict = tuple[Status, str]


class VerifyError(Exception):
    """Verification could not run (bad input, no engine); exit code 2."""


@dataclass(frozen=True)
class Row:
    check: str
    target: str
    status: Status
    detail: str
