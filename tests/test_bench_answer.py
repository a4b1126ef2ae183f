from rag.bench.answer import format_report, run_chain


def test_run_chain_scores_a_fake_chain():
    from rag.records import Answer, Citation

    class FakeChain:
        class retriever:  # noqa: N801 - stands in for the chain's retriever attribute
            @staticmethod
            def retrieve(question, k=5):
                return []

        def ask(self, question):
            cit = Citation(n=1, chunk_id="a#0", article_id="a", title="t", text="48")
            return Answer(question=question, lang="ar", answer="48 ساعة [1].", citations=[cit],
                          timings={"first_token_s": 1.0, "total_s": 2.0})

    summary, rows = run_chain(FakeChain(), [{"id": "q", "question": "كم؟", "answerable": True,
                                            "expect_any": ["48"], "sources": ["a"]}])
    assert summary["right"] == 1.0 and summary["first_token_p50_s"] == 1.0 and rows[0]["passed"]
    assert "| rag | 1 | 1.000 | 1.000 |" in format_report({"set": {"rag": summary}})
