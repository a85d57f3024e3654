"""Pieces of the deliberate root password rotation (docs/operations.md, "Rotating passwords on purpose").

The application user's password needs none of this: MySQL sets it from its init-file secret at
every start (components/mysql.py), so a new one rolls out with one `pulumi up`. Root's is kept in
the data directory and set only on a first start, so a new root secret needs the server taught by
hand, with the old root password still mounted. The new value travels only through pipes:

  pulumi stack export | python -m swarmops.rotate urn db-root-password          # for --target
  pulumi stack export --show-secrets | python -m swarmops.rotate password db-root-password \\
    | docker exec -i <mysql task> bash -c "$(python -m swarmops.rotate script root)"
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from stackconfig.names import MYSQL_ROOT_PASSWORD_FILE, SECRETS_DIR

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
ROOT_PASSWORD_FILE = f"{SECRETS_DIR}/{MYSQL_ROOT_PASSWORD_FILE}"
# pulumi's marker of a secret value in a state export.
_SECRET_SIG = "4dabf18193072939515e22adb298388d"


class RotationError(RuntimeError):
    pass


def find_password_resource(export: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The RandomPassword whose logical name is `name` in a `pulumi stack export` document."""
    resources: list[Mapping[str, Any]] = export.get("deployment", {}).get("resources") or []
    found = [r for r in resources if r.get("type") == RANDOM_PASSWORD and str(r.get("urn", "")).endswith(f"::{name}")]
    if len(found) != 1:
        names = sorted(str(r.get("urn", "")).rpartition("::")[2] for r in resources if r.get("type") == RANDOM_PASSWORD)
        raise RotationError(
            f"no single RandomPassword named {name!r} in the stack; it has: {', '.join(names) or 'none'}"
        )
    return found[0]


def password_from_export(export: Mapping[str, Any], name: str) -> str:
    """The generated value, from an export made with --show-secrets."""
    result = find_password_resource(export, name).get("outputs", {}).get("result")
    if isinstance(result, Mapping) and _SECRET_SIG in result:
        if "plaintext" not in result:
            raise RotationError("the export holds the password encrypted: run `pulumi stack export --show-secrets`")
        result = json.loads(str(result["plaintext"]))  # pyright: ignore[reportUnknownArgumentType]
    if not isinstance(result, str) or not result:
        raise RotationError(f"RandomPassword {name!r} has no result yet: run the targeted `pulumi up` first")
    return result


def _root_login() -> str:
    # The option file keeps the root password off mysql's command line; printf is a bash builtin.
    # Quoted, since '#' starts a comment in option files (the alphabet has no quote or backslash).
    return (
        "umask 077\n"
        "trap 'rm -f /tmp/rotate.cnf' EXIT\n"
        f'printf \'[client]\\nuser=root\\npassword="%s"\\n\' "$(< {ROOT_PASSWORD_FILE})" > /tmp/rotate.cnf\n'
    )


def rotation_script() -> str:
    """A bash script to run inside the MySQL task: reads root's new password from stdin and sets it
    on both root accounts that exist, logging in with the root password still mounted."""
    read_new = 'new=""\nIFS= read -r new || true\n[ -n "$new" ] || { echo "no new password on stdin" >&2; exit 1; }\n'
    sql = (
        "ALTER USER IF EXISTS 'root'@'%' IDENTIFIED BY '${new}';\n"
        "ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED BY '${new}';"
    )
    return f"set -eu\n{read_new}{_root_login()}mysql --defaults-extra-file=/tmp/rotate.cnf <<SQL\n{sql}\nSQL\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    urn = commands.add_parser("urn", help="URN of a RandomPassword, from `pulumi stack export` on stdin")
    urn.add_argument("name", help="logical name, e.g. db-user-password or db-root-password")
    password = commands.add_parser("password", help="its value, to a pipe only (--show-secrets export on stdin)")
    password.add_argument("name")
    script = commands.add_parser("script", help="the bash script that sets root's new password in the MySQL task")
    script.add_argument("account", choices=["root"])
    options = parser.parse_args(argv)
    try:
        if options.command == "script":
            sys.stdout.write(rotation_script())
            return 0
        export = json.load(sys.stdin)
        if options.command == "urn":
            print(find_password_resource(export, options.name)["urn"])
            return 0
        if sys.stdout.isatty():
            raise RotationError("refusing to print a password on a terminal: pipe it into `docker exec -i …`")
        sys.stdout.write(password_from_export(export, options.name))
        return 0
    except (RotationError, json.JSONDecodeError) as error:
        print(f"rotate: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
