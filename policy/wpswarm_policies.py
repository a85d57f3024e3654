"""Guardrails for the WordPress swarm stacks, as CrossGuard policies and the plain checks they run.

Every check reads a resource's input properties the way the policy server hands them over: camelCase
keys, numbers as floats, and (under `pulumi preview`) values another resource computes still unknown.
Reading an unknown value through pulumi_policy's proxy raises and turns the whole policy into a
"can't run during preview" note, so `plain()` copies the props first and marks unknowns as UNKNOWN;
a check skips what it can't know yet. `pulumi up` runs the same checks again on resolved inputs before
each resource is created, so nothing skipped in preview goes unchecked.

No PolicyPack here: constructing one starts the analyzer server (see __main__.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias, cast

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

SERVICE: Final = "docker:index/service:Service"
NETWORK: Final = "docker:index/network:Network"

# Labels the components put on every service (components/swarm.py).
ROLE_LABEL: Final = "wordpress-swarm.role"
# A service may go without a health check only if it is the logging daemon and this label says why.
HEALTHCHECK_EXEMPT_LABEL: Final = "wordpress-swarm.healthcheck-exempt"
LOGGING_ROLE: Final = "logging"

DATABASE_ROLES: Final = frozenset({"mysql", "mariadb", "postgres", "postgresql", "database", "db"})
DATABASE_IMAGES: Final = frozenset(
    {"mysql", "mysql-server", "mariadb", "postgres", "postgresql", "postgis", "percona", "percona-server"}
)
WEB_ROLES: Final = frozenset({"wordpress", "web"})
WEB_IMAGES: Final = frozenset({"wordpress", "nginx", "httpd", "apache", "caddy"})

# The socket, and the host directories that contain it (a bind of /var/run hands it over too).
DOCKER_SOCKET_PATHS: Final = frozenset({"/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/var", "/"})

_UNKNOWN_SENTINELS: Final = frozenset(
    {
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    }
)


class Unknown:
    """A value that another resource computes: known only once `pulumi up` has created it."""

    def __repr__(self) -> str:
        return "<unknown during preview>"


UNKNOWN: Final = Unknown()

# What plain() returns: JSON-like values, UNKNOWN where preview can't know them.
Plain: TypeAlias = str | float | int | bool | Unknown | list["Plain"] | dict[str, "Plain"] | None
Props: TypeAlias = dict[str, Plain]


def plain(value: object) -> Plain:
    """A copy of a property value with every unknown replaced by UNKNOWN, read without tripping the
    policy server's unknown-checking proxies (which raise on access, not on iteration)."""
    if isinstance(value, Secret):
        return plain(cast(object, value.value))
    if isinstance(value, str):
        return UNKNOWN if value in _UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        mapping = cast(Mapping[object, object], value)
        out: dict[str, Plain] = {}
        for key in mapping:
            try:
                out[str(key)] = plain(mapping[key])
            except UnknownValueError:
                out[str(key)] = UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        sequence = cast(Sequence[object], value)
        items: list[Plain] = []
        for index in range(len(sequence)):
            try:
                items.append(plain(sequence[index]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def plain_props(props: Mapping[str, object]) -> Props:
    copied = plain(props)
    return copied if isinstance(copied, dict) else {}


def dig(value: Plain, *path: str) -> Plain:
    """value[path[0]][path[1]]…; None when a key is missing, UNKNOWN when a step is unknown."""
    for key in path:
        if isinstance(value, Unknown):
            return UNKNOWN
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def as_list(value: Plain) -> list[Plain]:
    return value if isinstance(value, list) else []


def as_dict(value: Plain) -> dict[str, Plain]:
    return value if isinstance(value, dict) else {}


# --- A service spec, read the way swarm reads it ----------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    props: Props

    @property
    def container(self) -> Plain:
        return dig(self.props, "taskSpec", "containerSpec")

    @property
    def labels(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for entry in as_list(self.props.get("labels")):
            label, value = dig(entry, "label"), dig(entry, "value")
            if isinstance(label, str):
                found[label] = value if isinstance(value, str) else ""
        return found

    @property
    def role(self) -> str | None:
        return self.labels.get(ROLE_LABEL)

    @property
    def image(self) -> Plain:
        return dig(self.container, "image")

    @property
    def image_name(self) -> str | None:
        """Last path component of the repository: 'bitnami/mysql:8.4@sha256:…' -> 'mysql'."""
        image = self.image
        return parse_image(image).name if isinstance(image, str) else None

    @property
    def is_global(self) -> bool:
        return dig(self.props, "mode", "global") is True

    @property
    def published_ports(self) -> list[Plain]:
        return as_list(dig(self.props, "endpointSpec", "ports"))

    @property
    def is_database(self) -> bool:
        return self.role in DATABASE_ROLES or self.image_name in DATABASE_IMAGES

    @property
    def is_logging_daemon(self) -> bool:
        return self.role == LOGGING_ROLE

    @property
    def is_web(self) -> bool:
        if self.is_database:
            return False
        return bool(self.published_ports) or self.role in WEB_ROLES or self.image_name in WEB_IMAGES


@dataclass(frozen=True)
class ImageRef:
    repository: str
    name: str
    tag: str | None
    digest: str | None


def parse_image(image: str) -> ImageRef:
    """Splits registry:port/path/name:tag@digest; a ':' before the last '/' is a registry port."""
    rest, _, digest = image.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = rest[colon + 1 :] if colon > slash else None
    repository = rest[:colon] if colon > slash else rest
    return ImageRef(repository=repository, name=repository.rsplit("/", 1)[-1], tag=tag or None, digest=digest or None)


# --- Checks: each reports through `report` and returns nothing ---------------------------------------

Report = Callable[[str], None]

_SECRET_NAME_RE: Final = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY", re.IGNORECASE)
_ENV_CONSTRAINT_RE: Final = re.compile(r"^node\.labels\.env\s*==\s*\S+$")


def check_env_secrets(spec: ServiceSpec, report: Report) -> None:
    env = dig(spec.container, "env")
    for name in sorted(as_dict(env)):
        if _SECRET_NAME_RE.search(name) and not name.upper().endswith("_FILE"):
            report(
                f"environment variable {name} looks like a secret, and a task's environment is readable by "
                f"anyone who can inspect the service. Create a docker.Secret, mount it into the task "
                f"(components/swarm.SecretMount) and set {name}_FILE to its path under /run/secrets instead."
            )


# A key=value or --flag=value whose key names a credential; *_FILE/*-file keys name a path, not a secret.
_SECRET_ASSIGNMENT_RE: Final = re.compile(
    r"^-{0,2}(?P<key>[\w.-]*(?:password|passwd|secret|token|api[_-]?key|private[_-]?key)[\w.-]*)[=:](?P<value>.+)$",
    re.IGNORECASE,
)
_SECRET_FLAG_RE: Final = re.compile(r"^--?[\w.-]*(?:password|passwd|secret|token|api[_-]?key)$", re.IGNORECASE)
_CREDENTIAL_URL_RE: Final = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
_TOKEN_SHAPES: Final = (
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("an AWS access key id", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b")),
    ("a Pulumi access token", re.compile(r"\bpul-[0-9a-f]{40}\b")),
)
_MYSQL_CLIENTS: Final = frozenset({"mysql", "mysqladmin", "mysqldump", "mariadb", "mariadb-admin", "mariadb-dump"})


def _is_reference(value: str) -> bool:
    """A value that points at a secret instead of holding it: a variable or a mounted file."""
    return value.startswith(("$", "/run/secrets/", "@/run/secrets/")) or not value.strip()


def secret_literal(words: Sequence[str]) -> str | None:
    """Why these command words hold a secret literally, or None. Shell strings (`sh -c "…"`) are
    split on whitespace, so a password inside one is found too."""
    for word in words:
        for what, shape in _TOKEN_SHAPES:
            if shape.search(word):
                return what
        if url := _CREDENTIAL_URL_RE.search(word):
            return f"a URL with a password in its user info ({url[0].split('://')[0]}://…)"
    tokens = [token.strip("'\"") for word in words for token in word.split()]
    for index, token in enumerate(tokens):
        assignment = _SECRET_ASSIGNMENT_RE.match(token)
        if (
            assignment
            and not re.search(r"[_-](file|path)$", assignment["key"], re.IGNORECASE)
            and not _is_reference(assignment["value"])
        ):
            return f"{assignment['key']} given a literal value"
        following = tokens[index + 1] if index + 1 < len(tokens) else "-"
        if _SECRET_FLAG_RE.match(token) and not following.startswith("-") and not _is_reference(following):
            return f"{token} followed by a literal value"
        after_mysql_client = any(t.rsplit("/", 1)[-1] in _MYSQL_CLIENTS for t in tokens[:index])
        if after_mysql_client and token.startswith("-p") and not _is_reference(token[2:]):
            return "a MySQL client's -p<password>"
    return None


def check_secret_literals(spec: ServiceSpec, report: Report) -> None:
    container = spec.container
    places: list[tuple[str, Plain]] = [
        ("args", dig(container, "args")),
        ("commands", dig(container, "commands")),
        ("healthcheck", dig(container, "healthcheck", "tests")),
    ]
    # Env values too (a DSN with a password in it), but not their names: service-env-no-secrets owns those.
    for name, value in as_dict(dig(container, "env")).items():
        places.append((f"env {name}", [value] if isinstance(value, str) else None))
    for where, value in places:
        words = [word for word in as_list(value) if isinstance(word, str)]
        reason = secret_literal(words)
        if reason:
            report(
                f"{where} holds a secret-looking literal ({reason}). Secrets in a service spec are stored in the "
                f"swarm's service definition and shown by `docker service inspect`: mount a docker.Secret and make "
                f"the command read the file under /run/secrets (or an *_FILE variable), or read it from an env var "
                f"that the image fills from a secret."
            )


def check_placement(spec: ServiceSpec, report: Report) -> None:
    constraints = dig(spec.props, "taskSpec", "placement", "constraints")
    if isinstance(constraints, Unknown) or any(isinstance(c, Unknown) for c in as_list(constraints)):
        return
    known = [c for c in as_list(constraints) if isinstance(c, str)]
    if not any(_ENV_CONSTRAINT_RE.match(c.strip()) for c in known):
        report(
            f"no node.labels.env==<label> placement constraint (constraints: {known or 'none'}), so the tasks may land "
            f"on another environment's nodes. Pass the stack's settings.placement_constraint to "
            f"components/swarm.placement() in the task spec."
        )


def check_health(spec: ServiceSpec, report: Report) -> None:
    exemption = spec.labels.get(HEALTHCHECK_EXEMPT_LABEL)
    if exemption is not None and not spec.is_logging_daemon:
        report(
            f"label {HEALTHCHECK_EXEMPT_LABEL} is only honoured on the logging daemon "
            f"({ROLE_LABEL}={LOGGING_ROLE}); remove it and add a health check."
        )
    tests = dig(spec.container, "healthcheck", "tests")
    if isinstance(tests, Unknown):
        return
    words = as_list(tests)
    if words and words[0] != "NONE":
        return
    if spec.is_logging_daemon and exemption is not None and exemption.strip():
        return  # exempt, with the reason on record in the service's labels
    if spec.is_logging_daemon and exemption is not None:
        report(f"label {HEALTHCHECK_EXEMPT_LABEL} is empty: its value must say why the daemon has no health check.")
        return
    hint = (
        f" The logging daemon may instead carry the label {HEALTHCHECK_EXEMPT_LABEL}=<why it can't be probed>."
        if spec.is_logging_daemon
        else ""
    )
    report(
        "no health check: swarm can't tell a hung task from a working one, and updates can't roll back on "
        "failure. Add a healthcheck (components/swarm.HealthCheck) that probes the service from inside its "
        "container." + hint
    )


def check_image_pinned(spec: ServiceSpec, report: Report) -> None:
    image = spec.image
    if isinstance(image, Unknown):
        return
    if not isinstance(image, str) or not image:
        report("no image. Set a pinned image reference, repository:tag (not latest) or repository@sha256:<digest>.")
        return
    ref = parse_image(image)
    if ref.digest:
        return
    if ref.tag is None or ref.tag == "latest":
        why = "tagged latest" if ref.tag else "untagged, which means latest"
        report(
            f"image {image!r} is {why}: that tag moves, so a rescheduled task or a rollback can pull a different "
            f"image than the one reviewed. Use a version tag ({ref.repository}:<version>) or a digest "
            f"({ref.repository}@sha256:…) in the stack config."
        )


def check_database_ports(spec: ServiceSpec, report: Report) -> None:
    if not spec.is_database:
        return
    ports = spec.published_ports
    if ports:
        targets = sorted({str(dig(p, "targetPort")).removesuffix(".0") for p in ports})
        report(
            f"database service (image {spec.image_name}, role {spec.role}) publishes port(s) {', '.join(targets)}, "
            f"reachable by anything that reaches a swarm node (a port without publishedPort still gets one assigned). "
            f"Remove endpoint_spec ports; clients join its private overlay network and dial its alias."
        )


def check_docker_socket(spec: ServiceSpec, report: Report) -> None:
    for mount in as_list(dig(spec.container, "mounts")):
        source = dig(mount, "source")
        if not isinstance(source, str) or dig(mount, "type") not in ("bind", None):
            continue
        normalized = source.rstrip("/") or "/"
        if normalized not in DOCKER_SOCKET_PATHS and not normalized.endswith("/docker.sock"):
            continue
        if not spec.is_logging_daemon:
            report(
                f"binds {source} (the Docker socket, i.e. root on the node) into a service that is not the logging "
                f"daemon ({ROLE_LABEL}={LOGGING_ROLE}). Remove the mount; only the logging daemon may read the socket."
            )
        elif dig(mount, "readOnly") is not True:
            report(
                f"the logging daemon binds {source} writable. Set read_only=True on the mount: logspout only "
                f"reads container events and logs."
            )


def check_memory_limit(spec: ServiceSpec, report: Report) -> None:
    memory = dig(spec.props, "taskSpec", "resources", "limits", "memoryBytes")
    if isinstance(memory, Unknown):
        return
    if not isinstance(memory, int | float) or isinstance(memory, bool) or memory <= 0:
        report(
            "no memory limit: one leaking task can push a node into the kernel's OOM killer and take the other "
            "services with it. Set task_spec.resources (components/swarm.resources) from the stack's memoryMb."
        )


def check_restart_policy(spec: ServiceSpec, report: Report) -> None:
    condition = dig(spec.props, "taskSpec", "restartPolicy", "condition")
    if isinstance(condition, Unknown):
        return
    if condition not in ("any", "on-failure"):
        report(
            f"restart policy condition is {condition!r}: a task that exits stays down. Set "
            f"task_spec.restart_policy (components/swarm.restart_policy) with condition 'any' or 'on-failure'."
        )


def check_web_rollback(spec: ServiceSpec, report: Report) -> None:
    if spec.is_global or not spec.is_web:
        return
    action = dig(spec.props, "updateConfig", "failureAction")
    if isinstance(action, Unknown) or action == "rollback":
        return
    report(
        f"replicated web service updates with failure_action {action!r}: a release whose tasks fail their health "
        f"check stays half-rolled-out. Set update_config=ServiceUpdateConfigArgs(failure_action='rollback', "
        f"monitor=…) so swarm rolls back to the previous spec by itself."
    )


ServiceCheck = Callable[[ServiceSpec, Report], None]


def service_policy(name: str, description: str, check: ServiceCheck) -> ResourceValidationPolicy:
    """A mandatory policy that runs `check` on every docker.Service."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type != SERVICE:
            return
        check(ServiceSpec(plain_props(args.props)), lambda message: report_violation(message, None))

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


# --- Stack-wide: networks that carry secrets --------------------------------------------------------


def _network_refs(spec: ServiceSpec) -> list[Plain]:
    advanced = [dig(n, "id") for n in as_list(dig(spec.props, "taskSpec", "networksAdvanceds"))]
    return advanced + as_list(dig(spec.props, "taskSpec", "networks"))


def _identities(network: PolicyResource) -> tuple[Plain, Plain]:
    return plain(network.props.get("id")), plain(network.props.get("name"))


def attached_networks(
    service: PolicyResource, networks: Sequence[PolicyResource]
) -> tuple[list[PolicyResource], list[str]]:
    """The stack's network resources a service attaches, and the references that match none of them.

    A reference is the network's id (or name). After `up` the network's props carry its id; under
    preview both the reference and the id are unknown, so a reference that matches nothing is resolved
    through the engine's dependency graph: the networks the service's taskSpec (else the service)
    depends on.
    """
    spec = ServiceSpec(plain_props(service.props))
    found: list[PolicyResource] = []
    unresolved: list[Plain] = []
    for ref in _network_refs(spec):
        match = [n for n in networks if isinstance(ref, str) and ref in _identities(n)]
        found.extend(n for n in match if n not in found)
        if not match:
            unresolved.append(ref)
    if not unresolved:
        return found, []
    candidates = service.property_dependencies.get("taskSpec") or service.dependencies
    by_graph = [d for d in candidates if d.resource_type == NETWORK and d not in found]
    found.extend(by_graph)
    if by_graph:
        return found, []
    return found, [ref if isinstance(ref, str) else "<unknown id>" for ref in unresolved]


def network_encrypted(network: PolicyResource) -> bool | None:
    """Whether overlay traffic is IPsec-encrypted; None while preview can't know the options."""
    options = plain(network.props.get("options"))
    if isinstance(options, Unknown):
        return None
    value = as_dict(options).get("encrypted")
    if isinstance(value, Unknown):
        return None
    # The daemon encrypts when the option is present at all; an explicit "false" is read as off here.
    return value is not None and str(value).strip().lower() not in ("false", "0", "no")


def check_secret_networks(resources: Sequence[PolicyResource], report_violation: ReportViolation) -> None:
    networks = [r for r in resources if r.resource_type == NETWORK]
    flagged: set[str] = set()
    for service in resources:
        if service.resource_type != SERVICE:
            continue
        spec = ServiceSpec(plain_props(service.props))
        if not as_list(dig(spec.container, "secrets")):
            continue
        attached, unresolved = attached_networks(service, networks)
        for network in attached:
            if network_encrypted(network) is False and network.urn not in flagged:
                flagged.add(network.urn)
                report_violation(
                    f"overlay network {network.name} carries service {service.name}, which holds swarm secrets, "
                    f"unencrypted: whatever the service sends or receives with them (database passwords, "
                    f"sessions) crosses nodes in clear text. Create it with options={{'encrypted': 'true'}}.",
                    network.urn,
                )
        for ref in unresolved:
            report_violation(
                f"service {service.name} holds swarm secrets and attaches network {ref}, which this stack does "
                f"not declare, so its encryption can't be checked. Declare the network here with "
                f"options={{'encrypted': 'true'}}, or make sure the existing one is encrypted.",
                service.urn,
            )


def _validate_secret_networks(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    check_secret_networks(args.resources, report_violation)


# --- The pack ---------------------------------------------------------------------------------------

SERVICE_CHECKS: Final[dict[str, tuple[str, ServiceCheck]]] = {
    "service-env-no-secrets": (
        "Service environment holds no password, secret or token; pass a *_FILE path to a mounted secret.",
        check_env_secrets,
    ),
    "service-no-secret-literals": (
        "Service args, commands and health checks hold no secret-looking literal.",
        check_secret_literals,
    ),
    "service-placement-env": (
        "Every service is constrained to its environment's nodes (node.labels.env==<label>).",
        check_placement,
    ),
    "service-health-check": (
        "Every service has a health check (the logging daemon may be exempted by a label stating why).",
        check_health,
    ),
    "service-image-pinned": (
        "Service images are pinned to a tag other than latest, or to a digest.",
        check_image_pinned,
    ),
    "database-no-published-ports": (
        "Database services (mysql/mariadb/postgres image, or a database role label) publish no port.",
        check_database_ports,
    ),
    "docker-socket-logging-only": (
        "The Docker socket is bound only into the logging daemon, and only read-only.",
        check_docker_socket,
    ),
    "service-memory-limit": (
        "Every service has a memory limit.",
        check_memory_limit,
    ),
    "service-restart-policy": (
        "Every service has a restart policy that restarts failed tasks.",
        check_restart_policy,
    ),
    "web-update-rollback": (
        "Replicated web services roll back a failed update (update_config.failure_action = rollback).",
        check_web_rollback,
    ),
}

SECRET_NETWORKS_POLICY: Final = "secret-networks-encrypted"

POLICIES: Final[list[Policy]] = [
    *(service_policy(name, description, check) for name, (description, check) in SERVICE_CHECKS.items()),
    StackValidationPolicy(
        name=SECRET_NETWORKS_POLICY,
        description="Overlay networks attached by services that hold swarm secrets are encrypted.",
        validate=_validate_secret_networks,
        enforcement_level=EnforcementLevel.ADVISORY,
    ),
]

MANDATORY: Final = frozenset(SERVICE_CHECKS)
