"""What the program declares, as Docker Engine API objects: the docker provider's job, for tests.

No Pulumi CLI or docker provider plugin runs here, so a real-engine test of the product's own specs
translates the inputs the program declares under mocks (tests.support.Declared: camelCase, exactly
as the provider receives them) into the API objects the provider would send, and creates them with
the docker SDK's low-level client. The mapping follows kreuzwerker/terraform-provider-docker, which
pulumi-docker bridges:

* services  -- internal/provider/resource_docker_service_structures.go (createServiceSpec and the
  create* helpers it calls): labels set -> map, env map -> "K=V" list, durations through
  time.ParseDuration to nanoseconds, placement constraints and max_replicas, networks_advanced ->
  TaskTemplate.Networks (Target, Aliases), secrets -> SecretReference{SecretID, SecretName,
  File{Name, UID, GID, Mode}}, ports -> PortConfig{Protocol, TargetPort, PublishedPort,
  PublishMode}, max_failure_ratio string -> float;
* secrets   -- resource_docker_secret.go: data through base64.StdEncoding (standard alphabet);
* networks  -- resource_docker_network_funcs.go: options -> NetworkCreate.Options (driver options);
* volumes   -- resource_docker_volume.go: name, driver, labels.

Only the fields the program uses are translated. Any other input field raises TranslationError, so
a field added to the program fails the test instead of silently going missing on the real engine.
Where the provider ignores a parse error (a bad duration becomes 0), this module raises instead.

References between resources are by the mock engine's ids and auto-names (tests.support.
FakeProviders: "db-net-id", "db-data-a1b2c3d"); `EngineDeployer` creates the objects under real,
unique names and rewrites each reference to the real id or name.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import docker
from pulumi.runtime import MockResourceArgs

from tests.provider_rules import go_parse_duration
from tests.support import Declared, FakeProviders

SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
#: Created in this order: services refer to the others.
ORDER = (SECRET, NETWORK, VOLUME, SERVICE)


class TranslationError(ValueError):
    """An input the translator has no mapping for, or a value the provider would not accept."""


# --------------------------------------------------------------------------- reading inputs


#: Checks and converts one input value; the second argument is its path, for errors.
_Convert = Callable[[object, str], Any]


class _Fields:
    """One input object. Every key must be taken before the block ends, or TranslationError."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, Mapping):
            raise TranslationError(f"{where}: expected an object, got {raw!r}")
        self.raw: dict[str, Any] = {str(k): v for k, v in raw.items()}  # pyright: ignore[reportUnknownVariableType]
        self.where = where
        self.taken: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.raw

    def get(self, key: str) -> Any:
        self.taken.add(key)
        return self.raw.get(key)

    def need(self, key: str) -> Any:
        if key not in self.raw:
            raise TranslationError(f"{self.path(key)}: missing; the translator does not model the provider's default")
        return self.get(key)

    def optional(self, table: Mapping[str, tuple[str, _Convert]]) -> dict[str, Any]:
        """The optional keys of `table` that the input has: {api: convert(value, path)} for each
        `key: (api, convert)`, in the table's order."""
        return {api: convert(self.get(key), self.path(key)) for key, (api, convert) in table.items() if self.has(key)}

    def check_all_taken(self) -> None:
        unknown = sorted(set(self.raw) - self.taken)
        if unknown:
            raise TranslationError(
                f"{self.where or 'inputs'}: no translation for {', '.join(unknown)}; "
                "teach tests/engine/pulumi_to_engine.py the provider's mapping for it"
            )


@contextmanager
def _fields(raw: object, where: str) -> Iterator[_Fields]:
    fields = _Fields(raw, where)
    yield fields
    fields.check_all_taken()


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise TranslationError(f"{where}: expected a string, got {value!r}")
    return value


def _int(value: object, where: str) -> int:
    # Numbers cross the Pulumi wire as floats (1.0); the provider's schema makes them Go ints.
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise TranslationError(f"{where}: expected an integer, got {value!r}")
    return int(value)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise TranslationError(f"{where}: expected true or false, got {value!r}")
    return value


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list):
        raise TranslationError(f"{where}: expected a list of strings, got {value!r}")
    return [_str(item, f"{where}[{i}]") for i, item in enumerate(value)]  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]


