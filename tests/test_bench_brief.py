"""The briefing benchmark's scores: strict, and able to fail."""

import json
from pathlib import Path

import numpy as np
import pytest

from rag.bench.brief import (
    briefing_quality,
    fact_coverage,
    format_table,
    load_facts,
    repeated_sentences,
    unsupported_sentences,
    xquad_corpus,
)
from rag.errors import BadInput
from rag.records import BriefCitation, Briefing, Story

ROOT = Path(__file__).resolve().parent.parent
FACTS = [
    {"article": "a", "id": "deadline", "ar": [["48"], ["عصائب", "العصائب"]], "en": [["48"], ["Asaib"]]},
    {"article": "a", "id": "khazali", "ar": [["الخزعلي"]], "en": [["Khazali"]]},
    {"article": "b", "id": "rockets", "ar": [["8", "ثمانية"]], "en": [["8", "eight"]]},
]
PASSAGE = "وأمهلت ميليشيا عصائب أهل الحق التي يقودها قيس الخزعلي الحكومة العراقية 48 ساعة للإفراج عن عناصرها."


def _briefing(summary: str, lang: str = "ar", articles=("a",), passage: str = PASSAGE) -> Briefing:
    citation = BriefCitation(n=1, article_id=articles[0], title="", text=passage)
    return Briefing(lang=lang, title="t", stories=[Story(headline="", summary=summary, article_ids=list(articles),
                                                         citations=[citation])])


def test_a_fact_counts_only_when_every_part_is_in_its_own_story_strictly():
    full = _briefing("أمهلت عصائب أهل الحق بقيادة قيس الخزعلي الحكومة 48 ساعة [1].")
    assert fact_coverage(full, FACTS) == (0.667, ["rockets"])  # article b has no story: its fact is missed
    # A citation marker is not a figure, a longer number does not hold a shorter one, half a fact is no fact.
    assert fact_coverage(_briefing("أمهلت العصائب الحكومة يومين [48]."), FACTS)[1] == ["deadline", "khazali",
                                                                                       "rockets"]
    assert "deadline" in fact_coverage(_briefing("أمهلت العصائب الحكومة 480 ساعة [1]."), FACTS)[1]
    assert "deadline" in fact_coverage(_briefing("أمهلت الحكومة 48 ساعة [1]."), FACTS)[1]
    english = _briefing("Asaib Ahl al-Haq gave the government 48 hours [1].", lang="en")
    assert fact_coverage(english, FACTS) == (0.333, ["khazali", "rockets"])


def test_repeats_and_unsupported_sentences_are_found_in_the_finished_record():
    said_twice = ["أمهلت العصائب الحكومة 48 ساعة [1].", "قالت الحكومة إنها سترد [2].",
                  "أمهلت العصائب الحكومة 48 ساعة للإفراج عن عناصرها [3]."]
    assert repeated_sentences(said_twice, None) == [(said_twice[0], said_twice[2])]  # one inside the other
    alike = np.array([[1.0, 0.0], [0.95, 0.312], [0.0, 1.0]])
    assert len(repeated_sentences(["x [1].", "y [2].", "z [3]."], alike, 0.9)) == 1  # by meaning
    b = _briefing("أمهلت العصائب الحكومة 48 ساعة [1]. وأمهلت العصائب الحكومة 72 ساعة [1]. وسقطت ثلوج على جبال "
                  "الألب [1]. جملة بلا مصدر عن الحكومة.")
    assert [why.split()[0] for _, why in unsupported_sentences(b)] == ["72", "only", "cites"]
    english = _briefing("Khalbi gave the government 48 hours [1].", lang="en")
    assert "Khalbi" in unsupported_sentences(english)[0][1]


def test_quality_figures_and_their_table():
    figures = briefing_quality(_briefing("أمهلت عصائب أهل الحق بقيادة قيس الخزعلي الحكومة 48 ساعة [1]."), FACTS)
    assert figures["coverage"] == 0.667 and figures["repeated"] == figures["unsupported"] == 0
    assert figures["sentences"] == 1 and figures["words_per_story"] == 11
    table = format_table({"seeds/extract/ar": {**figures, "seconds": 1.0, "llm_calls": 0}})
    assert "0.67 (2/3)" in table and "missed (seeds/extract/ar): rockets" in table


def test_the_key_facts_file_covers_every_seed_in_both_languages_and_bad_files_are_actionable(tmp_path):
    facts = load_facts(ROOT / "evals" / "brief_facts.jsonl")
    seeds = {p.stem for p in (ROOT / "seeds").glob("*.txt")}
    per_article = {a: sum(f["article"] == a for f in facts) for a in seeds}
    assert set(f["article"] for f in facts) == seeds and all(3 <= n <= 6 for n in per_article.values())
    assert len({f["id"] for f in facts}) == len(facts)
    bad = tmp_path / "facts.jsonl"
    bad.write_text(json.dumps({"article": "a", "ar": [["x"]]}) + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match="accepted-spelling groups"):
        load_facts(bad)
    with pytest.raises(BadInput, match="cannot read"):
        load_facts(tmp_path / "none.jsonl")


def test_the_xquad_corpus_has_short_facts_in_both_languages(settings_data_dir=ROOT.parent / "shared" / "data"):
    if not (settings_data_dir / "xquad" / "xquad.ar.json").is_file():
        pytest.skip("XQuAD is not in ../shared/data")
    articles, facts = xquad_corpus(settings_data_dir)
    assert len(articles) == 6 and all(a["text"] for a in articles)
    assert facts and all(len(f["ar"][0][0].split()) <= 3 and len(f["en"][0][0].split()) <= 3 for f in facts)
    assert {f["article"] for f in facts} <= {a["id"] for a in articles}
    with pytest.raises(BadInput, match="XQuAD not found"):
        xquad_corpus(Path("/nonexistent"))


def test_repeats_are_judged_on_what_a_line_says_not_on_its_english_wrapper():
    from rag.bench.brief import what_it_says

    line = "According to Reuters: in Arabic: «قال المتحدث «لا وساطة» اليوم» (figures: 1) [2]."
    assert what_it_says(line) == "قال المتحدث «لا وساطة» اليوم"
    assert what_it_says("In Arabic: «الرقم الأولي» (figures: 1)") == "الرقم الأولي"
    arabic = "قال المتحدث «لا وساطة» اليوم [1]."  # an Arabic summary sentence is judged whole
    assert what_it_says(arabic) == arabic

