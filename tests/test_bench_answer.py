import json

import pytest

from rag.bench_answer import expected_found, load_question_set, run_chain, score_row
from rag.errors import BadInput
from tests.conftest import ROOT


def test_expected_answers_match_after_normalisation():
    assert expected_found("أمهلت الحكومة ٤٨ ساعة [1].", ["48"])
    assert expected_found("في البصرة [1]", ["البصره"])
    assert expected_found("John KIRBY said", ["Kirby"])
    assert not expected_found("لا تذكر المقالات ذلك.", ["48"])


def test_scoring_needs_the_fact_and_a_citation_of_an_expected_source():
    q = {"id": "q", "answerable": True, "expect_any": ["48"], "sources": ["a"]}
    assert score_row(q, "48 ساعة [1].", False, ["a"], 0)["right"]
    assert not score_row(q, "48 ساعة [1].", False, ["b"], 0)["right"]
    assert not score_row(q, "48", True, [], 0)["right"]
    unanswerable = {"id": "u", "answerable": False}
    assert score_row(unanswerable, "لا تذكر المقالات ذلك.", True, [], 0)["refusal_correct"]


def test_the_project_question_set_is_well_formed():
    rows = load_question_set(ROOT / "evals" / "questions.jsonl")
    assert len(rows) >= 40 and len({r["id"] for r in rows}) == len(rows)
    assert {r["lang"] for r in rows} == {"ar", "en"}
    assert any(not r["answerable"] for r in rows) and any(len(r["sources"]) > 1 for r in rows)
    seeds = {p.stem for p in (ROOT / "seeds").glob("*.txt")}
    assert all(set(r["sources"]) <= seeds for r in rows)


def test_malformed_question_set_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({"question": "x", "answerable": True}) + "\n{oops\n")
    with pytest.raises(BadInput, match=":2: invalid JSON"):
        load_question_set(path)


def test_run_chain_scores_a_fake_chain():
    from rag.records import Answer, Citation

    class FakeChain:
        def ask(self, question):
            cit = Citation(n=1, chunk_id="a#0", article_id="a", title="t", text="48")
            return Answer(question=question, lang="ar", answer="48 ساعة [1].", citations=[cit],
                          timings={"first_token_s": 1.0, "total_s": 2.0})

    summary, rows = run_chain(FakeChain(), [{"id": "q", "question": "كم؟", "answerable": True,
                                            "expect_any": ["48"], "sources": ["a"]}])
    assert summary["answer_accuracy"] == 1.0 and summary["first_token_s"]["p50"] == 1.0 and rows[0]["right"]