def _objects(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise TranslationError(f"{where}: expected a list, got {value!r}")
    return list(value)  # pyright: ignore[reportUnknownArgumentType]


def _float_string(value: object, where: str) -> float:
    """A float sent as a string (max_failure_ratio): strconv.ParseFloat."""
    text = _str(value, where)
    try:
        return float(text)
    except ValueError as exc:
        raise TranslationError(f"{where}: {text!r} is no float") from exc


def _duration(value: object, where: str) -> int:
    """time.ParseDuration in nanoseconds. The provider drops the error and uses 0; we raise."""
    try:
        return go_parse_duration(_str(value, where))
    except ValueError as exc:
        raise TranslationError(f"{where}: {exc} (the provider would silently use 0)") from exc


def _label_map(value: object, where: str) -> dict[str, str]:
    """labelSetToMap: a set of {label, value} blocks -> a map."""
    labels: dict[str, str] = {}
    for i, raw in enumerate(_objects(value, where)):
        with _fields(raw, f"{where}[{i}]") as item:
            labels[_str(item.need("label"), item.path("label"))] = _str(item.need("value"), item.path("value"))
    return labels


def _string_map(value: object, where: str) -> dict[str, str]:
    with _fields(value, where) as raw:
        return {key: _str(raw.get(key), raw.path(key)) for key in list(raw.raw)}


# --------------------------------------------------------------------------- engine objects


@dataclass(frozen=True)
class Refs:
    """Real ids and names of objects created so far, by the mock engine's id and auto-name."""

    ids: Mapping[str, str] = field(default_factory=lambda: {})
    names: Mapping[str, str] = field(default_factory=lambda: {})

    def id(self, mock_id: object, where: str) -> str:
        key = _str(mock_id, where)
        if key not in self.ids:
            raise TranslationError(f"{where}: {key!r} is the id of nothing created (known: {sorted(self.ids)})")
        return self.ids[key]

    def name(self, mock_name: object, where: str) -> str:
        key = _str(mock_name, where)
        if key not in self.names:
            raise TranslationError(f"{where}: {key!r} is the name of nothing created (known: {sorted(self.names)})")
        return self.names[key]


@dataclass(frozen=True)
class SecretCreate:
    name: str
    data: bytes
    labels: dict[str, str]


@dataclass(frozen=True)
class NetworkCreate:
    name: str
    driver: str | None
    options: dict[str, str] | None
    attachable: bool | None
    labels: dict[str, str]


@dataclass(frozen=True)
class VolumeCreate:
    name: str
    driver: str | None
    labels: dict[str, str]


@dataclass(frozen=True)
class ServiceCreate:
    """Keyword arguments of docker.APIClient.create_service (Engine API ServiceSpec)."""

    name: str
    labels: dict[str, str]
    task_template: dict[str, Any]
    mode: dict[str, Any]
    update_config: dict[str, Any] | None = None
    rollback_config: dict[str, Any] | None = None
    endpoint_spec: dict[str, Any] | None = None

    @property
    def container_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.task_template["ContainerSpec"]
        return spec

    def kwargs(self) -> dict[str, Any]:
        return {
            "task_template": self.task_template,
            "name": self.name,
            "labels": self.labels,
            "mode": self.mode,
            "update_config": self.update_config,
            "rollback_config": self.rollback_config,
            "endpoint_spec": self.endpoint_spec,
        }


# --------------------------------------------------------------------------- secrets, networks, volumes


def secret_create(inputs: Mapping[str, Any], name: str) -> SecretCreate:
    with _fields(inputs, "") as f:
        f.get("name")  # the caller's `name` stands for it (see EngineDeployer.real_name)
        text = _str(f.need("data"), "data")
        try:
            # base64.StdEncoding.DecodeString: standard alphabet ('+', '/'), padding required.
            data = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise TranslationError(f"data: not standard base64 ({exc}); the provider refuses it") from exc
        labels = _label_map(f.get("labels"), "labels") if f.has("labels") else {}
    return SecretCreate(name=name, data=data, labels=labels)


def network_create(inputs: Mapping[str, Any], name: str) -> NetworkCreate:
    with _fields(inputs, "") as f:
        f.get("name")
        driver = _str(f.get("driver"), "driver") if f.has("driver") else None
        options = _string_map(f.get("options"), "options") if f.has("options") else None
        attachable = _bool(f.get("attachable"), "attachable") if f.has("attachable") else None
        labels = _label_map(f.get("labels"), "labels") if f.has("labels") else {}
    return NetworkCreate(name=name, driver=driver, options=options, attachable=attachable, labels=labels)


def volume_create(inputs: Mapping[str, Any], name: str) -> VolumeCreate:
    with _fields(inputs, "") as f:
        f.get("name")
        driver = _str(f.get("driver"), "driver") if f.has("driver") else None
        labels = _label_map(f.get("labels"), "labels") if f.has("labels") else {}
    return VolumeCreate(name=name, driver=driver, labels=labels)


# --------------------------------------------------------------------------- services


def _healthcheck(raw: object, where: str) -> dict[str, Any]:
    with _fields(raw, where) as f:
        return {
            "Test": _strings(f.need("tests"), f.path("tests")),
            **f.optional(
                {
                    "interval": ("Interval", _duration),
                    "timeout": ("Timeout", _duration),
                    "startPeriod": ("StartPeriod", _duration),
                    "retries": ("Retries", _int),
                }
            ),
        }


def _mount(raw: object, where: str, refs: Refs) -> dict[str, Any]:
    with _fields(raw, where) as f:
        kind = _str(f.need("type"), f.path("type"))
        source = _str(f.need("source"), f.path("source"))
        if kind == "volume":
            source = refs.name(source, f.path("source"))  # a docker.Volume's name
        elif kind != "bind":
            raise TranslationError(f"{f.path('type')}: mount type {kind!r} not translated")
        mount: dict[str, Any] = {"Type": kind, "Source": source, "Target": _str(f.need("target"), f.path("target"))}
        if f.has("readOnly"):
            mount["ReadOnly"] = _bool(f.get("readOnly"), f.path("readOnly"))
    return mount


def _secret_reference(raw: object, where: str, refs: Refs) -> dict[str, Any]:
    with _fields(raw, where) as f:
        reference: dict[str, Any] = {
            "SecretID": refs.id(f.need("secretId"), f.path("secretId")),
            "File": {
                "Name": _str(f.need("fileName"), f.path("fileName")),
                "UID": _str(f.need("fileUid"), f.path("fileUid")),
                "GID": _str(f.need("fileGid"), f.path("fileGid")),
                "Mode": _int(f.need("fileMode"), f.path("fileMode")),
            },
        }
        if f.has("secretName"):
            reference["SecretName"] = refs.name(f.get("secretName"), f.path("secretName"))
    return reference


def _container_spec(raw: object, where: str, refs: Refs) -> dict[str, Any]:
    with _fields(raw, where) as f:
        spec: dict[str, Any] = {"Image": _str(f.need("image"), f.path("image"))}
        if f.has("env"):
            # mapTypeMapValsToStringSlice: each entry as "KEY=value".
            spec["Env"] = [f"{k}={v}" for k, v in _string_map(f.get("env"), f.path("env")).items()]
        if f.has("args"):
            spec["Args"] = _strings(f.get("args"), f.path("args"))
        if f.has("mounts"):
            spec["Mounts"] = [
                _mount(m, f"{f.path('mounts')}[{i}]", refs) for i, m in enumerate(_objects(f.get("mounts"), "mounts"))
            ]
        if f.has("secrets"):
            spec["Secrets"] = [
                _secret_reference(s, f"{f.path('secrets')}[{i}]", refs)
                for i, s in enumerate(_objects(f.get("secrets"), "secrets"))
            ]
        if f.has("healthcheck"):
            spec["Healthcheck"] = _healthcheck(f.get("healthcheck"), f.path("healthcheck"))
        if f.has("stopGracePeriod"):
            spec["StopGracePeriod"] = _duration(f.get("stopGracePeriod"), f.path("stopGracePeriod"))
    return spec


def _cpu_memory(raw: object, where: str) -> dict[str, Any]:
    with _fields(raw, where) as f:
        return f.optional({"nanoCpus": ("NanoCPUs", _int), "memoryBytes": ("MemoryBytes", _int)})


def _resources(raw: object, where: str) -> dict[str, Any]:
    with _fields(raw, where) as f:
        return f.optional({"limits": ("Limits", _cpu_memory), "reservation": ("Reservations", _cpu_memory)})


def _restart_policy(raw: object, where: str) -> dict[str, Any]:
    with _fields(raw, where) as f:
        return f.optional(
            {
                "condition": ("Condition", _str),
                "delay": ("Delay", _duration),
                "maxAttempts": ("MaxAttempts", _int),
                "window": ("Window", _duration),
            }
        )


def _placement(raw: object, where: str) -> dict[str, Any]:
    with _fields(raw, where) as f:
        placement: dict[str, Any] = {"Constraints": _strings(f.need("constraints"), f.path("constraints"))}
        if f.has("maxReplicas"):
            placement["MaxReplicas"] = _int(f.get("maxReplicas"), f.path("maxReplicas"))
    return placement


def _network_attachment(raw: object, where: str, refs: Refs) -> dict[str, Any]:
    with _fields(raw, where) as f:
        attachment: dict[str, Any] = {"Target": refs.id(f.need("id"), f.path("id"))}
        if f.has("aliases"):
            attachment["Aliases"] = _strings(f.get("aliases"), f.path("aliases"))
    return attachment


def _task_template(raw: object, where: str, refs: Refs) -> dict[str, Any]:
    with _fields(raw, where) as f:
        template: dict[str, Any] = {
            "ContainerSpec": _container_spec(f.need("containerSpec"), f.path("containerSpec"), refs)
        }
        if f.has("resources"):
            template["Resources"] = _resources(f.get("resources"), f.path("resources"))
        if f.has("restartPolicy"):
            template["RestartPolicy"] = _restart_policy(f.get("restartPolicy"), f.path("restartPolicy"))
        if f.has("placement"):
            template["Placement"] = _placement(f.get("placement"), f.path("placement"))
        if f.has("networksAdvanceds"):
            where_networks = f.path("networksAdvanceds")
            template["Networks"] = [
                _network_attachment(n, f"{where_networks}[{i}]", refs)
                for i, n in enumerate(_objects(f.get("networksAdvanceds"), where_networks))
            ]
    return template


def _mode(raw: object, where: str) -> dict[str, Any]:
    with _fields(raw, where) as f:
        is_global = _bool(f.get("global"), f.path("global")) if f.has("global") else False
        if f.has("replicated"):
            if is_global:
                raise TranslationError(f"{where}: both global and replicated")
            with _fields(f.get("replicated"), f.path("replicated")) as replicated:
                replicas = _int(replicated.need("replicas"), replicated.path("replicas"))
            return {"Replicated": {"Replicas": replicas}}
    if not is_global:
        raise TranslationError(f"{where}: neither global nor replicated; the provider's default is not modelled")
    return {"Global": {}}


def _update_config(raw: object, where: str) -> dict[str, Any]:
    """createUpdateOrRollbackConfig (used for update_config and rollback_config alike)."""
    with _fields(raw, where) as f:
        return f.optional(
            {
                "parallelism": ("Parallelism", _int),
                "delay": ("Delay", _duration),
                "failureAction": ("FailureAction", _str),
                "monitor": ("Monitor", _duration),
                "maxFailureRatio": ("MaxFailureRatio", _float_string),
                "order": ("Order", _str),
            }
        )


def _port(raw: object, where: str) -> dict[str, Any]:
    with _fields(raw, where) as f:
        return {
            "TargetPort": _int(f.need("targetPort"), f.path("targetPort")),
            **f.optional(
                {
                    "protocol": ("Protocol", _str),
                    "publishedPort": ("PublishedPort", _int),
                    "publishMode": ("PublishMode", _str),
                }
            ),
        }


def _endpoint_spec(raw: object, where: str) -> dict[str, Any]:
    with _fields(raw, where) as f:
        spec: dict[str, Any] = {}
        if f.has("mode"):
            spec["Mode"] = _str(f.get("mode"), f.path("mode"))
        if f.has("ports"):
            spec["Ports"] = [
                _port(p, f"{f.path('ports')}[{i}]") for i, p in enumerate(_objects(f.get("ports"), f.path("ports")))
            ]
    return spec


def _converge_config(raw: object, where: str) -> None:
    """Provider-side only (`pulumi up` waits for the tasks, up to `timeout`): nothing reaches the
    engine. Checked, then dropped; tests wait for convergence themselves."""
    with _fields(raw, where) as f:
        for key in ("delay", "timeout"):
            if f.has(key):
                _duration(f.get(key), f.path(key))


def service_create(inputs: Mapping[str, Any], name: str, refs: Refs) -> ServiceCreate:
    """createServiceSpec: the whole ServiceSpec, references rewritten through `refs`."""
    with _fields(inputs, "") as f:
        f.get("name")
        labels = _label_map(f.get("labels"), "labels") if f.has("labels") else {}
        template = _task_template(f.need("taskSpec"), "taskSpec", refs)
        mode = _mode(f.need("mode"), "mode")
        update = _update_config(f.get("updateConfig"), "updateConfig") if f.has("updateConfig") else None
        rollback = _update_config(f.get("rollbackConfig"), "rollbackConfig") if f.has("rollbackConfig") else None
        endpoint = _endpoint_spec(f.get("endpointSpec"), "endpointSpec") if f.has("endpointSpec") else None
        if f.has("convergeConfig"):
            _converge_config(f.get("convergeConfig"), "convergeConfig")
    return ServiceCreate(
        name=name,
        labels=labels,
        task_template=template,
        mode=mode,
        update_config=update,
        rollback_config=rollback,
        endpoint_spec=endpoint,
    )


# --------------------------------------------------------------------------- creating them


def mock_identity(resource: Declared) -> tuple[str, str]:
    """(id, name) the mock engine gave the resource: what other resources' inputs refer to."""
    resource_id, state = FakeProviders().new_resource(MockResourceArgs(resource.type, resource.name, resource.inputs))
    return str(resource_id), str(state["name"])


ServiceAdjust = Callable[[Declared, ServiceCreate], ServiceCreate]


@dataclass
class Created:
    """What EngineDeployer made, by the program's resource name."""

    ids: dict[str, str] = field(default_factory=lambda: {})  # program name -> real id
    names: dict[str, str] = field(default_factory=lambda: {})  # program name -> real name
    specs: dict[str, ServiceCreate] = field(default_factory=lambda: {})  # services as sent
    refs: Refs = field(default_factory=Refs)


class EngineDeployer:
    """Creates the program's docker resources on a real engine, each also carrying `extra_labels`
    (the test's cleanup labels), under `<name>-<suffix>`: <name> is the explicit `name` input where
    the program sets one, else the resource's name (whose auto-name is that plus a random suffix).
    Explicit names get the suffix too: on a shared engine, a fixed name would hand a test another
    run's object (which is what a fixed name is for, in production)."""

    def __init__(self, client: docker.DockerClient, suffix: str, extra_labels: Mapping[str, str]) -> None:
        if not re.fullmatch(r"[a-z0-9]+", suffix):
            raise ValueError(f"suffix {suffix!r}: lower-case letters and digits only")
        self.client = client
        self.suffix = suffix
        self.extra_labels = dict(extra_labels)
        self.created = Created()
        self._ids: dict[str, str] = {}
        self._names: dict[str, str] = {}

    def real_name(self, resource: Declared) -> str:
        explicit = resource.inputs.get("name")
        return f"{explicit if isinstance(explicit, str) and explicit else resource.name}-{self.suffix}"

    def deploy(self, resources: Iterable[Declared], adjust: ServiceAdjust | None = None) -> Created:
        """Every docker:index resource, dependencies first. Any other docker:index type raises;
        non-docker resources (components, passwords, the provider) have nothing to create."""
        chosen = [r for r in resources if r.type.startswith("docker:index/")]
        unknown = sorted({r.type for r in chosen} - set(ORDER))
        if unknown:
            raise TranslationError(f"no translation for resource type(s) {', '.join(unknown)}")
        for type_token in ORDER:
            for resource in chosen:
                if resource.type == type_token:
                    self.create(resource, adjust)
        return self.created

    def create(self, resource: Declared, adjust: ServiceAdjust | None = None) -> str:
        """Creates one resource (its references must exist already); returns the real id."""
        api = self.client.api
        name = self.real_name(resource)
        where = f"{resource.type} {resource.name}"
        try:
            if resource.type == SECRET:
                secret = secret_create(resource.inputs, name)
                made: dict[str, Any] = api.create_secret(
                    secret.name, secret.data, labels={**secret.labels, **self.extra_labels}
                )
            elif resource.type == NETWORK:
                network = network_create(resource.inputs, name)
                made = api.create_network(
                    network.name,
                    driver=network.driver,
                    options=network.options,
                    attachable=network.attachable,
                    labels={**network.labels, **self.extra_labels},
                )
            elif resource.type == VOLUME:
                volume = volume_create(resource.inputs, name)
                made = api.create_volume(
                    volume.name, driver=volume.driver, labels={**volume.labels, **self.extra_labels}
                )
                made = {"ID": made["Name"]}  # a volume's id is its name
            elif resource.type == SERVICE:
                spec = service_create(resource.inputs, name, Refs(dict(self._ids), dict(self._names)))
                if adjust is not None:
                    spec = adjust(resource, spec)
                spec = replace(spec, labels={**spec.labels, **self.extra_labels})
                self.created.specs[resource.name] = spec
                made = api.create_service(**spec.kwargs())
            else:
                raise TranslationError(f"no translation for resource type {resource.type}")
        except TranslationError as exc:
            raise TranslationError(f"{where}: {exc}") from exc
        real_id = str(made.get("ID") or made.get("Id"))
        mock_id, mock_name = mock_identity(resource)
        self._ids[mock_id] = real_id
        self._names[mock_name] = name
        self.created.ids[resource.name] = real_id
        self.created.names[resource.name] = name
        self.created.refs = Refs(dict(self._ids), dict(self._names))
        return real_id

    def real_outputs(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """Stack outputs with every mock auto-name replaced by the real name."""

        def real(value: Any) -> Any:
            if isinstance(value, list):
                return [real(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
            if isinstance(value, str):
                return self._names.get(value, value)
            return value

        return {key: real(value) for key, value in outputs.items()}
