"""Does the database know its users? A login as the application user and as root, inside MySQL's
own task, with the passwords of its mounted secrets.

It catches a data directory whose first initialisation was killed half-way (the health-check
deadline, the memory limit, a drain): the image never initialises an existing data directory again,
so root may have no password and the user or database may not exist, while the server itself
answers its health check. It also catches root's password differing from its secret (a root
rotation's step 2 skipped). The passwords go into the client's option file through a pipe: no
password on a command line, in the environment or in the output. Containers can be entered only on
the node verify talks to; elsewhere the check says it was not tried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from swarmops.verify import Verdict
from swarmops.verify.inside import run_in_local_task
from swarmops.verify.observed import DatabaseLogins, Observed

if TYPE_CHECKING:
    from docker import DockerClient

    from swarmlib.facts import ServiceFacts
    from swarmops.verify.stack import Expected

# Each line: "<who>: ok" or "<who>: <the client's error>". printf is a bash builtin.
LOGIN_SCRIPT = r"""
login() {  # user password-file client-arguments...
  local user=$1 file=$2
  shift 2
  mysql --defaults-extra-file=<(printf '[client]\nuser=%s\npassword="%s"\n' "$user" "$(cat "$file")") \
    --connect-timeout=5 -N -e 'SELECT 1' "$@" 2>&1 >/dev/null && echo ok
}
printf 'user: %s\n' "$(login "$MYSQL_USER" "$MYSQL_PASSWORD_FILE" --protocol=tcp --host=127.0.0.1 "$MYSQL_DATABASE")"
printf 'root: %s\n' "$(login root "$MYSQL_ROOT_PASSWORD_FILE" --protocol=socket)"
"""

RECOVERY = "docs/operations.md, 'A half-initialised database'"


def _error(output: str, who: str) -> str | None:
    for line in output.splitlines():
        if line.startswith(f"{who}: "):
            answer = line.removeprefix(f"{who}: ").strip()
            return None if answer == "ok" else answer or "no answer"
    return f"no {who} login result: {output.strip()[:200]}"


def try_logins(client: DockerClient, service_name: str) -> tuple[DatabaseLogins | None, str]:
    """The logins tried in the service's task on this node, or None and why not."""
    output, why_not = run_in_local_task(
        client, service_name, LOGIN_SCRIPT, task="MySQL task", placed="MySQL's task runs on {node}"
    )
    if output is None:
        return None, why_not
    return DatabaseLogins(str(client.info().get("Name", "")), _error(output, "user"), _error(output, "root")), ""


def check_database(role: str, service: ServiceFacts, expected: Expected, observed: Observed) -> Verdict:
    """The application user logs in to its database, and root on the server's socket."""
    logins = observed.inside.logins
    if logins is None:
        return "SKIP", observed.inside.why_no_logins
    problems = [
        f"{who} can't log in: {error}"
        for who, error in (("the user", logins.user_error), ("root", logins.root_error))
        if error
    ]
    if problems:
        return "FAIL", (
            "; ".join(problems) + ". The data directory may have been initialised only part-way (a first start "
            f"killed), or the password differs from its secret (a rotation step skipped): see {RECOVERY}"
        )
    return "PASS", f"the user logs in to its database and root on the socket (task on {logins.node})"
