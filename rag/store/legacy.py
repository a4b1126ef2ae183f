"""Reading an index of format 2 (one folder per generation holding the whole index), so an index built before
segments keeps working: it is loaded as one unsaved batch and written as a segment by the next save."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rag.errors import IndexCorrupt, IndexMismatch
from rag.records import Article, Chunk


def read_generation(store, gen_dir: Path) -> int:
    """Load a format-2 generation into `store` as unsaved articles; its generation number."""
    import faiss

    try:
        manifest = json.loads((gen_dir / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexCorrupt(store.index_dir, f"manifest: {exc}") from exc
    if manifest.get("format") != 2:
        raise IndexCorrupt(store.index_dir, f"format {manifest.get('format')} is not 2")
    if manifest["embedder"] != store.embedder_name:
        raise IndexMismatch(store.index_dir, manifest["embedder"], store.embedder_name)
    try:
        vectors = faiss.read_index(str(gen_dir / "vectors.faiss"))
        sent_index = faiss.read_index(str(gen_dir / "sentences.faiss"))
        sentences: dict[str, list] = {}
        with open(gen_dir / "sentences.jsonl", encoding="utf-8") as f:
            for line in f:
                fid, cid, start, end = json.loads(line)
                sentences.setdefault(cid, []).append((cid, sent_index.reconstruct(fid), (start, end)))
        articles = [Article.model_validate_json(line) for line in open(gen_dir / "articles.jsonl", encoding="utf-8")]
        chunks: dict[str, list[tuple[Chunk, np.ndarray]]] = {}
        with open(gen_dir / "chunks.jsonl", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                fid = row.pop("faiss_id")
                chunk = Chunk.model_validate(row)
                chunks.setdefault(chunk.article_id, []).append((chunk, vectors.reconstruct(fid)))
    except Exception as exc:  # noqa: BLE001 - any unreadable part means the same thing to the user
        raise IndexCorrupt(store.index_dir, str(exc)) from exc
    store.dim = int(manifest["dim"])
    for article in articles:
        rows = chunks.get(article.id, [])
        store.put_article(article, [c for c, _ in rows],
                          np.asarray([v for _, v in rows], dtype=np.float32).reshape(len(rows), store.dim),
                          [s for c, _ in rows for s in sentences.get(c.id, [])])
    return int(manifest["generation"])
