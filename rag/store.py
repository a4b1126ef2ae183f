"""The index on disk: a FAISS inner-product index with stable ids, plus a docstore of articles and chunks.

Why not llama-index's FaissVectorStore: it cannot delete, and FaissMapVectorStore reuses `ntotal` as the
next id, so an add after a delete collides with a live vector. Here ids only ever grow.

Layout: `<index_dir>/CURRENT` names a generation folder `gen-NNNNNN/` holding manifest.json,
vectors.faiss, sentences.faiss (+ .jsonl owners), articles.jsonl and chunks.jsonl. A save writes a new generation, then replaces
CURRENT with one atomic rename, so a crash at any point leaves the previous index readable.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rag.errors import IndexBusy, IndexCorrupt, IndexMismatch, IndexNotFound, IndexWriteFailed
from rag.records import Article, Chunk

FORMAT_VERSION = 2
KEEP_GENERATIONS = 2


class FaissStore:
    def __init__(self, index_dir: str | Path, embedder_name: str, dim: int = 0):
        if not embedder_name:
            raise ValueError("embedder_name is required: it guards against mixing vectors of two models")
        self.index_dir = Path(index_dir)
        self.embedder_name = embedder_name
        self.dim = dim
        self._articles: dict[str, Article] = {}
        self._chunks: dict[str, Chunk] = {}
        self._chunk_ids_by_article: dict[str, list[str]] = {}
        self._faiss_id_of: dict[str, int] = {}
        self._chunk_of_faiss_id: dict[int, str] = {}
        self._next_id = 0
        self._index = None
        # Sentence vectors sharpen matching (a question is usually answered by one sentence), and help
        # English questions over Arabic text most. Each points at the chunk that holds the sentence.
        self._sent_index = None
        self._sent_owner: dict[int, str] = {}
        self._sent_fids_of: dict[str, list[int]] = {}
        self._sent_span: dict[int, tuple[int, int]] = {}  # offsets in the chunk's text
        self._generation = 0
        self.fallback = ""  # set when a damaged current generation was passed over for an older one
        self.version = 0  # bumps on every change; lets retrievers rebuild derived state (BM25) lazily

    # ---- opening -------------------------------------------------------------------------------
    @classmethod
    def exists(cls, index_dir: str | Path) -> bool:
        return (Path(index_dir) / "CURRENT").is_file()

    @classmethod
    def open(cls, index_dir: str | Path, embedder_name: str, create: bool = False) -> FaissStore:
        """Open the index at `index_dir`; with `create`, start an empty one if there is none."""
        store = cls(index_dir, embedder_name)
        if not cls.exists(index_dir):
            if create:
                return store
            raise IndexNotFound(index_dir)
        store._load()
        return store

    @classmethod
    def fresh(cls, index_dir: str | Path, embedder_name: str) -> FaissStore:
        """An empty store that, once saved, replaces whatever index is at `index_dir` (a rebuild)."""
        store = cls(index_dir, embedder_name)
        gens = [int(p.name.split("-")[1]) for p in Path(index_dir).glob("gen-*") if p.name.split("-")[1].isdigit()]
        store._generation = max(gens, default=0)
        return store

    def _load(self) -> None:
        """Load the current generation; if it is damaged, the newest intact older one, with a warning (`rag index
        repair` makes that choice permanent)."""
        current = (self.index_dir / "CURRENT").read_text().strip()
        try:
            self._load_generation(self.index_dir / current)
            return
        except IndexCorrupt as damaged:
            for older in reversed(generations(self.index_dir)):
                if older.name >= current:
                    continue
                self.__init__(self.index_dir, self.embedder_name)
                try:
                    self._load_generation(older)
                except IndexCorrupt:
                    continue
                self.fallback = f"{current} is damaged ({damaged.detail}); serving {older.name}"
                print(f"warning: the index's {self.fallback}: run `rag index repair`", file=sys.stderr)
                return
            raise

    def _load_generation(self, gen_dir: Path) -> None:
        import faiss

        try:
            manifest = json.loads((gen_dir / "manifest.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexCorrupt(self.index_dir, f"manifest: {exc}") from exc
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexCorrupt(self.index_dir, f"format {manifest.get('format')} is not {FORMAT_VERSION}")
        if manifest["embedder"] != self.embedder_name:
            raise IndexMismatch(self.index_dir, manifest["embedder"], self.embedder_name)
        self.dim = int(manifest["dim"])
        self._next_id = int(manifest["next_id"])
        self._generation = int(manifest["generation"])
        try:
            self._index = faiss.read_index(str(gen_dir / "vectors.faiss"))
            self._sent_index = faiss.read_index(str(gen_dir / "sentences.faiss"))
            with open(gen_dir / "sentences.jsonl", encoding="utf-8") as f:
                for line in f:
                    fid, cid, start, end = json.loads(line)
                    self._sent_owner[fid] = cid
                    self._sent_span[fid] = (start, end)
                    self._sent_fids_of.setdefault(cid, []).append(fid)
            with open(gen_dir / "articles.jsonl", encoding="utf-8") as f:
                for line in f:
                    a = Article.model_validate_json(line)
                    self._articles[a.id] = a
            with open(gen_dir / "chunks.jsonl", encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    fid = row.pop("faiss_id")
                    self._remember(Chunk.model_validate(row), fid)
        except Exception as exc:  # noqa: BLE001 - any unreadable part means the same thing to the user
            raise IndexCorrupt(self.index_dir, str(exc)) from exc
        # A file cut at a line boundary parses: the counts the manifest recorded catch it.
        found = {"articles": len(self._articles), "chunks": len(self._chunks), "sentences": len(self._sent_owner),
                 "vectors": self._index.ntotal, "sentence vectors": self._sent_index.ntotal}
        expected = {"articles": manifest.get("articles"), "chunks": manifest.get("chunks"),
                    "sentences": manifest.get("sentences"), "vectors": len(self._chunks),
                    "sentence vectors": len(self._sent_owner)}
        for what, count in found.items():
            if expected[what] is not None and count != expected[what]:
                raise IndexCorrupt(self.index_dir, f"{gen_dir.name}: {count} {what}, expected {expected[what]}")

    def _remember(self, chunk: Chunk, faiss_id: int) -> None:
        self._chunks[chunk.id] = chunk
        self._faiss_id_of[chunk.id] = faiss_id
        self._chunk_of_faiss_id[faiss_id] = chunk.id
        self._chunk_ids_by_article.setdefault(chunk.article_id, []).append(chunk.id)

    def _ensure_index(self, dim: int) -> None:
        import faiss

        if self._index is None:
            self.dim = dim
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            self._sent_index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        elif dim != self.dim:
            raise IndexMismatch(self.index_dir, f"{self.embedder_name} ({self.dim} dims)", f"a {dim}-dim embedder")

    # ---- reading -------------------------------------------------------------------------------
    def article(self, article_id: str) -> Article | None:
        return self._articles.get(article_id)

    def articles(self) -> list[Article]:
        return list(self._articles.values())

    def chunk(self, chunk_id: str) -> Chunk:
        return self._chunks[chunk_id]

    def chunks(self) -> list[Chunk]:
        return list(self._chunks.values())

    def chunks_of(self, article_id: str) -> list[Chunk]:
        return [self._chunks[c] for c in self._chunk_ids_by_article.get(article_id, [])]

    def chunk_vector(self, chunk_id: str) -> np.ndarray:
        return self._index.reconstruct(self._faiss_id_of[chunk_id])

    def sentences_of(self, chunk_id: str) -> list[tuple[int, int, np.ndarray]]:
        """The chunk's embedded sentences as (start, end, vector), in reading order."""
        fids = self._sent_fids_of.get(chunk_id, [])
        rows = [(*self._sent_span[f], self._sent_index.reconstruct(f)) for f in fids]
        return sorted(rows, key=lambda r: r[0])

    def __len__(self) -> int:
        return len(self._chunks)

    def search(self, vectors: np.ndarray, k: int, sentence_weight: float = 0.0) -> list[list[tuple[str, float]]]:
        """For each query row, up to k (chunk_id, score) pairs, best first. The score is the cosine with
        the chunk, blended with the best cosine among its sentences when `sentence_weight` > 0."""
        if self._index is None or self._index.ntotal == 0:
            return [[] for _ in range(len(vectors))]
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        pool = min(k, self._index.ntotal)
        scores, ids = self._index.search(vectors, pool)
        use_sentences = sentence_weight > 0 and self._sent_index is not None and self._sent_index.ntotal > 0
        if use_sentences:
            s_scores, s_ids = self._sent_index.search(vectors, min(4 * pool, self._sent_index.ntotal))
        results = []
        for row in range(len(vectors)):
            chunk_score = {self._chunk_of_faiss_id[int(i)]: float(s)
                           for s, i in zip(scores[row], ids[row], strict=True) if i >= 0}
            if not use_sentences:
                results.append(sorted(chunk_score.items(), key=lambda x: -x[1]))
                continue
            best_sentence: dict[str, float] = {}
            for s, i in zip(s_scores[row], s_ids[row], strict=True):
                if i >= 0:
                    cid = self._sent_owner[int(i)]
                    best_sentence[cid] = max(best_sentence.get(cid, -1.0), float(s))
            q = vectors[row]
            blended = {}
            for cid in chunk_score.keys() | best_sentence.keys():
                cs = chunk_score.get(cid)
                if cs is None:
                    cs = float(self._index.reconstruct(self._faiss_id_of[cid]) @ q)
                ss = best_sentence.get(cid)
                if ss is None:
                    fids = self._sent_fids_of.get(cid)
                    ss = max(float(self._sent_index.reconstruct(f) @ q) for f in fids) if fids else cs
                blended[cid] = (1 - sentence_weight) * cs + sentence_weight * ss
            results.append(sorted(blended.items(), key=lambda x: -x[1])[:pool])
        return results

    def stats(self) -> dict:
        dated = [a.date for a in self._articles.values() if a.date]
        sources: dict[str, int] = {}
        for a in self._articles.values():
            sources[a.source or "(unknown)"] = sources.get(a.source or "(unknown)", 0) + 1
        return {
            "index_dir": str(self.index_dir), "embedder": self.embedder_name, "dim": self.dim,
            "articles": len(self._articles), "chunks": len(self._chunks), "sentences": len(self._sent_owner),
            "generation": self._generation,
            "date_from": min(dated) if dated else None, "date_to": max(dated) if dated else None,
            "undated": len(self._articles) - len(dated), "sources": sources,
        }

    # ---- writing (in memory until save) --------------------------------------------------------
    def put_article(self, article: Article, chunks: list[Chunk], vectors: np.ndarray,
                    sentences: list[tuple[str, np.ndarray, tuple[int, int]]] | None = None) -> None:
        """Add or replace an article with its chunks, their vectors (one row per chunk) and optional
        sentence vectors as (chunk_id, vector, (start, end) in the chunk's text)."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors for article {article.id!r}")
        if any(c.article_id != article.id for c in chunks):
            raise ValueError(f"chunks passed with article {article.id!r} belong to another article")
        self.remove_article(article.id)
        self._articles[article.id] = article
        self._chunk_ids_by_article[article.id] = []
        if not chunks:
            self.version += 1
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._ensure_index(vectors.shape[1])
        ids = np.arange(self._next_id, self._next_id + len(chunks), dtype=np.int64)
        self._next_id += len(chunks)
        self._index.add_with_ids(vectors, ids)
        for chunk, fid in zip(chunks, ids.tolist(), strict=True):
            self._remember(chunk, fid)
        if sentences:
            known = {c.id for c in chunks}
            if any(cid not in known for cid, _, _ in sentences):
                raise ValueError(f"sentence vectors for article {article.id!r} point at chunks it does not have")
            s_ids = np.arange(self._next_id, self._next_id + len(sentences), dtype=np.int64)
            self._next_id += len(sentences)
            self._sent_index.add_with_ids(np.ascontiguousarray([v for _, v, _ in sentences], dtype=np.float32), s_ids)
            for (cid, _, span), fid in zip(sentences, s_ids.tolist(), strict=True):
                self._sent_owner[fid] = cid
                self._sent_span[fid] = (int(span[0]), int(span[1]))
                self._sent_fids_of.setdefault(cid, []).append(fid)
        self.version += 1

    def remove_article(self, article_id: str) -> bool:
        if article_id not in self._articles:
            return False
        chunk_ids = self._chunk_ids_by_article.pop(article_id, [])
        fids = [self._faiss_id_of.pop(c) for c in chunk_ids]
        if fids:
            self._index.remove_ids(np.array(fids, dtype=np.int64))
        s_fids = [f for c in chunk_ids for f in self._sent_fids_of.pop(c, [])]
        if s_fids:
            self._sent_index.remove_ids(np.array(s_fids, dtype=np.int64))
            for f in s_fids:
                del self._sent_owner[f]
                del self._sent_span[f]
        for c, fid in zip(chunk_ids, fids, strict=True):
            del self._chunks[c]
            del self._chunk_of_faiss_id[fid]
        del self._articles[article_id]
        self.version += 1
        return True

    # ---- persistence ---------------------------------------------------------------------------
    def save(self) -> Path:
        """Write a new generation and switch CURRENT to it atomically; prune old generations."""
        import faiss

        self.index_dir.mkdir(parents=True, exist_ok=True)
        generation = self._generation + 1
        name = f"gen-{generation:06d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.index_dir))
        try:
            if self._index is None:
                self._ensure_index(self.dim or 1)
            faiss.write_index(self._index, str(tmp / "vectors.faiss"))
            faiss.write_index(self._sent_index, str(tmp / "sentences.faiss"))
            with open(tmp / "sentences.jsonl", "w", encoding="utf-8") as f:
                for fid, cid in self._sent_owner.items():
                    f.write(json.dumps([fid, cid, *self._sent_span[fid]], ensure_ascii=False) + "\n")
            with open(tmp / "articles.jsonl", "w", encoding="utf-8") as f:
                for a in self._articles.values():
                    f.write(a.model_dump_json() + "\n")
            with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
                for cid, c in self._chunks.items():
                    f.write(json.dumps({**c.model_dump(), "faiss_id": self._faiss_id_of[cid]}, ensure_ascii=False) + "\n")
            manifest = {"format": FORMAT_VERSION, "embedder": self.embedder_name, "dim": self.dim,
                        "next_id": self._next_id, "generation": generation,
                        "articles": len(self._articles), "chunks": len(self._chunks),
                        "sentences": len(self._sent_owner)}
            manifest["sha256"] = {f.name: _sha256(f) for f in sorted(tmp.iterdir())}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            for f in tmp.iterdir():
                _fsync(f)
            final = self.index_dir / name
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            point_current_at(self.index_dir, name)  # the commit point
        except OSError as exc:  # a full disk, a read-only folder: the last generation stays current
            shutil.rmtree(tmp, ignore_errors=True)
            raise IndexWriteFailed(self.index_dir, exc) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._generation = generation
        self._prune(keep=name)
        return self.index_dir / name

    def _prune(self, keep: str) -> None:
        gens = generations(self.index_dir)
        for old in gens[:-KEEP_GENERATIONS]:
            if old.name != keep:
                shutil.rmtree(old, ignore_errors=True)
        for stale in self.index_dir.glob(".gen-*"):  # temp folders left by a crashed save
            shutil.rmtree(stale, ignore_errors=True)


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


def generations(index_dir: str | Path) -> list[Path]:
    """Committed generation folders, oldest first."""
    return sorted(p for p in Path(index_dir).glob("gen-*") if p.is_dir())


def check_generation(index_dir: str | Path, gen_dir: Path, embedder_name: str) -> str:
    """'' when the generation is intact (checksums, structure, counts), else what is wrong."""
    try:
        manifest = json.loads((gen_dir / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return f"manifest unreadable: {exc}"
    for name, digest in manifest.get("sha256", {}).items():
        path = gen_dir / name
        if not path.is_file():
            return f"{name} is missing"
        if _sha256(path) != digest:
            return f"{name} does not match its checksum"
    store = FaissStore(index_dir, embedder_name)
    try:
        store._load_generation(gen_dir)
    except (IndexCorrupt, IndexMismatch) as exc:
        return str(exc.detail if isinstance(exc, IndexCorrupt) else exc)
    return ""


def point_current_at(index_dir: str | Path, name: str) -> None:
    """Make a generation current with one atomic rename (the same commit point as a save)."""
    index_dir = Path(index_dir)
    pointer = index_dir / ".CURRENT.tmp"
    pointer.write_text(name)
    _fsync(pointer)
    os.replace(pointer, index_dir / "CURRENT")


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
