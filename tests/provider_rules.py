# pyright: strict
"""Input rules the real pulumi-docker 5.1.0 provider enforces, for use under mocks.

`pulumi.runtime.set_mocks` performs none of the provider's validation, so a mocked
test run accepts inputs that `pulumi preview` would refuse.  `provider_violations`
re-implements the Terraform schema rules of kreuzwerker/terraform-provider-docker
(the provider pulumi-docker bridges) for the resources this project uses, reading
the inputs exactly as `Mocks.new_resource(args)` sees them in `args.inputs`
(camelCase names, MaxItems=1 blocks flattened to objects, numbers as floats).

Sources (kreuzwerker/terraform-provider-docker unless stated):
  internal/provider/resource_docker_service.go  schema: Required, ConflictsWith,
      ValidateDiagFunc on durations / enums / ints / ratio
  internal/provider/validators.go               validateDurationGeq0 (time.ParseDuration,
      then `dur < 0`), validateStringMatchesPattern (regexp MatchString = search),
      validateIntegerGeqThan, validateStringIsFloatRatio, validateStringIsBase64Encoded
  internal/provider/resource_docker_secret.go   data: Required, base64.StdEncoding
  internal/provider/label.go                    labels: set of {label, value}, both Required
  internal/provider/provider.go / config.go     host, ssh_opts, daemon ping at configure

Rules tagged "[daemon]" are not checked by the provider at preview; the Docker
daemon/swarmkit refuses them at `pulumi up` (or the task never starts).  Pass
`include_daemon=False` to get only what preview itself enforces.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

__all__ = ["go_parse_duration", "provider_violations"]

SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
PROVIDER = "pulumi:providers:docker"

# Sentinels of the Pulumi RPC wire format.
_SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


class _Missing:
    """Marker for an absent property."""


_MISSING = _Missing()


# --------------------------------------------------------------------------- Go semantics

_UNIT_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # U+00B5 micro sign
    "\u03bcs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX_U63 = 1 << 63


def go_parse_duration(text: str) -> int:
    """Port of Go's time.ParseDuration; returns nanoseconds or raises ValueError."""
    orig = text
    s = text
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":  # Go special case: a bare "0" needs no unit (also "-0", "+0")
        return 0
    if s == "":
        raise ValueError(f"time: invalid duration {orig!r}")
    total = 0
    while s:
        if not (s[0] == "." or (s[0].isascii() and s[0].isdigit())):
            raise ValueError(f"time: invalid duration {orig!r}")
        i = 0
        while i < len(s) and s[i].isascii() and s[i].isdigit():
            i += 1
        pre = i > 0
        whole = int(s[:i]) if pre else 0
        if whole >= _MAX_U63:  # leadingInt overflow
            raise ValueError(f"time: invalid duration {orig!r}")
        s = s[i:]
        frac, scale, post = 0, 1.0, False
        if s.startswith("."):
            s = s[1:]
            j = 0
            overflow = False
            while j < len(s) and s[j].isascii() and s[j].isdigit():
                if not overflow:
                    if frac > (_MAX_U63 - 1) // 10:
                        overflow = True
                    else:
                        frac = frac * 10 + int(s[j])
                        scale *= 10
                j += 1
            post = j > 0
            s = s[j:]
        if not pre and not post:
            raise ValueError(f"time: invalid duration {orig!r}")
        k = 0
        while k < len(s) and s[k] != "." and not (s[k].isascii() and s[k].isdigit()):
            k += 1
        if k == 0:
            raise ValueError(f"time: missing unit in duration {orig!r}")
        unit_text, s = s[:k], s[k:]
        unit = _UNIT_NS.get(unit_text)
        if unit is None:
            raise ValueError(f"time: unknown unit {unit_text!r} in duration {orig!r}")
        if whole > _MAX_U63 // unit:
            raise ValueError(f"time: invalid duration {orig!r}")
        value = whole * unit
        if frac > 0:
            value += int(float(frac) * (float(unit) / scale))
            if value > _MAX_U63:
                raise ValueError(f"time: invalid duration {orig!r}")
        total += value
        if total > _MAX_U63:
            raise ValueError(f"time: invalid duration {orig!r}")
    if neg:
        return -total
    if total > _MAX_U63 - 1:
        raise ValueError(f"time: invalid duration {orig!r}")
    return total


