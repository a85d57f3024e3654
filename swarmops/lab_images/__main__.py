"""python -m swarmops.lab_images [--json] [ROLE ...]: builds (or finds) the lab images on the
Docker Engine of DOCKER_HOST (default: the local socket) and prints their tags and build times."""

from __future__ import annotations

import argparse
import json
import sys

from swarmlib.client import DockerHostError, reachable_client
from swarmops.lab_images.build import ROLES, ensure_image
from swarmops.lab_images.debian import LabImageError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swarmops.lab_images", description=__doc__)
    parser.add_argument("roles", nargs="*", metavar="ROLE", help=f"some of {', '.join(ROLES)} (default: all)")
    parser.add_argument("--json", action="store_true", help="print {role: tag} as JSON on stdout")
    options = parser.parse_args(argv)
    unknown = sorted(set(options.roles) - set(ROLES))
    if unknown:
        parser.error(f"unknown role(s) {', '.join(unknown)}; the roles are {', '.join(ROLES)}")
    try:
        client = reachable_client(timeout=900)
        built = {}
        for role in options.roles or ROLES:
            image = ensure_image(client, role)
            built[role] = image
            print(f"lab-images: {role}: {image.tag} ({image.how}, {image.seconds:.0f} s)", file=sys.stderr)
    except (DockerHostError, LabImageError) as error:
        print(f"lab-images: {error}", file=sys.stderr)
        return 1
    if options.json:
        print(json.dumps({role: image.tag for role, image in built.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
