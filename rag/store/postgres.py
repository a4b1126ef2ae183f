"""The index in PostgreSQL with pgvector: one database that many app processes on many machines share.

Tables (in the schema RAG_PG_SCHEMA): articles; chunks with their vector (HNSW, inner product), language and a
tsvector of our own normalised, stemmed tokens with positions (the `simple` parser never sees raw Arabic);
postings (term, chunk, count) from the same tokens, which BM25 reads through its primary key; sentences with their
vector (HNSW). Date and
outlet are indexed columns, and every value is bound, never formatted into SQL. Lexical search is the same Okapi
BM25 as the local index, computed in SQL from the postings with statistics over every passage, and
dense search blends passage and sentence cosines with the same code (rag/store/scoring.py), so the two backends
rank alike. Writes made before `save` form one transaction: an ingest batch, and each article in it, commits whole
or not at all.

Why not llama-index-vector-stores-postgres: its hybrid mode concatenates dense and text hits without fusing them,
and it builds metadata filters into SQL with string formatting (values not escaped).
"""

from __future__ import annotations

import re
import threading
from collections import Counter

import numpy as np

from rag.errors import IndexMismatch, IndexNotFound, RagError
from rag.records import Article, Chunk
from rag.store.contract import checked_vectors
from rag.store.filters import Filters
from rag.store.lexical import K1, B
from rag.store.scoring import blend_sentences

FORMAT_VERSION = 1
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailable(RagError):
    def __init__(self, dsn: str, cause: Exception):
        super().__init__(f"could not use PostgreSQL at {_redact(dsn)} ({str(cause).strip().splitlines()[0][:200]}): "
                         "check RAG_PG_DSN, that the server is running and that the pgvector extension is installed "
                         "(`create extension vector`, package postgresql-17-pgvector on Debian 13)")


def _redact(dsn: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)


