"""The secrets check: the expected secrets are attached and mounted where the images read them, and
WordPress reads the same password MySQL created its user with. Names and paths only, never data."""

from __future__ import annotations

import posixpath

from stackconfig.names import SECRETS_DIR
from swarmlib.facts import SecretRef, ServiceFacts
from swarmops.verify import Verdict
from swarmops.verify.observed import Observed
from swarmops.verify.stack import Expected
from swarmops.verify.tasks import running_tasks

#: WordPress logs in with the password MySQL created its user with: one secret behind both files.
MYSQL_PASSWORD_VAR = "MYSQL_PASSWORD_FILE"
WORDPRESS_PASSWORD_VAR = "WORDPRESS_DB_PASSWORD_FILE"


def _secret_files(service: ServiceFacts) -> dict[str, str]:
    """The spec's `*_FILE` variables that point into SECRETS_DIR: variable -> normalised path."""
    files: dict[str, str] = {}
    for variable, value in sorted(service.file_env.items()):
        path = posixpath.normpath(value) if value.startswith("/") else ""
        if path.startswith(SECRETS_DIR + "/"):
            files[variable] = path
    return files


def _mounted_at(service: ServiceFacts, path: str) -> SecretRef | None:
    return next((ref for ref in service.secrets if ref.target and ref.path == path), None)


def _same_secret(a: SecretRef, b: SecretRef) -> bool:
    return a.id == b.id if a.id and b.id else a.name == b.name


def _password_pair(wordpress: ServiceFacts, mysql: ServiceFacts | None) -> tuple[str | None, str]:
    """(problem, note) for the WordPress DB password file against MySQL's user password file."""
    wp_path = _secret_files(wordpress).get(WORDPRESS_PASSWORD_VAR)
    if wp_path is None:
        value = wordpress.file_env.get(WORDPRESS_PASSWORD_VAR)
        # Only a path is shown: a value that isn't one might be a password put there by mistake.
        if value is None:
            return f"{WORDPRESS_PASSWORD_VAR} is not set", ""
        shown = f"={value}" if value.startswith("/") else " (not a path)"
        return f"{WORDPRESS_PASSWORD_VAR}{shown} is not a file under {SECRETS_DIR}/", ""
    wp_ref = _mounted_at(wordpress, wp_path)
    if wp_ref is None:
        return None, ""  # reported as an unmounted file already
    theirs = f"mysql's {MYSQL_PASSWORD_VAR}"
    if mysql is None:
        return f"{WORDPRESS_PASSWORD_VAR}: cannot compare with {theirs} secret, the mysql service is missing", ""
    my_path = _secret_files(mysql).get(MYSQL_PASSWORD_VAR)
    my_ref = _mounted_at(mysql, my_path) if my_path else None
    if my_ref is None:
        why = f"{my_path} has no secret mounted" if my_path else f"it is not set to a file under {SECRETS_DIR}/"
        return f"{WORDPRESS_PASSWORD_VAR}: cannot compare with {theirs} secret, {why}", ""
    if not _same_secret(wp_ref, my_ref):
        return (
            f"{WORDPRESS_PASSWORD_VAR}={wp_path} is secret {wp_ref.name}, "
            f"but {theirs}={my_path} is secret {my_ref.name}: WordPress would log in with another password",
            "",
        )
    return None, f"same secret as {theirs}"


def check_secrets(role: str, service: ServiceFacts, expected: Expected, observed: Observed) -> Verdict:
    """Each expected secret is referenced by the spec with a target file, exists, and is in the
    spec of every running task (a task from before an update would lack a new secret). Every
    `*_FILE` variable pointing into /run/secrets has a secret mounted at exactly that path, and
    WordPress's DB password file is the same secret as MySQL's user password file."""
    facts = observed.facts
    running = running_tasks(service, facts.nodes_by_id())
    refs = {ref.name: ref for ref in service.secrets}
    problems: list[str] = []
    for name in expected.deployed.secrets(role):
        ref = refs.get(name)
        if ref is None:
            problems.append(f"{name}: not attached to the service")
            continue
        if not ref.target:
            problems.append(f"{name}: attached without a target file")
            continue
        if name not in facts.secret_names:
            problems.append(f"{name}: no such secret on the swarm")
        lacking = [t for t in running if name not in t.secret_names]
        if lacking:
            problems.append(f"{name}: missing from {len(lacking)} of {len(running)} running task(s)")
    readers: dict[str, list[str]] = {}  # secret file path -> variables reading it
    for variable, path in _secret_files(service).items():
        if _mounted_at(service, path) is None:
            mounted = ", ".join(sorted(ref.path for ref in service.secrets if ref.target)) or "none"
            problems.append(f"{variable}={path}: no secret is mounted at that path (secret files: {mounted})")
        readers.setdefault(path, []).append(variable)
    note = ""
    if role == "wordpress":
        problem, note = _password_pair(service, facts.service(expected.deployed.service("mysql")))
        problems += [problem] if problem else []
    if problems:
        return "FAIL", "; ".join(problems)
    mounted_text: list[str] = []
    for ref in service.secrets:
        extra = readers.get(ref.path, [])
        if note and WORDPRESS_PASSWORD_VAR in extra:
            extra = [*extra, note]
        where = ref.path if ref.target else "no file"
        mounted_text.append(f"{ref.name} -> {where}" + (f" ({', '.join(extra)})" if extra else ""))
    return "PASS", "; ".join(mounted_text) if mounted_text else "no secrets expected"
