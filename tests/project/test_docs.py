"""The documentation says what the code does: the configuration table, the layout, the links."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from stackconfig.settings import KEYS, REQUIRED
from tests.support import ROOT

DOCS = ROOT / "docs"


def shown(default: Any) -> str:
    if default is REQUIRED:
        return "— (required)"
    if default is None:
        return "none"
    return f"`{default}`" if isinstance(default, str) else f"`{json.dumps(default)}`"


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| `")]


def test_the_configuration_table_is_the_programs_keys_table() -> None:
    expected = [f"| `{key.name}` | {shown(key.default)} | {key.meaning} |" for key in KEYS]
    documented = table_rows((DOCS / "configuration.md").read_text())
    assert documented == expected, (
        "docs/configuration.md's table differs from stackconfig.settings.KEYS:\n" + "\n".join(expected)
    )


def test_the_readme_front_page_stays_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("page", ["README.md", *(f"docs/{p.name}" for p in sorted(DOCS.glob("*.md")))])
def test_links_and_paths_named_in_the_docs_exist(page: str) -> None:
    text = (ROOT / page).read_text()
    base = (ROOT / page).parent
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (base / target).exists(), f"{page} links to {target}"
    # Backticked project paths (`components/mysql.py`, `tests/engine/...`) must be real files or
    # folders; virtualenvs are made by the scripts.
    for path in re.findall(
        r"`((?:components|stackconfig|swarmlib|swarmops|policy|scripts|tools|tests|docs|benchmarks)/[\w./-]+)`", text
    ):
        assert ".venv" in path or (ROOT / path.rstrip("/")).exists(), f"{page} names {path}"


def test_the_readme_layout_lists_every_top_level_folder() -> None:
    text = (ROOT / "README.md").read_text()
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "__pycache__"}
    listed = set(re.findall(r"^(\w[\w-]*)/ ", text, flags=re.MULTILINE))
    assert folders == listed
