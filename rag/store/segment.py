"""A segment: an immutable batch of articles with their chunks, vectors, sentence vectors and lexical postings.

Written once (by an ingest's commit or by a merge), never changed: removal is recorded in the commit that lists
the segment. Vectors and postings are memory-mapped arrays, and article and chunk records are read from their
JSONL files by byte offset when asked for, so opening a segment reads ids and small arrays only: a cold start
costs the same at any archive size, and the page cache, not the heap, holds the vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rag.arabic import detect_language, tokenize_for_search
from rag.files import fsync_path
from rag.records import Article, Chunk
from rag.store.lexical import SegmentLexicon

LANGS = ("ar", "en")


class Segment:
    def __init__(self, name: str, dim: int, article_ids: list[str], dates: list[str], sources: list[str],
                 article_ptr: np.ndarray, chunk_ids: list[str], chunk_lang: np.ndarray, vectors: np.ndarray,
                 sent_vectors: np.ndarray, sent_chunk: np.ndarray, sent_span: np.ndarray, lexicon: SegmentLexicon,
                 folder: Path | None = None, articles: list[Article] | None = None, chunks: list[Chunk] | None = None):
        self.name = name
        self.dim = dim
        self.article_ids = article_ids
        self.dates = dates
        self.sources = sources
        self.article_ptr = article_ptr  # chunks of article a are rows article_ptr[a]:article_ptr[a + 1]
        self.chunk_ids = chunk_ids
        self.chunk_lang = chunk_lang  # index into LANGS
        self.vectors = vectors
        self.sent_vectors = sent_vectors
        self.sent_chunk = sent_chunk  # the chunk row of each sentence, ascending
        self.sent_span = sent_span  # (start, end) in the chunk's text
        self.lexicon = lexicon
        self.folder = folder
        self._articles = articles  # in memory until written; afterwards read by offset
        self._chunks = chunks
        self.article_row = {a: i for i, a in enumerate(article_ids)}
        self.chunk_article = np.repeat(np.arange(len(article_ids), dtype=np.int32), np.diff(article_ptr))
        self.sent_ptr = np.searchsorted(sent_chunk, np.arange(len(chunk_ids) + 1)) if len(chunk_ids) else \
            np.zeros(1, dtype=np.int64)
        self.ann: dict[str, object] = {}  # "chunks" / "sentences" -> a FAISS approximate index, on large segments
        self._offsets: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.chunk_ids)

    # ---- building -----------------------------------------------------------------------------------------
    @classmethod
    def build(cls, name: str, dim: int, rows: list[tuple]) -> Segment:
        """From (article, chunks, vectors, sentences) rows as `put_article` takes them."""
        article_ids, dates, sources, ptr, chunk_ids, langs, tokens = [], [], [], [0], [], [], []
        articles, chunks, vec_blocks, sent_vecs, sent_chunk, sent_span = [], [], [], [], [], []
        for article, its_chunks, vectors, sentences in rows:
            row_of = {}
            for c in its_chunks:
                row_of[c.id] = len(chunk_ids)
                chunk_ids.append(c.id)
                langs.append(LANGS.index(detect_language(c.text)))
                tokens.append(tokenize_for_search(c.text))
                chunks.append(c)
            article_ids.append(article.id)
            dates.append(article.date)
            sources.append(article.source)
            articles.append(article)
            ptr.append(len(chunk_ids))
            if len(its_chunks):
                vec_blocks.append(np.asarray(vectors, dtype=np.float32).reshape(len(its_chunks), dim))
            for cid, vector, span in sorted(sentences or [], key=lambda s: row_of[s[0]]):
                sent_vecs.append(np.asarray(vector, dtype=np.float32))
                sent_chunk.append(row_of[cid])
                sent_span.append((int(span[0]), int(span[1])))
        return cls(name, dim, article_ids, dates, sources, np.asarray(ptr, dtype=np.int64), chunk_ids,
                   np.asarray(langs, dtype=np.uint8),
                   np.concatenate(vec_blocks) if vec_blocks else np.zeros((0, dim), np.float32),
                   np.asarray(sent_vecs, dtype=np.float32).reshape(len(sent_vecs), dim),
                   np.asarray(sent_chunk, dtype=np.int32), np.asarray(sent_span, dtype=np.int32).reshape(-1, 2),
                   SegmentLexicon.build(tokens), articles=articles, chunks=chunks)

    @classmethod
    def merge(cls, name: str, dim: int, parts: list[tuple[Segment, np.ndarray]]) -> Segment:
        """The live articles (a boolean mask over each part's articles) of several segments, as one."""
        article_ids, dates, sources, ptr, chunk_ids, langs, articles, chunks = [], [], [], [0], [], [], [], []
        vec_blocks, sent_blocks, sent_chunk, sent_span, lex_parts = [], [], [], [], []
        for seg, live_articles in parts:
            live_chunks = seg.chunk_mask(live_articles)
            chunk_rows = np.flatnonzero(live_chunks)
            new_row = np.cumsum(live_chunks) - 1 + len(chunk_ids)
            for a in np.flatnonzero(live_articles):
                article_ids.append(seg.article_ids[a])
                dates.append(seg.dates[a])
                sources.append(seg.sources[a])
                articles.append(seg.article_at(int(a)))
                ptr.append(ptr[-1] + int(seg.article_ptr[a + 1] - seg.article_ptr[a]))
            chunk_ids += [seg.chunk_ids[r] for r in chunk_rows]
            chunks += [seg.chunk_at(int(r)) for r in chunk_rows]
            langs.append(seg.chunk_lang[chunk_rows])
            vec_blocks.append(np.asarray(seg.vectors[chunk_rows]))
            sent_rows = np.flatnonzero(live_chunks[seg.sent_chunk]) if len(seg.sent_chunk) else np.zeros(0, int)
            sent_blocks.append(np.asarray(seg.sent_vectors[sent_rows]))
            sent_chunk.append(new_row[seg.sent_chunk[sent_rows]])
            sent_span.append(seg.sent_span[sent_rows])
            lex_parts.append((seg.lexicon, live_chunks))
        return cls(name, dim, article_ids, dates, sources, np.asarray(ptr, dtype=np.int64), chunk_ids,
                   np.concatenate(langs).astype(np.uint8), np.concatenate(vec_blocks).reshape(-1, dim),
                   np.concatenate(sent_blocks).reshape(-1, dim), np.concatenate(sent_chunk).astype(np.int32),
                   np.concatenate(sent_span).reshape(-1, 2).astype(np.int32), SegmentLexicon.merge(lex_parts),
                   articles=articles, chunks=chunks)

    def build_ann(self, min_vectors: int, hnsw_m: int = 32, ef_construction: int = 80) -> None:
        """HNSW over the chunk and sentence vectors when there are at least `min_vectors` of them: below that,
        exact search is both fast enough and exact."""
        import faiss

        for key, vectors in (("chunks", self.vectors), ("sentences", self.sent_vectors)):
            if len(vectors) >= min_vectors:
                index = faiss.IndexHNSWFlat(self.dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = ef_construction
                index.add(np.ascontiguousarray(vectors, dtype=np.float32))
                self.ann[key] = index

    # ---- persistence --------------------------------------------------------------------------------------
    def write(self, folder: Path) -> dict:
        """Write every file into `folder` (a temporary folder the caller renames into place); the meta record."""
        import faiss

        files = []
        for key, array in (("vectors", self.vectors), ("sentences", self.sent_vectors),
                           ("sentence_chunk", self.sent_chunk), ("sentence_span", self.sent_span),
                           ("article_ptr", self.article_ptr), ("chunk_lang", self.chunk_lang)):
            np.save(folder / f"{key}.npy", np.ascontiguousarray(array))
            files.append(f"{key}.npy")
        for kind, records in (("articles", self._records("articles")), ("chunks", self._records("chunks"))):
            offsets = []
            with open(folder / f"{kind}.jsonl", "wb") as f:
                for record in records:
                    offsets.append(f.tell())
                    f.write(record.model_dump_json().encode("utf-8") + b"\n")
            np.save(folder / f"{kind}.offsets.npy", np.asarray(offsets, dtype=np.int64))
            files += [f"{kind}.jsonl", f"{kind}.offsets.npy"]
        ids = {"articles": self.article_ids, "chunks": self.chunk_ids, "dates": self.dates, "sources": self.sources}
        (folder / "ids.json").write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")
        files.append("ids.json")
        files += self.lexicon.save(folder)
        for key, index in self.ann.items():
            faiss.write_index(index, str(folder / f"ann-{key}.faiss"))
            files.append(f"ann-{key}.faiss")
        for name in files:
            fsync_path(folder / name)
        return {"name": self.name, "articles": len(self.article_ids), "chunks": len(self.chunk_ids),
                "sentences": len(self.sent_chunk), "files": sorted(files),
                "bytes": {name: (folder / name).stat().st_size for name in sorted(files)}}

    @classmethod
    def read(cls, folder: Path, meta: dict, dim: int) -> Segment:
        import faiss

        # A file cut short or replaced shows in its size, checked on every open; `rag index check` compares
        # checksums (reading every byte is for the check, not for a cold start).
        for name, size in meta.get("bytes", {}).items():
            found = (folder / name).stat().st_size if (folder / name).is_file() else None
            if found != size:
                raise ValueError(f"{meta['name']}/{name}: {'missing' if found is None else f'{found} bytes'}, "
                                 f"expected {size}")
        ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))

        def array(key: str) -> np.ndarray:
            return np.load(folder / f"{key}.npy", mmap_mode="r")

        seg = cls(meta["name"], dim, ids["articles"], ids["dates"], ids["sources"], np.load(folder / "article_ptr.npy"),
                  ids["chunks"], np.load(folder / "chunk_lang.npy"), array("vectors"), array("sentences"),
                  np.load(folder / "sentence_chunk.npy"), np.load(folder / "sentence_span.npy"),
                  SegmentLexicon.load(folder), folder=folder)
        for key in ("chunks", "sentences"):
            if f"ann-{key}.faiss" in meta.get("files", []):
                seg.ann[key] = faiss.read_index(str(folder / f"ann-{key}.faiss"))
        found = {"articles": len(seg.article_ids), "chunks": len(seg.chunk_ids), "sentences": len(seg.sent_chunk)}
        shapes = {"vectors": seg.vectors.shape[0], "lexical rows": seg.lexicon.tf.shape[0],
                  "chunk languages": len(seg.chunk_lang), "article pointers": len(seg.article_ptr) - 1}
        for what, count in found.items():
            if count != meta.get(what):
                raise ValueError(f"{meta['name']}: {count} {what}, expected {meta.get(what)}")
        for what, count in shapes.items():
            expected = found["articles"] if what == "article pointers" else found["chunks"]
            if count != expected:
                raise ValueError(f"{meta['name']}: {count} {what}, expected {expected}")
        if seg.sent_vectors.shape[0] != found["sentences"]:
            raise ValueError(f"{meta['name']}: {seg.sent_vectors.shape[0]} sentence vectors, expected {found['sentences']}")
        return seg

    # ---- reading ------------------------------------------------------------------------------------------
    def _records(self, kind: str) -> list:
        if kind == "articles":
            return self._articles if self._articles is not None else [self.article_at(i) for i in range(len(self.article_ids))]
        return self._chunks if self._chunks is not None else [self.chunk_at(i) for i in range(len(self.chunk_ids))]

    def _line(self, kind: str, row: int) -> bytes:
        offsets = self._offsets.get(kind)
        if offsets is None:
            offsets = self._offsets[kind] = np.load(self.folder / f"{kind}.offsets.npy", mmap_mode="r")
        with open(self.folder / f"{kind}.jsonl", "rb") as f:
            f.seek(int(offsets[row]))
            return f.readline()

    def article_at(self, row: int) -> Article:
        if self._articles is not None:
            return self._articles[row]
        return Article.model_validate_json(self._line("articles", row))

    def chunk_at(self, row: int) -> Chunk:
        if self._chunks is not None:
            return self._chunks[row]
        return Chunk.model_validate_json(self._line("chunks", row))

    def chunk_rows(self, article_row: int) -> range:
        return range(int(self.article_ptr[article_row]), int(self.article_ptr[article_row + 1]))

    def chunk_mask(self, live_articles: np.ndarray) -> np.ndarray:
        return live_articles[self.chunk_article] if len(self.chunk_article) else np.zeros(0, dtype=bool)

    def sentence_rows(self, chunk_row: int) -> range:
        return range(int(self.sent_ptr[chunk_row]), int(self.sent_ptr[chunk_row + 1]))
