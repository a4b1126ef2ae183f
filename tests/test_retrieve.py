import math

import numpy as np
import pytest

from rag.errors import BadInput
from rag.records import Article, Chunk
from rag.retrieve import Filters, HybridRetriever
from rag.store import LocalStore
from rag.store.lexical import SegmentLexicon, bm25_scores

DOCS = {
    "strike": ("قتل 5 من عناصر الفصائل المسلحة بقصف أمريكي على الحدود", "2021-06-28", "الترا عراق"),
    "ultimatum": ("أمهلت عصائب أهل الحق الحكومة 48 ساعة للإفراج عن عناصرها", "2020-12-26", ""),
    "oil": ("The oil price rose sharply in London trading today", "2021-07-10", "Reuters"),
}


@pytest.fixture
def store(tmp_path, embedder):
    store = LocalStore(tmp_path, embedder.name)
    for aid, (text, date, source) in DOCS.items():
        store.put_article(Article(id=aid, text=text, date=date, source=source, title=aid),
                          [Chunk(id=f"{aid}#0", article_id=aid, n=0, text=text, start=0, end=len(text))],
                          embedder.embed_passages([text]))
    return store


def test_hybrid_finds_the_arabic_article(store, embedder):
    hits = HybridRetriever(store, embedder).retrieve("كم ساعة أمهلت عصائب أهل الحق الحكومة؟")
    assert hits[0].article_id == "ultimatum"
    assert hits[0].rank == 1 and hits[0].title == "ultimatum" and hits[0].text.startswith("أمهلت")


def test_bm25_alone_handles_vowelled_and_prefixed_words(store, embedder):
    hits = HybridRetriever(store, embedder, mode="bm25").retrieve("بالقَصْف الأمريكيّ")
    assert hits[0].article_id == "strike"


def test_lexical_does_not_vote_across_languages(store, embedder):
    retriever = HybridRetriever(store, embedder)
    hits = retriever.retrieve("oil price London")
    assert hits[0].article_id == "oil" and "bm25" in hits[0].scores  # English passage: BM25 votes
    hits = retriever.retrieve("strike killed fighters border")
    assert all("bm25" not in h.scores for h in hits if h.article_id != "oil")


def test_filters_by_source_and_dates(store, embedder):
    r = HybridRetriever(store, embedder)
    assert {h.article_id for h in r.retrieve("قصف", filters=Filters(source="الترا"))} == {"strike"}
    assert {h.article_id for h in r.retrieve("قصف", filters=Filters(since="2021-01-01"))} == {"strike", "oil"}
    assert {h.article_id for h in r.retrieve("قصف", filters=Filters(until="2020-12-31"))} == {"ultimatum"}


def test_bm25_is_rebuilt_after_the_store_changes(store, embedder):
    r = HybridRetriever(store, embedder, mode="bm25")
    assert r.retrieve("كربلاء") == []
    text = "زيارة إلى كربلاء"
    store.put_article(Article(id="new", text=text), [Chunk(id="new#0", article_id="new", n=0, text=text, start=0,
                                                           end=len(text))], embedder.embed_passages([text]))
    assert r.retrieve("كربلاء")[0].article_id == "new"


@pytest.mark.parametrize("question", ["", "   ", "س" * 100_001])  # the service's own cap is a setting (test_api)
def test_bad_questions_get_clear_errors(store, embedder, question):
    with pytest.raises(BadInput, match="empty|limit"):
        HybridRetriever(store, embedder).retrieve(question)


@pytest.mark.parametrize("kwargs, bad", [({"top_k": 0}, "top_k"), ({"candidates": 2, "top_k": 5}, "candidates"),
                                         ({"mode": "magic"}, "mode"), ({"bm25_weight": -1}, "bm25_weight"),
                                         ({"sentence_weight": 2}, "sentence_weight"), ({"fusion": "x"}, "fusion")])
def test_constructor_names_the_bad_value(store, embedder, kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        HybridRetriever(store, embedder, **kwargs)


def _okapi(docs, query, k1=1.2, b=0.75):
    """Okapi BM25 written out plainly: the scores the lexical index must keep."""
    n, avg = len(docs), sum(map(len, docs)) / len(docs)
    out = {}
    for i, doc in enumerate(docs):
        score = 0.0
        for term in set(query):
            df = sum(term in d for d in docs)
            tf = doc.count(term)
            if tf:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / avg))
        if score:
            out[i] = score
    return out


def _scores(parts, query):
    found = {}
    offset = 0
    for (_lex, live), (rows, scores) in zip(parts, bm25_scores(parts, query), strict=True):
        found.update({offset + int(r): float(s) for r, s in zip(rows, scores, strict=True)})
        offset += len(live)
    return found


LEXICAL_DOCS = [["a", "b"], ["a", "c"], ["a", "a", "d"], ["c", "d", "e"], ["b", "b", "c", "a"]]


def test_bm25_scores_rank_the_rarer_term_higher():
    parts = [(SegmentLexicon.build(LEXICAL_DOCS), np.ones(len(LEXICAL_DOCS), dtype=bool))]
    scores = _scores(parts, ["d"])
    assert set(scores) == {2, 3}
    both = _scores(parts, ["a", "e"])
    assert both[3] > both[0]  # e is in one passage, a in four


@pytest.mark.parametrize("split", [1, 2, 4])
def test_bm25_scores_are_okapi_whatever_the_segments(split):
    # A passage's score must not depend on which segment it landed in: collection statistics span them all.
    parts = [(SegmentLexicon.build(LEXICAL_DOCS[i:i + split]), np.ones(len(LEXICAL_DOCS[i:i + split]), dtype=bool))
             for i in range(0, len(LEXICAL_DOCS), split)]
    for query in (["a"], ["c", "d"], ["a", "b", "e"], ["zzz"]):
        expected = _okapi(LEXICAL_DOCS, query)
        assert _scores(parts, query) == pytest.approx(expected)


def test_bm25_statistics_forget_removed_passages_at_once():
    live = np.array([True, True, False, True, True])
    parts = [(SegmentLexicon.build(LEXICAL_DOCS), live)]
    kept = [d for d, alive in zip(LEXICAL_DOCS, live, strict=True) if alive]
    expected = _okapi(kept, ["c"])
    got = _scores(parts, ["c"])
    assert 2 not in got
    assert [got[i] for i in (1, 3, 4)] == pytest.approx([expected[i] for i in (1, 2, 3)])
    merged = SegmentLexicon.merge(parts)
    assert _scores([(merged, np.ones(4, dtype=bool))], ["c"]) == pytest.approx(expected)


def test_llama_index_adapter_returns_the_same_passages(store, embedder):
    from rag.retrieve import as_llama_index_retriever

    ours = HybridRetriever(store, embedder)
    nodes = as_llama_index_retriever(ours, k=2).retrieve("كم ساعة أمهلت عصائب أهل الحق الحكومة؟")
    assert [n.node.id_ for n in nodes] == [h.chunk_id for h in ours.retrieve("كم ساعة أمهلت عصائب أهل الحق الحكومة؟", k=2)]
    assert nodes[0].node.metadata["article_id"] == "ultimatum"


def test_a_precomputed_query_vector_gives_the_same_hits(store, embedder):
    r = HybridRetriever(store, embedder)
    q = "كم ساعة أمهلت عصائب أهل الحق الحكومة؟"
    assert r.retrieve(q, query_vector=embedder.embed_queries([q])[0]) == r.retrieve(q)
