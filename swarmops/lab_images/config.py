"""python -m swarmops.lab_images.config STACK_FILE TAGS_JSON: the stack file with the lab images in
place of the images it names (`pulumi up --config-file` reads it), on stdout. The stack file
itself is left as it is, so it keeps naming the product's images."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from stackconfig.settings import NAMESPACE


def with_lab_images(stack_file: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, Any]:
    """`stack_file` (its config and secrets salt) with `<namespace>:<role>.image` set to each tag."""
    document = dict(stack_file)
    config = dict(document.get("config") or {})
    for role, tag in tags.items():
        key = f"{NAMESPACE}:{role}"
        config[key] = {**(config.get(key) or {}), "image": tag}
    document["config"] = config
    return document


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    stack_file = yaml.safe_load(Path(argv[0]).read_text()) or {}
    print(yaml.safe_dump(with_lab_images(stack_file, json.loads(argv[1])), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