# strconv.ParseFloat, decimal forms plus inf/nan (hex floats are not accepted here).
_GO_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE)
_B64_STD = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _go_std_base64_ok(text: str) -> bool:
    """base64.StdEncoding.DecodeString: standard alphabet, '=' padding required.

    Go's decoder skips '\\r' and '\\n' anywhere; nothing else is tolerated.
    """
    s = text.replace("\r", "").replace("\n", "")
    # Whole quanta of 4; '=' (at most two) only at the very end.
    return len(s) % 4 == 0 and _B64_STD.fullmatch(s) is not None


# --------------------------------------------------------------------------- value access


def _unwrap(value: Any) -> Any:
    """Strip Pulumi secret wrappers, recursively."""
    if isinstance(value, Mapping):
        m = cast(Mapping[str, Any], value)
        if m.get(_SECRET_SIG_KEY) == _SECRET_SIG:
            return _unwrap(m.get("value"))
        return {k: _unwrap(v) for k, v in m.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in cast(list[Any], value)]
    return value


def _is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value == _UNKNOWN


def _walk(node: Any, tokens: Sequence[str], prefix: str) -> Iterator[tuple[str, Any]]:
    """Yield (path, value) for every match; a token ending in "[*]" fans out over a list.

    Absent leaves yield _MISSING so callers can test required-ness; absent or
    unknown intermediate nodes end the walk (nothing to check below them).
    """
    if not tokens:
        yield prefix, node
        return
    token, rest = tokens[0], tokens[1:]
    fan_out = token.endswith("[*]")
    name = token[:-3] if fan_out else token
    if not isinstance(node, Mapping):
        return
    mapping = cast(Mapping[str, Any], node)
    path = f"{prefix}.{name}" if prefix else name
    if name not in mapping or mapping[name] is None:
        if not rest and not fan_out:
            yield path, _MISSING
        return
    child = mapping[name]
    if _is_unknown(child):
        return
    if fan_out:
        if isinstance(child, list):
            for i, item in enumerate(cast(list[Any], child)):
                if not _is_unknown(item):
                    yield from _walk(item, rest, f"{path}[{i}]")
        return
    yield from _walk(child, rest, path)


def _values(inputs: Any, dotted: str) -> Iterator[tuple[str, Any]]:
    """Present, known values at `dotted`."""
    for path, value in _walk(inputs, dotted.split(".") if dotted else [], ""):
        if not isinstance(value, _Missing) and not _is_unknown(value):
            yield path, value


def _present(inputs: Any, dotted: str) -> bool:
    return any(True for _ in _values(inputs, dotted))


# --------------------------------------------------------------------------- checks


def _check_duration_geq0(value: Any) -> str | None:
    # validators.go validateDurationGeq0: time.ParseDuration, then `dur < 0`.
    if not isinstance(value, str):
        return f"{value!r} is not a string duration"
    try:
        nanos = go_parse_duration(value)
    except ValueError:
        return f"{value!r} is not a Go duration (e.g. '10s', '1m30s', '500ms')"
    if nanos < 0:
        return f"{value!r} duration must not be negative"
    return None


