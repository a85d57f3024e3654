"""The stack's outputs: what the program exports and what the operations tools read back, defined
once. Only names and addresses, never a secret value (secret *names* are not secret)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar

T = TypeVar("T")
L = TypeVar("L")

ROLES = ("logging", "mysql", "wordpress")
# The backup jobs' parts, in the order `backupServices` lists their services; each job's role
# label is backup-<part>.
BACKUP_PARTS = ("database", "content")
BACKUP_ROLES = tuple(f"backup-{part}" for part in BACKUP_PARTS)


@dataclass(frozen=True)
class StackOutputs(Generic[T, L]):
    """T is a text value, L a list of texts: plain values when read back (`str`, `tuple[str, ...]`),
    Pulumi inputs in the program."""

    env_label: T
    url: T
    publish_mode: T
    wordpress_service: T
    mysql_service: T
    logging_service: T
    mysql_secrets: L
    wordpress_secrets: L
    backup_services: L  # the database part's and the content part's schedulers; none without backups

    def as_exports(self) -> dict[str, Any]:
        """Output name -> value, as `pulumi.export` takes them."""
        return {output_name(field.name): getattr(self, field.name) for field in fields(self)}


def output_name(field_name: str) -> str:
    """env_label -> envLabel: the stack outputs are camelCase, like the config keys."""
    first, *rest = field_name.split("_")
    return first + "".join(part.title() for part in rest)


OUTPUT_NAMES: tuple[str, ...] = tuple(output_name(field.name) for field in fields(StackOutputs))
_LIST_OUTPUTS = ("mysqlSecrets", "wordpressSecrets", "backupServices")


class OutputsError(ValueError):
    """The outputs are not what this program exports (another program's, or from an older version)."""


@dataclass(frozen=True)
class DeployedStack(StackOutputs[str, tuple[str, ...]]):
    """The outputs as `pulumi stack output --json` prints them, checked."""

    def service(self, role: str) -> str:
        return {"logging": self.logging_service, "mysql": self.mysql_service, "wordpress": self.wordpress_service}[role]

    def secrets(self, role: str) -> tuple[str, ...]:
        return {"mysql": self.mysql_secrets, "wordpress": self.wordpress_secrets}.get(role, ())

    @classmethod
    def parse(cls, outputs: Mapping[str, Any]) -> DeployedStack:
        """Every problem in one message."""
        problems: list[str] = []
        missing = [name for name in OUTPUT_NAMES if name not in outputs]
        if missing:
            problems.append(f"missing output(s): {', '.join(missing)}")
        for name in OUTPUT_NAMES:
            if name not in outputs:
                continue
            value = outputs[name]
            # The CLI prints secret outputs as "[secret]" unless --show-secrets, which we never ask for.
            if value == "[secret]":
                problems.append(f"output {name} is marked secret; it must be a plain value to be verified")
            elif name in _LIST_OUTPUTS:
                if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):  # pyright: ignore[reportUnknownVariableType]
                    problems.append(f"output {name} must be a list of names, got {type(value).__name__}")
            elif not (isinstance(value, str) and value):
                problems.append(f"output {name} must be a non-empty string, got {value!r}")
        if not problems and urllib.parse.urlsplit(str(outputs["url"])).scheme not in ("http", "https"):
            problems.append(f"output url must be an http(s) URL, got {outputs['url']!r}")
        if problems:
            raise OutputsError("stack outputs unusable: " + "; ".join(problems))
        text = {name: str(outputs[name]) for name in OUTPUT_NAMES if name not in _LIST_OUTPUTS}
        names = {name: tuple(str(v) for v in outputs[name]) for name in _LIST_OUTPUTS}
        return cls(
            env_label=text["envLabel"],
            url=text["url"],
            publish_mode=text["publishMode"],
            wordpress_service=text["wordpressService"],
            mysql_service=text["mysqlService"],
            logging_service=text["loggingService"],
            mysql_secrets=names["mysqlSecrets"],
            wordpress_secrets=names["wordpressSecrets"],
            backup_services=names["backupServices"],
        )
