"""One writer at a time per index."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from rag.errors import IndexBusy


@contextmanager
def write_lock(index_dir: str | Path, wait: bool = True):
    """One writer at a time: two ingests that both read-modify-write would drop one's changes. The second one
    waits (saying so), or with `wait=False` fails at once with `IndexBusy`. Readers never take it."""
    import fcntl

    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise IndexBusy(index_dir) from None
            print(f"waiting for another writer to finish with {index_dir}/ ...", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