def _is_integral(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and float(value).is_integer()


def _check_int_geq0(value: Any) -> str | None:
    if not _is_integral(value):
        return f"{value!r} is not an integer"
    if value < 0:
        return f"{int(value)} must be >= 0"
    return None


def _check_float_ratio(value: Any) -> str | None:
    # validators.go validateStringIsFloatRatio: ParseFloat error and range are separate
    # checks; a failed parse yields 0.0, and NaN passes the range test (faithful).
    if not isinstance(value, str):
        return f"{value!r} is not a string (the provider takes a string such as '0.1')"
    if _GO_FLOAT.fullmatch(value) is None:
        return f"{value!r} is not a float"
    ratio = float(value)
    if ratio < 0.0 or ratio > 1.0:
        return f"{value!r} has to be between 0.0 and 1.0"
    return None


def _pattern_check(pattern: str) -> Callable[[Any], str | None]:
    compiled = re.compile(pattern)

    def check(value: Any) -> str | None:
        # Go regexp MatchString is a search: unanchored patterns match substrings.
        if not isinstance(value, str) or compiled.search(value) is None:
            return f"{value!r} doesn't match the pattern {pattern!r}"
        return None

    return check


def _port_check(low: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not _is_integral(value):
            return f"{value!r} is not an integer port"
        if not low <= value <= 65535:
            return f"[daemon] port {int(value)} outside {low}..65535"
        return None

    return check


# --------------------------------------------------------------------------- rule tables


@dataclass(frozen=True)
class _Spec:
    required: Sequence[tuple[str, str]] = ()  # (parent path or "", field)
    checks: Sequence[tuple[str, Callable[[Any], str | None]]] = ()
    conflicts: Sequence[tuple[str, str]] = ()  # both present -> violation
    custom: Sequence[Callable[[Mapping[str, Any]], list[str]]] = ()
    daemon: Sequence[Callable[[Mapping[str, Any]], list[str]]] = ()


_CS = "taskSpec.containerSpec"
_DURATION_PATHS = (
    f"{_CS}.healthcheck.interval",
    f"{_CS}.healthcheck.timeout",
    f"{_CS}.healthcheck.startPeriod",
    f"{_CS}.stopGracePeriod",
    "taskSpec.restartPolicy.delay",
    "taskSpec.restartPolicy.window",
    "updateConfig.delay",
    "updateConfig.monitor",
    "rollbackConfig.delay",
    "rollbackConfig.monitor",
    "convergeConfig.delay",
    "convergeConfig.timeout",
)
_INT_GEQ0_PATHS = (
    f"{_CS}.healthcheck.retries",
    f"{_CS}.secrets[*].fileMode",
    f"{_CS}.configs[*].fileMode",
    "taskSpec.restartPolicy.maxAttempts",
    "taskSpec.placement.maxReplicas",
    "taskSpec.forceUpdate",
    "mode.replicated.replicas",
    "updateConfig.parallelism",
    "rollbackConfig.parallelism",
)
_RATIO_PATHS = ("updateConfig.maxFailureRatio", "rollbackConfig.maxFailureRatio")
_PATTERNS = (
    (f"{_CS}.mounts[*].type", r"^(bind|volume|tmpfs)$"),
    (f"{_CS}.mounts[*].bindOptions.propagation", r"^(private|rprivate|shared|rshared|slave|rslave)$"),
    (f"{_CS}.isolation", r"^(default|process|hyperv)$"),
    ("taskSpec.restartPolicy.condition", r"^(none|on-failure|any)$"),
    ("taskSpec.runtime", r"^(container|plugin)$"),
    ("updateConfig.failureAction", r"^(pause|continue|rollback)$"),
    ("updateConfig.order", r"^(stop-first|start-first)$"),
    # resource_docker_service.go: the rollback_config patterns are unanchored in the
    # provider, and "rollback" is not a valid rollback failure action.
    ("rollbackConfig.failureAction", r"(pause|continue)"),
    ("rollbackConfig.order", r"(stop-first|start-first)"),
    ("endpointSpec.mode", r"^(vip|dnsrr)$"),
    ("endpointSpec.ports[*].protocol", r"^(tcp|udp|sctp)$"),
    ("endpointSpec.ports[*].publishMode", r"^(host|ingress)$"),
)
_LABEL_LISTS = (
    "labels[*]",
    f"{_CS}.labels[*]",
    f"{_CS}.mounts[*].volumeOptions.labels[*]",
)
_SERVICE_REQUIRED = (
    ("", "taskSpec"),
    ("taskSpec", "containerSpec"),
    (_CS, "image"),
    (f"{_CS}.mounts[*]", "target"),
    (f"{_CS}.mounts[*]", "type"),
    (f"{_CS}.secrets[*]", "secretId"),
    (f"{_CS}.secrets[*]", "fileName"),
    (f"{_CS}.configs[*]", "configId"),
    (f"{_CS}.configs[*]", "fileName"),
    (f"{_CS}.hosts[*]", "host"),
    (f"{_CS}.hosts[*]", "ip"),
    (f"{_CS}.healthcheck", "tests"),
    (f"{_CS}.dnsConfig", "nameservers"),
    ("taskSpec.logDriver", "name"),
    ("taskSpec.placement.platforms[*]", "architecture"),
    ("taskSpec.placement.platforms[*]", "os"),
    ("endpointSpec.ports[*]", "targetPort"),
    ("auth", "serverAddress"),
    *((parent, key) for parent in _LABEL_LISTS for key in ("label", "value")),
)
_SERVICE_CONFLICTS = (
    # resource_docker_service.go: mode.replicated ConflictsWith mode.0.global and
    # mode.global ConflictsWith (mode.0.replicated, converge_config).  SDKv2 counts an
    # explicitly set `global: false` as set, so only omit `global` when not global.
    ("mode.replicated", "mode.global"),
    ("mode.global", "convergeConfig"),
)


def _networks_advanced(inputs: Mapping[str, Any]) -> list[str]:
    # Schema doc: networks_advanced.name is deprecated and "Conflicts with `id`";
    # createServiceNetworks needs one of them to name the network.
    out: list[str] = []
    for path, item in _values(inputs, "taskSpec.networksAdvanceds[*]"):
        if not isinstance(item, Mapping):
            continue
        entry = cast(Mapping[str, Any], item)
        has_id = entry.get("id") is not None
        has_name = entry.get("name") is not None
        if has_id and has_name:
            out.append(f"{path}: 'id' conflicts with 'name' (set only 'id')")
        elif not has_id and not has_name:
            out.append(f"{path}: one of 'id' or 'name' is required")
    return out


_DNS_LABEL = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?")
_SECRET_NAME = re.compile(r"[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?")
_HEALTH_KINDS = {"NONE", "CMD", "CMD-SHELL"}
_NANOS_PER_MS = 1_000_000


def _service_daemon(inputs: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    # swarmkit validateAnnotations: a service name is one DNS label of <= 63 chars.
    for path, name in _values(inputs, "name"):
        if not isinstance(name, str) or len(name) > 63 or _DNS_LABEL.fullmatch(name) is None:
            out.append(f"{path}: [daemon] {name!r} is not a DNS label of <= 63 chars")
    # swarmkit validateEndpointSpec: dnsrr cannot carry ingress-published ports.
    if any(mode == "dnsrr" for _, mode in _values(inputs, "endpointSpec.mode")):
        for path, port in _values(inputs, "endpointSpec.ports[*]"):
            if isinstance(port, Mapping):
                publish = cast(Mapping[str, Any], port).get("publishMode", "ingress")
                if publish == "ingress":
                    out.append(f"{path}: [daemon] port published with ingress mode can't be used with dnsrr mode")
    # Docker health checks: Test[0] selects the kind; CMD/CMD-SHELL need a command.
    for path, tests in _values(inputs, f"{_CS}.healthcheck.tests"):
        seq = cast(list[Any], tests) if isinstance(tests, list) else []
        if seq and seq[0] not in _HEALTH_KINDS:
            out.append(f"{path}: [daemon] first element must be NONE, CMD or CMD-SHELL, got {seq[0]!r}")
        elif seq and seq[0] in ("CMD", "CMD-SHELL") and len(seq) < 2:
            out.append(f"{path}: [daemon] {seq[0]} needs a command after it")
    # daemon validateHealthCheck: non-zero interval/timeout/startPeriod must be >= 1ms.
    for key in ("interval", "timeout", "startPeriod"):
        for path, text in _values(inputs, f"{_CS}.healthcheck.{key}"):
            try:
                nanos = go_parse_duration(str(text))
            except ValueError:
                continue
            if 0 < nanos < _NANOS_PER_MS:
                out.append(f"{path}: [daemon] {text!r} is below the 1ms minimum")
    # Mount targets are container paths; swarm rejects relative ones.
    for path, target in _values(inputs, f"{_CS}.mounts[*].target"):
        if not (isinstance(target, str) and target.startswith("/")):
            out.append(f"{path}: [daemon] {target!r} must be an absolute container path")
    for path, mount in _values(inputs, f"{_CS}.mounts[*]"):
        if not isinstance(mount, Mapping):
            continue
        m = cast(Mapping[str, Any], mount)
        kind = m.get("type")
        allowed = {"bind": "bindOptions", "volume": "volumeOptions", "tmpfs": "tmpfsOptions"}
        for option in allowed.values():
            if m.get(option) is not None and isinstance(kind, str) and allowed.get(kind) != option:
                out.append(f"{path}.{option}: [daemon] not allowed for mount type {kind!r}")
        if kind == "tmpfs" and m.get("source"):
            out.append(f"{path}.source: [daemon] must be empty for a tmpfs mount")
        if kind == "bind" and not str(m.get("source", "")).startswith("/"):
            out.append(f"{path}.source: [daemon] a bind mount needs an absolute host path")
    checks = (
        ("endpointSpec.ports[*].targetPort", _port_check(1)),
        ("endpointSpec.ports[*].publishedPort", _port_check(0)),
    )
    for dotted, check in checks:
        for path, value in _values(inputs, dotted):
            problem = check(value)
            if problem:
                out.append(f"{path}: {problem}")
    return out


def _secret_data(inputs: Mapping[str, Any]) -> list[str]:
    # resource_docker_secret.go: docstring says "Base64-url-safe-encoded", but both
    # validateStringIsBase64Encoded and resourceDockerSecretCreate use
    # base64.StdEncoding (alphabet +/, '=' padding required).  The value is not echoed.
    out: list[str] = []
    for path, data in _values(inputs, "data"):
        if not isinstance(data, str) or not _go_std_base64_ok(data):
            out.append(
                f"{path}: is not base64 decodeable with Go base64.StdEncoding "
                "(standard alphabet '+/', '=' padding required; URL-safe '-_' is rejected)"
            )
    return out


def _secret_daemon(inputs: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    # swarmkit validateConfigOrSecretAnnotations: <= 64 chars of [a-zA-Z0-9-_.].
    for path, name in _values(inputs, "name"):
        if not isinstance(name, str) or len(name) > 64 or _SECRET_NAME.fullmatch(name) is None:
            out.append(f"{path}: [daemon] {name!r} is not a valid secret name")
    # swarmkit caps secret payloads at 500 KiB.
    for path, data in _values(inputs, "data"):
        payload = data.replace("\r", "").replace("\n", "") if isinstance(data, str) else ""
        if _go_std_base64_ok(payload) and len(payload) * 3 // 4 > 500 * 1024:
            out.append(f"{path}: [daemon] secret data exceeds 500 KiB")
    return out


def _network_daemon(inputs: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    # libnetwork drivers/overlay: `if _, ok := optMap["encrypted"]; ok` -- the key's
    # presence enables IPsec whatever its value, and only the overlay driver reads it.
    for path, value in _values(inputs, "options.encrypted"):
        if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
            out.append(f"{path}: [daemon] the key's presence encrypts; {value!r} does not disable it")
        drivers = [d for _, d in _values(inputs, "driver")]
        if drivers != ["overlay"]:
            out.append(f"{path}: [daemon] encryption is only implemented by driver 'overlay'")
    return out


_HOST_SCHEMES = {"unix", "tcp", "ssh", "npipe", "http", "https", "fd"}


def _provider_config(inputs: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    # Provider config crosses the wire JSON-encoded when it is not a plain string.
    ssh_opts: Any = inputs.get("sshOpts")
    if isinstance(ssh_opts, str) and not _is_unknown(ssh_opts):
        try:
            ssh_opts = json.loads(ssh_opts)
        except ValueError:
            out.append(f"sshOpts: {ssh_opts!r} is not a list of strings")
            ssh_opts = None
    if ssh_opts is not None and not _is_unknown(ssh_opts):
        items = cast(list[Any], ssh_opts) if isinstance(ssh_opts, list) else None
        if items is None or not all(isinstance(x, str) for x in items):
            out.append(f"sshOpts: {ssh_opts!r} is not a list of strings")
    host = inputs.get("host")
    if isinstance(host, str) and not _is_unknown(host) and not inputs.get("context"):
        # config.go -> docker client ParseHostURL: needs "proto://addr".
        scheme, sep, _ = host.partition("://")
        if not sep or scheme not in _HOST_SCHEMES:
            out.append(
                f"host: {host!r} is not a Docker host URL such as ssh://user@host or unix:///var/run/docker.sock"
            )
        elif scheme == "ssh":
            # docker/cli cli/connhelper/ssh ParseURL.
            url = urllib.parse.urlsplit(host)
            if not url.hostname:
                out.append(f"host: {host!r}: no host specified")
            if url.password is not None:
                out.append(f"host: {host!r}: plain-text password is not supported")
            if url.path not in ("", "/") or url.query or url.fragment:
                out.append(f"host: {host!r}: extra path/query/fragment after the host")
        elif ssh_opts:
            out.append("sshOpts: only used with an ssh:// host; it has no effect here")
    return out


_SPECS: dict[str, _Spec] = {
    SERVICE: _Spec(
        required=_SERVICE_REQUIRED,
        checks=(
            *((p, _check_duration_geq0) for p in _DURATION_PATHS),
            *((p, _check_int_geq0) for p in _INT_GEQ0_PATHS),
            *((p, _check_float_ratio) for p in _RATIO_PATHS),
            *((p, _pattern_check(pattern)) for p, pattern in _PATTERNS),
        ),
        conflicts=_SERVICE_CONFLICTS,
        custom=(_networks_advanced,),
        daemon=(_service_daemon,),
    ),
    SECRET: _Spec(
        required=(("", "data"), *(("labels[*]", k) for k in ("label", "value"))),
        custom=(_secret_data,),
        daemon=(_secret_daemon,),
    ),
    NETWORK: _Spec(
        required=tuple(("labels[*]", k) for k in ("label", "value")),
        daemon=(_network_daemon,),
    ),
    VOLUME: _Spec(required=tuple(("labels[*]", k) for k in ("label", "value"))),
    PROVIDER: _Spec(custom=(_provider_config,)),
}


def provider_violations(type_token: str, inputs: Mapping[str, Any], *, include_daemon: bool = True) -> list[str]:
    """Return one message per rule the provider (or daemon) would refuse.

    `inputs` is `args.inputs` of `pulumi.runtime.Mocks.new_resource`.  Absent optional
    properties and unknown values are skipped.  Unmodelled type tokens yield [].
    """
    spec = _SPECS.get(type_token)
    if spec is None:
        return []
    data = cast(Mapping[str, Any], _unwrap(dict(inputs)))
    out: list[str] = []
    for parent, key in spec.required:
        for parent_path, node in _values(data, parent) if parent else [("", data)]:
            if isinstance(node, Mapping) and cast(Mapping[str, Any], node).get(key) is None:
                path = f"{parent_path}.{key}" if parent_path else key
                out.append(f"{path}: required field is missing")
    for dotted, check in spec.checks:
        for path, value in _values(data, dotted):
            problem = check(value)
            if problem:
                out.append(f"{path}: {problem}")
    for left, right in spec.conflicts:
        if _present(data, left) and _present(data, right):
            out.append(f"{left}: conflicts with {right}")
            out.append(f"{right}: conflicts with {left}")
    for rule in spec.custom:
        out.extend(rule(data))
    if include_daemon:
        for rule in spec.daemon:
            out.extend(rule(data))
    return out
