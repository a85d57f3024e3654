"""The lab images' pure parts: the stack file deploy-dev writes, the mirror it builds from, the
cache keys, and the static-binary test the logging role relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackconfig.settings import NAMESPACE, parse_settings
from swarmops.lab_images import debian
from swarmops.lab_images.build import RECIPES, ROLES, is_static_elf
from swarmops.lab_images.config import with_lab_images
from tests.support import ROOT

TAGS = {"mysql": "wpswarm-lab/mysql:10.11-a", "wordpress": "wpswarm-lab/wordpress:6.1-b", "logging": "x/l:3-c"}


def test_the_lab_stack_file_names_the_lab_images_and_keeps_everything_else() -> None:
    stack_file = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text()) | {"encryptionsalt": "v1:salt"}
    lab = with_lab_images(stack_file, TAGS)
    assert lab["encryptionsalt"] == "v1:salt"  # the stack's secrets stay readable
    config = {key.partition(":")[2]: value for key, value in lab["config"].items()}
    settings = parse_settings(config)
    assert (settings.mysql.image, settings.wordpress.image, settings.logging.image) == (
        TAGS["mysql"],
        TAGS["wordpress"],
        TAGS["logging"],
    )
    # Dev's own settings are untouched: same port and mode.
    assert (config["wordpress"]["port"], config["wordpress"]["publishMode"]) == (30080, "host")
    assert lab["config"][f"{NAMESPACE}:envLabel"] == "test"
    assert "image" not in (stack_file["config"].get(f"{NAMESPACE}:mysql") or {}), "the stack file itself is kept"


@pytest.mark.parametrize(
    ("name", "text", "mirror"),
    [
        ("sources.list", "deb http://deb.example/debian bookworm main\n", "http://deb.example/debian"),
        ("sources.list", "deb [arch=amd64] http://m/debian bookworm contrib main # x\n", "http://m/debian"),
        ("sources.list", "deb http://security.debian.org/debian-security bookworm main\n", None),
        (
            "debian.sources",
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
            "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n",
            "http://deb.debian.org/debian",
        ),
        ("debian.sources", "Enabled: no\nTypes: deb\nURIs: http://x\nSuites: bookworm\nComponents: main\n", None),
    ],
)
def test_the_mirror_is_the_one_apt_uses_for_bookworm_main(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, mirror: str | None
) -> None:
    monkeypatch.delenv(debian.MIRROR_ENV, raising=False)
    sources_dir = tmp_path / "sources.list.d"
    sources_dir.mkdir()
    target = tmp_path / "sources.list" if name == "sources.list" else sources_dir / name
    target.write_text(text)
    assert debian.configured_mirror(tmp_path / "sources.list", sources_dir) == mirror
    monkeypatch.setenv(debian.MIRROR_ENV, "http://override/debian")
    assert debian.configured_mirror(tmp_path / "sources.list", sources_dir) == "http://override/debian"


def test_each_role_has_a_recipe_whose_key_follows_its_files() -> None:
    assert ROLES == ("mysql", "wordpress", "logging")
    keys = {role: RECIPES[role].key() for role in ROLES}
    assert len(set(keys.values())) == 3
    assert all(len(key) == 12 for key in keys.values())
    # The Debian base doesn't depend on the role's own files: editing an entrypoint rebuilds in seconds.
    assert RECIPES["mysql"].base_key() != RECIPES["wordpress"].base_key()


def test_static_binaries_are_told_from_dynamic_ones(tmp_path: Path) -> None:
    assert is_static_elf(Path("/bin/sh")) is False  # dynamically linked on Debian
    (tmp_path / "text").write_text("#!/bin/sh\n")
    assert is_static_elf(tmp_path / "text") is False
    assert is_static_elf(tmp_path / "missing") is False
