"""The local index: segments on disk and a commit file that names the live ones (Lucene's design).

Layout of `<index_dir>/`: `seg-NNNNNN/` folders (see segment.py), each written once; `gen-NNNNNN.json` commits,
each listing its segments and the articles removed from them; `CURRENT` names the current commit. A save writes
only what changed (a new segment for the batch, a new commit listing it), then replaces CURRENT with one atomic
rename, so a crash at any point leaves the last commit readable, and its cost grows with the batch, not the
archive. Removing an article marks it deleted in the next commit; merges (`compact`, and a log-structured merge
policy after each save) rewrite segments without their deleted articles. Segments of at least
`ann_min_vectors` vectors carry an HNSW index; smaller ones are searched exactly.

Why not llama-index's FaissVectorStore: it cannot delete, and FaissMapVectorStore reuses `ntotal` as the next id.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from rag.errors import IndexCorrupt, IndexMismatch, IndexNotFound, IndexWriteFailed
from rag.files import folder_written_atomically, fsync_path, write_text_atomic
from rag.records import Article, Chunk
from rag.store.contract import checked_vectors
from rag.store.filters import Filters
from rag.store.lexical import bm25_scores
from rag.store.scoring import blend_sentences
from rag.store.segment import LANGS, Segment

FORMAT_VERSION = 3
KEEP_GENERATIONS = 2


class LocalStore:
    def __init__(self, index_dir: str | Path, embedder_name: str, dim: int = 0, ann_min_vectors: int = 100_000,
                 ann_ef_search: int = 96, merge_factor: int = 10):
        if not embedder_name:
            raise ValueError("embedder_name is required: it guards against mixing vectors of two models")
        self.index_dir = Path(index_dir)
        self.embedder_name = embedder_name
        self.dim = dim
        self.ann_min_vectors = ann_min_vectors
        self.ann_ef_search = ann_ef_search
        self.merge_factor = merge_factor
        self.segments: list[Segment] = []
        self.deleted: dict[str, set[str]] = {}  # segment name -> ids of its articles removed since it was written
        self._where: dict[str, tuple[Segment, int]] = {}  # live article id -> (segment, article row)
        self._pending: dict[str, tuple] = {}  # article id -> (article, chunks, vectors, sentences), unsaved
        self._pending_segment: Segment | None = None
        self._views: list | None = None
        self._generation = 0
        self._next_segment = 1
        self.fallback = ""  # set when a damaged current commit was passed over for an older one
        self.version = 0  # bumps on every change

    # ---- opening ------------------------------------------------------------------------------------------
    @classmethod
    def exists(cls, index_dir: str | Path) -> bool:
        return (Path(index_dir) / "CURRENT").is_file()

    @classmethod
    def open(cls, index_dir: str | Path, embedder_name: str, create: bool = False, **options) -> LocalStore:
        """Open the index at `index_dir`; with `create`, start an empty one if there is none."""
        store = cls(index_dir, embedder_name, **options)
        if not cls.exists(index_dir):
            if create:
                return store
            raise IndexNotFound(index_dir)
        store._load()
        return store

    @classmethod
    def fresh(cls, index_dir: str | Path, embedder_name: str, **options) -> LocalStore:
        """An empty store that, once saved, replaces whatever index is at `index_dir` (a rebuild)."""
        store = cls(index_dir, embedder_name, **options)
        store._generation = max((_number(p) for p in generations(index_dir)), default=0)
        store._next_segment = max((_number(p) for p in Path(index_dir).glob("seg-*")), default=0) + 1
        return store

    def _load(self) -> None:
        """Load the current commit; if it is damaged, the newest intact older one, with a warning (`rag index
        repair` makes that choice permanent)."""
        current = (self.index_dir / "CURRENT").read_text().strip()
        options = dict(ann_min_vectors=self.ann_min_vectors, ann_ef_search=self.ann_ef_search,
                       merge_factor=self.merge_factor)
        try:
            self._load_generation(self.index_dir / current)
            return
        except IndexCorrupt as damaged:
            for older in reversed(generations(self.index_dir)):
                if older.stem >= current:
                    continue
                self.__init__(self.index_dir, self.embedder_name, **options)
                try:
                    self._load_generation(older)
                except IndexCorrupt:
                    continue
                self.fallback = f"{current} is damaged ({damaged.detail}); serving {older.stem}"
                print(f"warning: the index's {self.fallback}: run `rag index repair`", file=sys.stderr)
                return
            raise

    def _load_generation(self, path: Path) -> None:
        path = path.with_suffix("") if path.suffix == ".json" else path
        if path.is_dir():  # a whole-index generation of format 2: read once, written as a segment on next save
            from rag.store.legacy import read_generation

            self._generation = read_generation(self, path)
            return
        try:
            commit = json.loads(path.with_suffix(".json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexCorrupt(self.index_dir, f"{path.name}: {exc}") from exc
        if commit.get("format") != FORMAT_VERSION:
            raise IndexCorrupt(self.index_dir, f"format {commit.get('format')} is not {FORMAT_VERSION}")
        if commit["embedder"] != self.embedder_name:
            raise IndexMismatch(self.index_dir, commit["embedder"], self.embedder_name)
        self.dim = int(commit["dim"])
        self._generation = int(commit["generation"])
        self._next_segment = int(commit["next_segment"])
        for meta in commit["segments"]:
            try:
                segment = Segment.read(self.index_dir / meta["name"], meta, self.dim)
            except Exception as exc:  # noqa: BLE001 - any unreadable part means the same thing to the user
                raise IndexCorrupt(self.index_dir, f"{path.name}: {exc}") from exc
            self.segments.append(segment)
            self.deleted[segment.name] = set(meta.get("deleted", []))
        for segment in self.segments:
            for row, article_id in enumerate(segment.article_ids):
                if article_id not in self.deleted[segment.name]:
                    self._where[article_id] = (segment, row)

    # ---- reading ------------------------------------------------------------------------------------------
    def article(self, article_id: str) -> Article | None:
        if article_id in self._pending:
            return self._pending[article_id][0]
        found = self._where.get(article_id)
        return found[0].article_at(found[1]) if found else None

    def articles(self) -> list[Article]:
        return [seg.article_at(row) for seg, row in self._where.values()] + [r[0] for r in self._pending.values()]

    def chunks_of(self, article_id: str) -> list[Chunk]:
        if article_id in self._pending:
            return list(self._pending[article_id][1])
        found = self._where.get(article_id)
        if not found:
            return []
        seg, row = found
        return [seg.chunk_at(r) for r in seg.chunk_rows(row)]

    def _locate(self, chunk_id: str) -> tuple[Segment, int]:
        article_id = chunk_id.rpartition("#")[0]
        if article_id in self._pending:
            seg = self._pending_view_segment()
            row = seg.article_row[article_id]
        elif article_id in self._where:
            seg, row = self._where[article_id]
        else:
            raise KeyError(chunk_id)
        for r in seg.chunk_rows(row):
            if seg.chunk_ids[r] == chunk_id:
                return seg, r
        raise KeyError(chunk_id)

    def chunk(self, chunk_id: str) -> Chunk:
        seg, row = self._locate(chunk_id)
        return seg.chunk_at(row)

    def chunk_vector(self, chunk_id: str) -> np.ndarray:
        seg, row = self._locate(chunk_id)
        return np.asarray(seg.vectors[row])

    def sentences_of(self, chunk_id: str) -> list[tuple[int, int, np.ndarray]]:
        """The chunk's embedded sentences as (start, end, vector), in reading order."""
        seg, row = self._locate(chunk_id)
        rows = [(int(seg.sent_span[s][0]), int(seg.sent_span[s][1]), np.asarray(seg.sent_vectors[s]))
                for s in seg.sentence_rows(row)]
        return sorted(rows, key=lambda r: r[0])

    def __len__(self) -> int:
        return sum(int(chunk_live.sum()) for _, _, chunk_live, _ in self._live_views())

    # ---- the live view: committed segments minus deletions, plus the unsaved batch --------------------------
    def _pending_view_segment(self) -> Segment:
        if self._pending_segment is None:
            self._pending_segment = Segment.build("pending", self.dim, list(self._pending.values()))
        return self._pending_segment

    def _live_views(self) -> list[tuple[Segment, np.ndarray, np.ndarray, np.ndarray]]:
        """(segment, live articles, live chunks, live sentences) masks for every segment with something live."""
        if self._views is None:
            views = []
            segments = list(self.segments) + ([self._pending_view_segment()] if self._pending else [])
            for seg in segments:
                gone = self.deleted.get(seg.name, ())
                live_articles = np.asarray([a not in gone for a in seg.article_ids], dtype=bool) if gone else \
                    np.ones(len(seg.article_ids), dtype=bool)
                live_chunks = seg.chunk_mask(live_articles)
                live_sentences = live_chunks[seg.sent_chunk] if len(seg.sent_chunk) else np.zeros(0, dtype=bool)
                if live_chunks.any():
                    views.append((seg, live_articles, live_chunks, live_sentences))
            self._views = views
        return self._views

    def _changed(self) -> None:
        self._views = None
        self.version += 1

    @staticmethod
    def _filtered(seg: Segment, live_articles: np.ndarray, filters: Filters | None) -> np.ndarray:
        if not filters:
            return live_articles
        allowed = np.asarray([filters.allows_fields(seg.sources[a], seg.dates[a]) for a in range(len(seg.article_ids))],
                             dtype=bool)
        return live_articles & allowed

    # ---- searching ----------------------------------------------------------------------------------------
    def search(self, vectors: np.ndarray, k: int, sentence_weight: float = 0.0, filters: Filters | None = None,
               exact: bool = False) -> list[list[tuple[str, float]]]:
        """For each query row, up to k (chunk_id, score) pairs, best first. The score is the cosine with the
        chunk, blended with the best cosine among its sentences when `sentence_weight` > 0. Segments with an
        HNSW index are searched approximately unless `exact` (or filters, which select rows exactly)."""
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        views = self._live_views()
        if not views:
            return [[] for _ in range(len(vectors))]
        results = []
        use_sentences = sentence_weight > 0
        per_view = []
        for seg, live_articles, chunk_live, sent_live in views:
            if filters:
                chunk_live = seg.chunk_mask(self._filtered(seg, live_articles, filters))
                sent_live = chunk_live[seg.sent_chunk] if len(seg.sent_chunk) else sent_live
            approximate = not exact and not filters
            chunk_top = _top(seg, "chunks", seg.vectors, chunk_live, vectors, k, approximate, self.ann_ef_search)
            sent_top = _top(seg, "sentences", seg.sent_vectors, sent_live, vectors, 4 * k, approximate,
                            self.ann_ef_search) if use_sentences and len(seg.sent_chunk) else None
            per_view.append((seg, chunk_live, chunk_top, sent_top))
        for q in range(len(vectors)):
            chunk_score: dict[tuple[int, int], float] = {}
            sentence_hits: list[tuple[tuple[int, int], float]] = []
            for v, (seg, _, chunk_top, sent_top) in enumerate(per_view):
                rows, scores = chunk_top[q]
                chunk_score.update({(v, int(r)): float(s) for r, s in zip(rows, scores, strict=True)})
                if sent_top is not None:
                    rows, scores = sent_top[q]
                    sentence_hits += [((v, int(seg.sent_chunk[r])), float(s)) for r, s in zip(rows, scores, strict=True)]
            query = vectors[q]

            def chunk_cosines(keys, query=query):
                return {(v, r): float(np.asarray(per_view[v][0].vectors[r]) @ query) for v, r in keys}

            def best_sentence_cosines(keys, query=query):
                out = {}
                for v, r in keys:
                    seg, rows = per_view[v][0], per_view[v][0].sentence_rows(r)
                    if len(rows):
                        out[(v, r)] = float((np.asarray(seg.sent_vectors[rows.start:rows.stop]) @ query).max())
                return out

            best = blend_sentences(chunk_score, sentence_hits, sentence_weight if use_sentences else 0.0, k,
                                   chunk_cosines, best_sentence_cosines)
            results.append([(per_view[v][0].chunk_ids[r], s) for (v, r), s in best])
        return results

    def search_exact(self, vectors: np.ndarray, k: int, sentence_weight: float = 0.0) -> list[list[tuple[str, float]]]:
        return self.search(vectors, k, sentence_weight, exact=True)

    def lexical_search(self, query_tokens: list[str], k: int, lang: str | None = None,
                       filters: Filters | None = None) -> list[tuple[str, float]]:
        """Up to k (chunk_id, BM25 score) pairs, best first; with `lang`, only passages in that language (a
        lexical match across languages is noise)."""
        views = self._live_views()
        if not views or not query_tokens:
            return []
        scored = bm25_scores([(seg.lexicon, chunk_live) for seg, _, chunk_live, _ in views], query_tokens)
        keys, values = [], []
        for v, ((seg, live_articles, _, _), (rows, scores)) in enumerate(zip(views, scored, strict=True)):
            keep = np.ones(len(rows), dtype=bool)
            if lang is not None:
                keep &= seg.chunk_lang[rows] == LANGS.index(lang)
            if filters:
                keep &= seg.chunk_mask(self._filtered(seg, live_articles, filters))[rows]
            keys += [(v, int(r)) for r in rows[keep]]
            values.append(scores[keep])
        if not keys:
            return []
        values = np.concatenate(values)
        top = np.argsort(-values, kind="stable")[:k]
        return [(views[keys[i][0]][0].chunk_ids[keys[i][1]], float(values[i])) for i in top]

    def size_bytes(self) -> int:
        """Bytes the index folder holds: the segments of the current commit and of the previous one (kept, as
        the previous format kept its previous generation, so a damaged commit can be passed over)."""
        return sum(f.stat().st_size for f in self.index_dir.rglob("*") if f.is_file())

    def describe(self) -> str:
        with_ann = [s for s in self.segments if s.ann]
        return (f"{len(self.segments)} segments" + (f", HNSW on {len(with_ann)}" if with_ann else ", all exact"))

    def stats(self) -> dict:
        dated, sources = [], {}
        for seg, live_articles, _, _ in self._live_views():
            for a in np.flatnonzero(live_articles):
                if seg.dates[a]:
                    dated.append(seg.dates[a])
                key = seg.sources[a] or "(unknown)"
                sources[key] = sources.get(key, 0) + 1
        views = self._live_views()
        articles = sum(int(v[1].sum()) for v in views)
        return {
            "index_dir": str(self.index_dir), "embedder": self.embedder_name, "dim": self.dim,
            "articles": articles, "chunks": sum(int(v[2].sum()) for v in views),
            "sentences": sum(int(v[3].sum()) for v in views), "generation": self._generation,
            "segments": len(self.segments),
            "date_from": min(dated) if dated else None, "date_to": max(dated) if dated else None,
            "undated": articles - len(dated), "sources": sources,
        }

    # ---- writing (in memory until save) -------------------------------------------------------------------
    def put_article(self, article: Article, chunks: list[Chunk], vectors: np.ndarray,
                    sentences: list[tuple[str, np.ndarray, tuple[int, int]]] | None = None) -> None:
        """Add or replace an article with its chunks, their vectors (one row per chunk) and optional
        sentence vectors as (chunk_id, vector, (start, end) in the chunk's text)."""
        vectors = checked_vectors(article, chunks, vectors, sentences)
        if vectors is None:
            vectors = np.zeros((0, self.dim or 0), np.float32)
        else:
            if not self.dim:
                self.dim = vectors.shape[1]
            elif vectors.shape[1] != self.dim:
                raise IndexMismatch(self.index_dir, f"{self.embedder_name} ({self.dim} dims)",
                                    f"a {vectors.shape[1]}-dim embedder")
        self.remove_article(article.id)
        self._pending[article.id] = (article, list(chunks), vectors, list(sentences or []))
        self._pending_segment = None
        self._changed()

    def remove_article(self, article_id: str) -> bool:
        if article_id in self._pending:
            del self._pending[article_id]
            self._pending_segment = None
            self._changed()
            return True
        found = self._where.pop(article_id, None)
        if not found:
            return False
        self.deleted.setdefault(found[0].name, set()).add(article_id)
        self._changed()
        return True

    # ---- persistence --------------------------------------------------------------------------------------
    def save(self) -> Path:
        """Write the unsaved batch as a new segment, merge segments as the policy says, and commit."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self._pending:
                segment = self._write_segment(lambda name: Segment.build(name, self.dim, list(self._pending.values())))
                self.segments.append(segment)
                self.deleted[segment.name] = set()
                for row, article_id in enumerate(segment.article_ids):
                    self._where[article_id] = (segment, row)
                self._pending.clear()
                self._pending_segment = None
            self._merge_by_policy()
            path = self._commit()
        except OSError as exc:  # a full disk, a read-only folder: the last commit stays current
            raise IndexWriteFailed(self.index_dir, exc) from exc
        self._changed()
        self._prune()
        return path

    def compact(self) -> Path:
        """Merge every segment into one without its removed articles (`rag index compact`)."""
        if self._pending:
            self.save()
        if len(self.segments) > 1 or any(self.deleted.values()):
            try:
                self._merge(list(self.segments))
                path = self._commit()
            except OSError as exc:
                raise IndexWriteFailed(self.index_dir, exc) from exc
            self._changed()
            self._prune()
            return path
        return self.index_dir / f"gen-{self._generation:06d}.json"

    def _merge_by_policy(self) -> None:
        """Log-structured merging: segments fall into levels by size (powers of `merge_factor` chunks); when a
        level holds `merge_factor` segments they become one of the next level. Each article is rewritten about
        log(archive) times over its life, and the archive's large segments are left alone by small ingests. A
        segment that has lost half its articles to removals is rewritten too."""
        while True:
            levels: dict[int, list[Segment]] = {}
            for seg in self.segments:
                size = max(1, len(seg))
                levels.setdefault(int(np.log(size) / np.log(self.merge_factor)), []).append(seg)
            full = next((group for _, group in sorted(levels.items()) if len(group) >= self.merge_factor), None)
            if full is None:
                break
            self._merge(full)
        for seg in list(self.segments):
            gone = self.deleted.get(seg.name, set())
            if gone and len(gone) * 2 >= len(seg.article_ids):
                self._merge([seg])

    def _merge(self, group: list[Segment]) -> None:
        parts = []
        for seg in group:
            gone = self.deleted.get(seg.name, set())
            parts.append((seg, np.asarray([a not in gone for a in seg.article_ids], dtype=bool)))
        merged = self._write_segment(lambda name: Segment.merge(name, self.dim, parts))
        position = self.segments.index(group[0])
        self.segments = [s for s in self.segments if s not in group]
        self.segments.insert(min(position, len(self.segments)), merged)
        for seg in group:
            self.deleted.pop(seg.name, None)
        self.deleted[merged.name] = set()
        for row, article_id in enumerate(merged.article_ids):
            self._where[article_id] = (merged, row)

    def _write_segment(self, make) -> Segment:
        """Build a segment, write it to a temporary folder, and rename it into place (not yet committed)."""
        name = f"seg-{self._next_segment:06d}"
        self._next_segment += 1
        segment = make(name)
        segment.build_ann(self.ann_min_vectors)
        final = self.index_dir / name
        with folder_written_atomically(final, prefix=f".{name}.") as tmp:
            meta = segment.write(tmp)
            meta["sha256"] = {f: _sha256(tmp / f) for f in meta["files"]}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            fsync_path(tmp / "meta.json")
        loaded = Segment.read(final, meta, self.dim)  # served from the files from now on, as after a restart
        loaded.ann = segment.ann
        return loaded

    def _commit(self) -> Path:
        generation = self._generation + 1
        name = f"gen-{generation:06d}"
        segments = []
        for seg in self.segments:
            meta = json.loads((self.index_dir / seg.name / "meta.json").read_text())
            segments.append({**meta, "deleted": sorted(self.deleted.get(seg.name, ()))})
        commit = {"format": FORMAT_VERSION, "embedder": self.embedder_name, "dim": self.dim,
                  "generation": generation, "next_segment": self._next_segment, "segments": segments}
        write_text_atomic(self.index_dir / f"{name}.json", json.dumps(commit, ensure_ascii=False, indent=1),
                          durable=True)
        point_current_at(self.index_dir, name)  # the commit point
        self._generation = generation
        return self.index_dir / f"{name}.json"

    def _prune(self) -> None:
        """Keep the last KEEP_GENERATIONS commits and the segments they name; drop what a crash left behind."""
        kept = generations(self.index_dir)[-KEEP_GENERATIONS:]
        needed = set()
        for path in kept:
            if path.is_dir():
                needed.add(path.name)
                continue
            try:
                needed |= {s["name"] for s in json.loads(path.read_text())["segments"]}
            except (OSError, ValueError, KeyError):
                return  # an unreadable commit: prune nothing until `rag index repair`
        for old in generations(self.index_dir)[:-KEEP_GENERATIONS]:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        for seg_dir in self.index_dir.glob("seg-*"):
            if seg_dir.name not in needed:
                shutil.rmtree(seg_dir, ignore_errors=True)
        for stale in [*self.index_dir.glob(".seg-*"), *self.index_dir.glob(".gen-*")]:
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def _top(seg: Segment, key: str, matrix, live: np.ndarray, queries: np.ndarray, k: int, approximate: bool,
         ef_search: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per query, the rows and scores of the k best live rows of `matrix`."""
    n_live = int(live.sum())
    k = min(k, n_live)
    if k == 0:
        return [(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)) for _ in queries]
    index = seg.ann.get(key) if approximate else None
    if index is not None:
        dead = len(live) - n_live
        want = min(len(live), k + dead)
        index.hnsw.efSearch = max(ef_search, want)
        scores, rows = index.search(queries, want)
        out = []
        for s, r in zip(scores, rows, strict=True):
            ok = (r >= 0) & live[np.clip(r, 0, None)]
            out.append((r[ok][:k], s[ok][:k]))
        return out
    scores = np.asarray(matrix) @ queries.T  # rows x queries
    if n_live < len(live):
        scores[~live] = -np.inf
    out = []
    for q in range(len(queries)):
        col = scores[:, q]
        rows = np.argpartition(-col, k - 1)[:k] if k < len(col) else np.arange(len(col))
        rows = rows[np.argsort(-col[rows], kind="stable")]
        out.append((rows, col[rows]))
    return out