def _array(value) -> np.ndarray:
    """A pgvector value as float32 (pgvector's Python type, or a plain sequence)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def _tsvector(tokens: list[str]) -> str:
    """A tsvector literal of our tokens with their positions (term counts come from them)."""
    positions: dict[str, list[int]] = {}
    for i, t in enumerate(tokens[:16383], start=1):  # Postgres keeps positions up to 16383
        positions.setdefault(t, []).append(i)
    return " ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "':" + ",".join(map(str, p[:256]))
                    for t, p in positions.items())


class PostgresStore:
    def __init__(self, dsn: str, embedder_name: str, schema: str = "rag", dim: int = 0, ann_ef_search: int = 96):
        if not embedder_name:
            raise ValueError("embedder_name is required: it guards against mixing vectors of two models")
        if not _SCHEMA_NAME.match(schema):
            raise RagError(f"RAG_PG_SCHEMA must be a plain lower-case name (letters, digits, _), got {schema!r}")
        import psycopg
        from pgvector.psycopg import register_vector

        self.dsn, self.schema, self.embedder_name, self.dim = dsn, schema, embedder_name, dim
        self.ann_ef_search = ann_ef_search
        self.index_dir = f"postgres:{_redact(dsn)}/{schema}"
        self.fallback = ""
        self.version = 0
        self._lock = threading.RLock()
        self._tx = None
        try:
            self._conn = psycopg.connect(dsn, autocommit=True)
            self._conn.execute("create extension if not exists vector")
            register_vector(self._conn)
        except psycopg.Error as exc:
            raise PostgresUnavailable(dsn, exc) from exc

    # ---- opening ------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, dsn: str, embedder_name: str, create: bool = False, schema: str = "rag",
             ann_ef_search: int = 96) -> PostgresStore:
        store = cls(dsn, embedder_name, schema, ann_ef_search=ann_ef_search)
        meta = store._meta()
        if meta is None:
            if not create:
                raise IndexNotFound(store.index_dir)
            return store
        if meta["embedder"] != embedder_name:
            raise IndexMismatch(store.index_dir, meta["embedder"], embedder_name)
        store.dim = int(meta["dim"])
        return store

    @classmethod
    def fresh(cls, dsn: str, embedder_name: str, schema: str = "rag", ann_ef_search: int = 96) -> PostgresStore:
        """An empty index: the schema's tables are dropped in the same transaction that saves the first batch."""
        store = cls(dsn, embedder_name, schema, ann_ef_search=ann_ef_search)
        store._begin()
        store._sql(f"drop schema if exists {schema} cascade")
        return store

    def _meta(self) -> dict | None:
        row = self._sql("select to_regclass(%s)", (f"{self.schema}.meta",)).fetchone()
        if row[0] is None:
            return None
        return dict(self._sql(f"select key, value from {self.schema}.meta").fetchall())

    def _create(self, dim: int) -> None:
        s = self.schema
        for statement in (
            f"create schema if not exists {s}",
            f"create table {s}.meta (key text primary key, value text not null)",
            f"""create table {s}.articles (id text primary key, title text not null, date text not null,
                source text not null, url text not null, origin text not null, content_hash text not null,
                text text not null)""",
            f"create index on {s}.articles (date)",
            f"create index on {s}.articles (lower(source))",
            f"""create table {s}.chunks (id text primary key, article_id text not null references {s}.articles (id)
                on delete cascade, n int not null, text text not null, start_at int not null, end_at int not null,
                lang text not null, length int not null, tokens tsvector not null, embedding vector({dim}) not null)""",
            f"create index on {s}.chunks (article_id)",
            f"create index on {s}.chunks using hnsw (embedding vector_ip_ops)",
            # length and language repeated from the chunk, so BM25 reads the postings alone (no join per posting)
            f"""create table {s}.postings (term text not null, chunk_id text not null references {s}.chunks (id)
                on delete cascade, tf int not null, length int not null, lang text not null,
                primary key (term, chunk_id))""",
            f"create index on {s}.postings (chunk_id)",
            f"""create table {s}.sentences (id bigserial primary key, chunk_id text not null references {s}.chunks (id)
                on delete cascade, start_at int not null, end_at int not null, embedding vector({dim}) not null)""",
            f"create index on {s}.sentences (chunk_id)",
            f"create index on {s}.sentences using hnsw (embedding vector_ip_ops)",
        ):
            self._sql(statement)
        self._sql(f"insert into {s}.meta values ('format', %s), ('embedder', %s), ('dim', %s), ('generation', '0')",
                  (str(FORMAT_VERSION), self.embedder_name, str(dim)))

    # ---- plumbing -----------------------------------------------------------------------------------------
    def _sql(self, query: str, params=None):
        import psycopg

        with self._lock:
            try:
                return self._conn.execute(query, params)
            except psycopg.OperationalError as exc:
                raise PostgresUnavailable(self.dsn, exc) from exc

    def _begin(self) -> None:
        """Open the batch's transaction at the first write; `save` commits it."""
        if self._tx is None:
            self._tx = self._conn.transaction()
            self._tx.__enter__()

    def _ready(self) -> bool:
        return self._meta() is not None

    # ---- reading ------------------------------------------------------------------------------------------
    _ARTICLE = "id, text, title, date, source, url, origin, content_hash"
    _CHUNK = "id, article_id, n, text, start_at, end_at"

    @staticmethod
    def _article(row) -> Article:
        return Article(id=row[0], text=row[1], title=row[2], date=row[3], source=row[4], url=row[5], origin=row[6],
                       content_hash=row[7])

    @staticmethod
    def _chunk(row) -> Chunk:
        return Chunk(id=row[0], article_id=row[1], n=row[2], text=row[3], start=row[4], end=row[5])

    def article(self, article_id: str) -> Article | None:
        if not self._ready():
            return None
        row = self._sql(f"select {self._ARTICLE} from {self.schema}.articles where id = %s", (article_id,)).fetchone()
        return self._article(row) if row else None

    def articles(self) -> list[Article]:
        if not self._ready():
            return []
        return [self._article(r) for r in self._sql(f"select {self._ARTICLE} from {self.schema}.articles order by id")]

    def chunk(self, chunk_id: str) -> Chunk:
        row = self._sql(f"select {self._CHUNK} from {self.schema}.chunks where id = %s", (chunk_id,)).fetchone() \
            if self._ready() else None
        if row is None:
            raise KeyError(chunk_id)
        return self._chunk(row)

    def chunks_of(self, article_id: str) -> list[Chunk]:
        if not self._ready():
            return []
        return [self._chunk(r) for r in self._sql(
            f"select {self._CHUNK} from {self.schema}.chunks where article_id = %s order by n", (article_id,))]

    def chunk_vector(self, chunk_id: str) -> np.ndarray:
        row = self._sql(f"select embedding from {self.schema}.chunks where id = %s", (chunk_id,)).fetchone()
        if row is None:
            raise KeyError(chunk_id)
        return _array(row[0])

    def sentences_of(self, chunk_id: str) -> list[tuple[int, int, np.ndarray]]:
        rows = self._sql(f"select start_at, end_at, embedding from {self.schema}.sentences where chunk_id = %s "
                         "order by start_at, id", (chunk_id,))
        return [(r[0], r[1], _array(r[2])) for r in rows]

    def __len__(self) -> int:
        return self._sql(f"select count(*) from {self.schema}.chunks").fetchone()[0] if self._ready() else 0

    # ---- searching ----------------------------------------------------------------------------------------
    def _where(self, filters: Filters | None, alias: str = "a") -> tuple[str, list]:
        """A WHERE clause for the filters, every value bound."""
        if not filters:
            return "", []
        clauses, params = [], []
        if filters.source:
            clauses.append(f"strpos(lower({alias}.source), lower(%s)) > 0")
            params.append(filters.source)
        if filters.since or filters.until:
            clauses.append(f"{alias}.date <> ''")
        if filters.since:
            clauses.append(f"{alias}.date >= %s")
            params.append(filters.since)
        if filters.until:
            clauses.append(f"{alias}.date <= %s")
            params.append(filters.until)
        return " and ".join(clauses), params

    def search(self, vectors: np.ndarray, k: int, sentence_weight: float = 0.0, filters: Filters | None = None,
               exact: bool = False) -> list[list[tuple[str, float]]]:
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if not self._ready():
            return [[] for _ in vectors]
        s = self.schema
        where, params = self._where(filters)
        join = f"join {s}.articles a on a.id = c.article_id where {where}" if where else ""
        with self._lock:
            self._sql(f"set hnsw.ef_search = {int(max(self.ann_ef_search, 4 * k))}")
            self._sql("set hnsw.iterative_scan = strict_order")  # filtered searches still return k rows
            self._sql(f"set enable_indexscan = {'off' if exact else 'on'}")
            results = []
            for q in vectors:
                chunks = dict(self._sql(
                    f"select c.id, -(c.embedding <#> %s) from {s}.chunks c {join} order by c.embedding <#> %s limit %s",
                    (q, *params, q, k)).fetchall())
                sentence_hits = []
                if sentence_weight > 0:
                    sentence_join = (f"join {s}.chunks c on c.id = t.chunk_id join {s}.articles a on a.id = c.article_id "
                                     f"where {where}") if where else ""
                    sentence_hits = self._sql(
                        f"select t.chunk_id, -(t.embedding <#> %s) from {s}.sentences t {sentence_join} "
                        "order by t.embedding <#> %s limit %s", (q, *params, q, 4 * k)).fetchall()

                def chunk_cosines(ids, q=q):
                    return dict(self._sql(f"select id, -(embedding <#> %s) from {s}.chunks where id = any(%s)",
                                          (q, ids)).fetchall())

                def best_sentence_cosines(ids, q=q):
                    return dict(self._sql(f"select chunk_id, max(-(embedding <#> %s)) from {s}.sentences "
                                          "where chunk_id = any(%s) group by chunk_id", (q, ids)).fetchall())

                results.append(blend_sentences(chunks, sentence_hits, sentence_weight, k, chunk_cosines,
                                               best_sentence_cosines))
            self._sql("set enable_indexscan = on")
        return results

    def search_exact(self, vectors: np.ndarray, k: int, sentence_weight: float = 0.0) -> list[list[tuple[str, float]]]:
        return self.search(vectors, k, sentence_weight, exact=True)

    def lexical_search(self, query_tokens: list[str], k: int, lang: str | None = None,
                       filters: Filters | None = None) -> list[tuple[str, float]]:
        """Okapi BM25 in SQL over the postings of the query's terms, statistics over every passage."""
        terms = list(dict.fromkeys(query_tokens))
        if not terms or not self._ready():
            return []
        s = self.schema
        where, params = self._where(filters)
        conditions = (["p.lang = %s"] if lang else []) + ([where] if where else [])
        joins = f"join {s}.chunks c on c.id = p.chunk_id join {s}.articles a on a.id = c.article_id" if where else ""
        rows = self._sql(f"""
            with stats as (select count(*)::float8 as n, avg(length)::float8 as avg_len from {s}.chunks),
                 df as (select term, count(*)::float8 as df from {s}.postings where term = any(%s) group by term)
            select p.chunk_id, sum(ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5)) * p.tf * {K1 + 1}
                                   / (p.tf + {K1} * (1 - {B} + {B} * p.length / stats.avg_len))) as score
            from {s}.postings p join df on df.term = p.term {joins}, stats
            {'where ' + ' and '.join(conditions) if conditions else ''}
            group by p.chunk_id order by score desc, p.chunk_id limit %s""",
                         (terms, *([lang] if lang else []), *params, k)).fetchall()
        return [(cid, float(score)) for cid, score in rows]

    def size_bytes(self) -> int:
        """Bytes the index's tables and their indexes take in the database."""
        if not self._ready():
            return 0
        return int(self._sql("select sum(pg_total_relation_size(format('%%I.%%I', %s::text, t)::regclass)) "
                             "from unnest(array['articles', 'chunks', 'postings', 'sentences']) t",
                             (self.schema,)).fetchone()[0])

    def describe(self) -> str:
        return "PostgreSQL + pgvector (HNSW)"

    def stats(self) -> dict:
        base = {"index_dir": self.index_dir, "embedder": self.embedder_name, "dim": self.dim, "articles": 0,
                "chunks": 0, "sentences": 0, "generation": 0, "segments": 0, "date_from": None, "date_to": None,
                "undated": 0, "sources": {}}
        if not self._ready():
            return base
        s = self.schema
        articles, dated_from, dated_to, undated = self._sql(
            f"select count(*), min(nullif(date, '')), max(nullif(date, '')), count(*) filter (where date = '') "
            f"from {s}.articles").fetchone()
        sources = dict(self._sql(f"select coalesce(nullif(source, ''), '(unknown)'), count(*) from {s}.articles "
                                 "group by 1").fetchall())
        return {**base, "articles": articles, "chunks": len(self),
                "sentences": self._sql(f"select count(*) from {s}.sentences").fetchone()[0],
                "generation": int(self._meta()["generation"]), "date_from": dated_from, "date_to": dated_to,
                "undated": undated, "sources": sources}

    def generation(self) -> str:
        return self._meta()["generation"] if self._ready() else ""

    # ---- writing (one transaction until save) -------------------------------------------------------------
    def put_article(self, article: Article, chunks: list[Chunk], vectors: np.ndarray,
                    sentences: list[tuple[str, np.ndarray, tuple[int, int]]] | None = None) -> None:
        from rag.arabic import detect_language, tokenize_for_search

        vectors = checked_vectors(article, chunks, vectors, sentences)
        with self._lock:
            self._begin()
            if not self._ready():
                if vectors is None:
                    raise RagError(f"article {article.id!r} has no passages and the index is empty: nothing to store")
                self.dim = vectors.shape[1]
                self._create(self.dim)
            if vectors is not None and vectors.shape[1] != self.dim:
                raise IndexMismatch(self.index_dir, f"{self.embedder_name} ({self.dim} dims)",
                                    f"a {vectors.shape[1]}-dim embedder")
            s = self.schema
            self._sql(f"delete from {s}.articles where id = %s", (article.id,))
            self._sql(f"insert into {s}.articles (id, text, title, date, source, url, origin, content_hash) "
                      "values (%s, %s, %s, %s, %s, %s, %s, %s)",
                      (article.id, article.text, article.title, article.date, article.source, article.url,
                       article.origin, article.content_hash))
            with self._conn.cursor() as cur:
                if chunks:
                    rows = []
                    for c, v in zip(chunks, vectors, strict=True):
                        tokens = tokenize_for_search(c.text)
                        rows.append((c.id, c.article_id, c.n, c.text, c.start, c.end, detect_language(c.text),
                                     len(tokens), _tsvector(tokens), v, Counter(tokens)))
                    cur.executemany(f"insert into {s}.chunks (id, article_id, n, text, start_at, end_at, lang, length, "
                                    "tokens, embedding) values (%s, %s, %s, %s, %s, %s, %s, %s, %s::tsvector, %s)",
                                    [r[:-1] for r in rows])
                    cur.executemany(f"insert into {s}.postings (term, chunk_id, tf, length, lang) "
                                    "values (%s, %s, %s, %s, %s)",
                                    [(term, row[0], n, row[7], row[6]) for row in rows for term, n in row[-1].items()])
                if sentences:
                    cur.executemany(f"insert into {s}.sentences (chunk_id, start_at, end_at, embedding) "
                                    "values (%s, %s, %s, %s)",
                                    [(cid, int(span[0]), int(span[1]), np.asarray(v, dtype=np.float32))
                                     for cid, v, span in sentences])
            self.version += 1

    def remove_article(self, article_id: str) -> bool:
        if not self._ready():
            return False
        with self._lock:
            self._begin()
            removed = self._sql(f"delete from {self.schema}.articles where id = %s", (article_id,)).rowcount > 0
            self.version += removed
            return removed

    def save(self) -> str:
        """Commit the batch (and bump the generation other processes watch)."""
        with self._lock:
            if self._tx is None:
                return self.index_dir
            if self._ready():
                self._sql(f"update {self.schema}.meta set value = (value::int + 1)::text where key = 'generation'")
            tx, self._tx = self._tx, None
            tx.__exit__(None, None, None)
        return self.index_dir

    def compact(self) -> str:
        """Postgres reclaims removed rows itself (autovacuum); this runs it now and refreshes the planner's view."""
        self.save()
        if self._ready():
            for table in ("articles", "chunks", "postings", "sentences"):
                self._sql(f"vacuum analyze {self.schema}.{table}")
        return self.index_dir

    def drop_vector_indexes(self) -> None:
        """Drop the HNSW indexes (benchmarks: what inserts cost without them; dense search then scans)."""
        for (name,) in self._sql("select indexname from pg_indexes where schemaname = %s and indexdef like %s",
                                 (self.schema, "%hnsw%")).fetchall():
            self._sql(f'drop index {self.schema}."{name}"')

    def drop(self) -> None:
        """Remove the schema and everything in it (scratch indexes of benchmarks)."""
        self._sql(f"drop schema if exists {self.schema} cascade")
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._tx is not None:
                tx, self._tx = self._tx, None
                tx.__exit__(RuntimeError, RuntimeError("closed before save"), None)  # rolls back
            self._conn.close()
