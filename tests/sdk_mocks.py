"""The one place the tests touch the Pulumi SDK's internals: the wire format of secrets and the mock
monitor's RegisterResource. If an SDK upgrade moves them, only this file changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi.runtime import mocks, rpc

# {SECRET_SIG: SECRET_VALUE, "value": ...} marks a secret value on the wire.
SECRET_SIG: str = rpc._special_sig_key  # pyright: ignore[reportPrivateUsage]
SECRET_VALUE: str = rpc._special_secret_sig  # pyright: ignore[reportPrivateUsage]


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE  # pyright: ignore[reportUnknownMemberType]


def unwrap(value: Any) -> Any:
    """A wire value with every secret replaced by what it holds."""
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        return [unwrap(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    return value


# Called with every registration: (request, urn, its inputs as sent on the wire).
Recorder = Callable[[Any, str, dict[str, Any]], None]
# Called with every registration of outputs (a component's register_outputs): (urn, outputs).
OutputsRecorder = Callable[[str, dict[str, Any]], None]


class RecordingMonitor(mocks.MockMonitor):
    """The stock mock monitor, handing each registration to `record` with what the stock one drops:
    dependencies, parents, providers, secrecy; and registered outputs to `record_outputs`."""

    def __init__(self, providers: mocks.Mocks, record: Recorder, record_outputs: OutputsRecorder) -> None:
        super().__init__(providers)
        self.record = record
        self.record_outputs = record_outputs

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self.record_outputs(request.urn, rpc.deserialize_properties(request.outputs, keep_unknowns=True))
        return super().RegisterResourceOutputs(request)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.record(request, response.urn, rpc.deserialize_properties(request.object, keep_unknowns=True))
        return response
