"""Every shell script of the project passes shellcheck: the scripts, the toolchain build, the lab
images' entrypoints, the backup job and the engine tests' scripts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    [
        *(ROOT / "scripts").iterdir(),
        *(ROOT / "tools").glob("*.sh"),
        *(ROOT / "swarmops" / "lab_images").glob("*/*.sh"),
        *(ROOT / "components").glob("*.sh"),
        *(ROOT / "tests" / "engine" / "scripts").glob("*.sh"),
    ]
)


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt-get install shellcheck)"
)
@pytest.mark.parametrize("script", [p for p in SCRIPTS if p.is_file()], ids=lambda p: str(p.relative_to(ROOT)))
def test_script_passes_shellcheck(script: Path) -> None:
    # -x follows a `source` named relative to the script's own directory.
    result = subprocess.run(
        ["shellcheck", "-x", script.name], cwd=script.parent, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
