"""JSON Lines reading shared by ingest, `--queries` and question sets: bad lines are reported, not fatal."""

from __future__ import annotations

import json
from collections.abc import Iterator


def iter_jsonl(text: str) -> Iterator[tuple[int, object, str | None]]:
    """(line number, parsed value or None, error or None) for each non-blank line."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line), None
        except json.JSONDecodeError as exc:
            yield lineno, None, f"invalid JSON: {exc.msg}"