def generations(index_dir: str | Path) -> list[Path]:
    """Commits (and whole-index generation folders of format 2), oldest first."""
    paths = [p for p in Path(index_dir).glob("gen-*") if p.suffix == ".json" or p.is_dir()]
    return sorted(paths, key=lambda p: p.stem)


def check_generation(index_dir: str | Path, path: Path, embedder_name: str) -> str:
    """'' when the commit and every segment it names are intact (checksums, structure, counts), else what."""
    if path.suffix == ".json":
        try:
            commit = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            return f"commit unreadable: {exc}"
        for meta in commit.get("segments", []):
            for name, digest in meta.get("sha256", {}).items():
                file = Path(index_dir) / meta["name"] / name
                if not file.is_file():
                    return f"{meta['name']}/{name} is missing"
                if _sha256(file) != digest:
                    return f"{meta['name']}/{name} does not match its checksum"
    store = LocalStore(index_dir, embedder_name)
    try:
        store._load_generation(path)
    except (IndexCorrupt, IndexMismatch) as exc:
        return str(exc.detail if isinstance(exc, IndexCorrupt) else exc)
    return ""


def point_current_at(index_dir: str | Path, name: str) -> None:
    """Make a commit current with one atomic rename (the commit point of every save)."""
    write_text_atomic(Path(index_dir) / "CURRENT", name, durable=True)


def _number(path: Path) -> int:
    digits = path.stem.split("-")[-1]
    return int(digits) if digits.isdigit() else 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
