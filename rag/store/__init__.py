"""Where passages and their vectors live. `LocalStore` (segments on local disk, the default) is the one
implementation today; `open_store` picks by `RAG_STORE`. Every store answers the same calls (tests/test_store.py
runs one contract against each): article, articles, chunk, chunks_of, chunk_vector, sentences_of, len, search,
lexical_search, stats, put_article, remove_article, save, compact."""

from __future__ import annotations

from rag.store.filters import Filters
from rag.store.local import LocalStore, check_generation, generations, point_current_at
from rag.store.lock import write_lock

__all__ = ["Filters", "LocalStore", "check_generation", "generations", "open_store", "fresh_store",
           "point_current_at", "store_exists", "write_lock"]


def _options(settings) -> dict:
    return {"ann_min_vectors": settings.ann_min_vectors, "ann_ef_search": settings.ann_ef_search,
            "merge_factor": settings.merge_factor}


def open_store(settings, embedder_name: str, create: bool = False) -> LocalStore:
    """The store the settings name, at settings.index_dir; with `create`, an empty one if there is none."""
    return LocalStore.open(settings.index_dir, embedder_name, create=create, **_options(settings))


def fresh_store(settings, embedder_name: str) -> LocalStore:
    """An empty store that, once saved, replaces the index the settings name (a rebuild)."""
    return LocalStore.fresh(settings.index_dir, embedder_name, **_options(settings))


def store_exists(settings) -> bool:
    return LocalStore.exists(settings.index_dir)
