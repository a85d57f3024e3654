"""The rows for people (an aligned table with a summary line) and for machines (--json)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict

from swarmops.verify import EXIT_FAILED, EXIT_OK, Row


def exit_code(rows: Iterable[Row]) -> int:
    return EXIT_FAILED if any(r.status == "FAIL" for r in rows) else EXIT_OK


def render_table(rows: Sequence[Row]) -> str:
    header = Row("CHECK", "TARGET", "PASS", "DETAIL")  # "PASS" only sizes the STATUS column
    widths = [max(len(getattr(r, f)) for r in [header, *rows]) for f in ("check", "target", "status")]
    widths[2] = max(widths[2], len("STATUS"))
    lines = [
        f"{r.check:<{widths[0]}}  {r.target:<{widths[1]}}  {s:<{widths[2]}}  {r.detail}"
        for r, s in [(header, "STATUS"), *((r, r.status) for r in rows)]
    ]
    failed = sum(r.status == "FAIL" for r in rows)
    skipped = sum(r.status == "SKIP" for r in rows)
    # Not "N passed, N failed": CI log readers take that line for a test runner's verdict.
    summary = f"{failed} of {len(rows)} checks FAILED" if failed else f"all {len(rows) - skipped} checks passed"
    lines.append(summary + (f" ({skipped} not tried from here)" if skipped else ""))
    return "\n".join(lines)


def render_json(rows: Sequence[Row]) -> str:
    return json.dumps({"ok": exit_code(rows) == EXIT_OK, "rows": [asdict(r) for r in rows]}, indent=2)


def render_error_json(error: str) -> str:
    """--json when verification could not run: no rows, and why."""
    return json.dumps({"ok": False, "error": error, "rows": []}, indent=2)
