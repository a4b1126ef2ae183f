"""What every store requires of an article it is given, checked the same way by each."""

from __future__ import annotations

import numpy as np

from rag.records import Article, Chunk


def checked_vectors(article: Article, chunks: list[Chunk], vectors, sentences) -> np.ndarray | None:
    """The chunk vectors as float32 rows (None when there are no chunks), or a ValueError naming what does not fit:
    a vector per chunk, chunks of this article, sentence vectors of its own chunks."""
    if len(chunks) != len(vectors):
        raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors for article {article.id!r}")
    if any(c.article_id != article.id for c in chunks):
        raise ValueError(f"chunks passed with article {article.id!r} belong to another article")
    known = {c.id for c in chunks}
    if any(cid not in known for cid, _, _ in sentences or []):
        raise ValueError(f"sentence vectors for article {article.id!r} point at chunks it does not have")
    return np.asarray(vectors, dtype=np.float32).reshape(len(chunks), -1) if len(chunks) else None
