"""Writing files so that a crash never leaves half of one: a temporary file beside it, then a rename."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def write_text_atomic(path: str | Path, text: str, durable: bool = False) -> Path:
    """`durable`: flushed to disk before the rename (an index's commit points), not only atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    if durable:
        fsync_path(tmp)
    tmp.replace(path)
    return path


@contextmanager
def folder_written_atomically(target: Path, prefix: str | None = None):
    """A temporary folder beside `target` that replaces it only when the block completes: an interruption never
    leaves a half-written folder behind (its temporary one is removed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix or target.name + ".tmp-", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fsync_path(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk before the rename that makes it current."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
