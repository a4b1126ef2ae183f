import os

import numpy as np
import pytest

from rag.errors import IndexCorrupt, IndexMismatch, IndexNotFound, IndexWriteFailed
from rag.records import Article, Chunk
from rag.store import FaissStore


def _put(store, article_id, texts, embedder):
    article = Article(id=article_id, text=" ".join(texts), content_hash=article_id)
    chunks = [Chunk(id=f"{article_id}#{i}", article_id=article_id, n=i, text=t, start=0, end=len(t))
              for i, t in enumerate(texts)]
    store.put_article(article, chunks, embedder.embed_passages(texts))


def test_search_returns_the_matching_chunk(tmp_path, embedder):
    store = FaissStore(tmp_path, embedder.name)
    _put(store, "a", ["قصف على الحدود", "اجتماع في بغداد"], embedder)
    _put(store, "b", ["أسعار النفط ترتفع"], embedder)
    [hits] = store.search(embedder.embed_queries(["أسعار النفط"]), k=2)
    assert hits[0][0] == "b#0"


def test_ids_are_never_reused_after_delete(tmp_path, embedder):
    # llama-index's FaissMapVectorStore uses ntotal as the next id, so this sequence collides there.
    store = FaissStore(tmp_path, embedder.name)
    _put(store, "a", ["one", "two", "three"], embedder)
    store.remove_article("a")
    _put(store, "b", ["four"], embedder)
    _put(store, "c", ["five", "six"], embedder)
    [hits] = store.search(embedder.embed_queries(["four"]), k=10)
    assert {cid for cid, _ in hits} == {"b#0", "c#0", "c#1"}
    assert hits[0][0] == "b#0"


def test_save_and_reopen_round_trip_with_sentences(tmp_path, embedder):
    store = FaissStore(tmp_path, embedder.name)
    article = Article(id="a", text="x y", content_hash="h")
    chunk = Chunk(id="a#0", article_id="a", n=0, text="x y", start=0, end=3)
    store.put_article(article, [chunk], embedder.embed_passages(["x y"]), [("a#0", embedder.embed_passages(["x"])[0], (0, 1))])
    store.save()
    again = FaissStore.open(tmp_path, embedder.name)
    assert again.article("a").content_hash == "h" and again.chunk("a#0").text == "x y"
    assert again.stats()["sentences"] == 1
    [(start, end, vector)] = again.sentences_of("a#0")
    assert (start, end) == (0, 1) and vector.shape == (embedder.dim,)
    assert again.search(embedder.embed_queries(["x"]), k=1, sentence_weight=0.5)[0][0][0] == "a#0"


def test_remove_then_save_persists(tmp_path, embedder):
    store = FaissStore(tmp_path, embedder.name)
    _put(store, "a", ["alpha"], embedder)
    _put(store, "b", ["beta"], embedder)
    store.save()
    store.remove_article("a")
    store.save()
    again = FaissStore.open(tmp_path, embedder.name)
    assert [a.id for a in again.articles()] == ["b"] and len(again) == 1


def test_crash_during_save_leaves_previous_index_intact(tmp_path, embedder, monkeypatch):
    store = FaissStore(tmp_path, embedder.name)
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
    again = FaissStore.open(tmp_path, embedder.name)
    assert [a.id for a in again.articles()] == ["a"]


def test_crash_while_writing_vectors_leaves_previous_index_and_no_temp(tmp_path, embedder, monkeypatch):
    import faiss

    store = FaissStore(tmp_path, embedder.name)
    _put(store, "a", ["alpha"], embedder)
    store.save()
    _put(store, "b", ["beta"], embedder)
    monkeypatch.setattr(faiss, "write_index", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(IndexWriteFailed, match="disk full"):
        store.save()
    assert not list(tmp_path.glob(".gen-*"))
    assert [a.id for a in FaissStore.open(tmp_path, embedder.name).articles()] == ["a"]


def test_mismatched_embedder_is_refused(tmp_path, embedder):
    store = FaissStore(tmp_path, embedder.name)
    _put(store, "a", ["alpha"], embedder)
    store.save()
    with pytest.raises(IndexMismatch, match="rag ingest --rebuild"):
        FaissStore.open(tmp_path, "st:another-model")


def test_a_mismatch_names_the_setting_that_built_the_index():
    assert "RAG_EMBED_RUNTIME=torch" in str(IndexMismatch("index", "st:multilingual-e5-small", "onnx-q8:e5"))
    assert "RAG_EMBED_RUNTIME=onnx" in str(IndexMismatch("index", "onnx-q8:e5", "st:e5"))


def test_dimension_mismatch_is_refused(tmp_path, embedder):
    store = FaissStore(tmp_path, embedder.name)
    _put(store, "a", ["alpha"], embedder)
    chunk = Chunk(id="b#0", article_id="b", n=0, text="b", start=0, end=1)
    with pytest.raises(IndexMismatch):
        store.put_article(Article(id="b", text="b"), [chunk], np.ones((1, 8), dtype=np.float32))


def test_missing_index_says_how_to_build_it(tmp_path, embedder):
    with pytest.raises(IndexNotFound, match="rag ingest seeds/"):
        FaissStore.open(tmp_path / "nope", embedder.name)


def test_corrupt_index_is_reported(tmp_path, embedder):
    store = FaissStore(tmp_path, embedder.name)
    _put(store, "a", ["alpha"], embedder)
    gen = store.save()
    (gen / "vectors.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexCorrupt, match="rebuild"):
        FaissStore.open(tmp_path, embedder.name)


def test_old_generations_are_pruned(tmp_path, embedder):
    store = FaissStore(tmp_path, embedder.name)
    for i in range(5):
        _put(store, f"a{i}", ["alpha"], embedder)
        store.save()
    assert len(list(tmp_path.glob("gen-*"))) == 2


def test_put_article_validates_its_arguments(tmp_path, embedder):
    store = FaissStore(tmp_path, embedder.name)
    chunk = Chunk(id="x#0", article_id="x", n=0, text="t", start=0, end=1)
    with pytest.raises(ValueError, match="belong to another article"):
        store.put_article(Article(id="a", text="t"), [chunk], embedder.embed_passages(["t"]))
    with pytest.raises(ValueError, match="1 chunks but 2 vectors"):
        store.put_article(Article(id="x", text="t"), [chunk], embedder.embed_passages(["t", "u"]))
