import json

import pytest

from rag.brief import Briefer, render, select_articles, verified_facts
from rag.chunk import ArabicChunker
from rag.cli import main
from rag.errors import BadInput
from rag.ingest import Ingestor
from rag.records import Briefing
from rag.store import LocalStore
from tests.fakes import QueueLLM, SummaryLLM

STRIKE = ("قصفت طائرات أمريكية مواقع لفصائل مسلحة قرب مدينة القائم على الحدود العراقية السورية فجر الإثنين. "
          "وقالت وزارة الدفاع الأمريكية إن الضربات استهدفت مخازن أسلحة تستخدمها الفصائل في هجمات بطائرات مسيرة. "
          "وأعلنت الفصائل مقتل خمسة من عناصرها في القصف.")
STRIKE_OTHER_OUTLET = ("أعلنت فصائل مسلحة عراقية مقتل خمسة من عناصرها في قصف أمريكي استهدف مواقعها قرب مدينة القائم "
                       "على الحدود العراقية السورية فجر الإثنين. وقالت وزارة الدفاع الأمريكية إن الضربات استهدفت "
                       "مخازن أسلحة للفصائل.")
FLOODS = ("غمرت السيول أحياء واسعة في مدينة جدة بعد أمطار غزيرة استمرت ساعات. ودعت هيئة الأرصاد السكان إلى "
          "البقاء في منازلهم، فيما أغلقت المدارس أبوابها يوم الأحد.")


def _write(folder, name, text, date, source):
    (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    (folder / f"{name}.meta.json").write_text(json.dumps({"title": f"title {name}", "date": date, "source": source}))


@pytest.fixture
def day(tmp_path, embedder):
    folder = tmp_path / "articles"
    folder.mkdir()
    _write(folder, "strike_a", STRIKE, "2021-06-28", "Outlet A")
    _write(folder, "strike_b", STRIKE_OTHER_OUTLET, "2021-06-28", "Outlet B")
    _write(folder, "floods", FLOODS, "2021-06-28", "Outlet C")
    _write(folder, "older", FLOODS.replace("جدة", "الرياض"), "2021-06-01", "Outlet C")
    _write(folder, "undated", "مقال بلا تاريخ عن اجتماع وزراء الخارجية العرب في القاهرة لبحث الأزمة.", "", "Outlet D")
    store = LocalStore(tmp_path / "index", embedder.name)
    Ingestor(store, embedder, ArabicChunker()).ingest([folder])
    return store, folder


def briefer(store, llm, tmp_path=None, **kwargs):
    kwargs.setdefault("group_threshold", 0.6)  # the fake embedder's cosines are not e5's
    kwargs.setdefault("mode", "write")  # the model-written path; `extract` has tests of its own below
    return Briefer(store, llm, cache_dir=tmp_path / "cache" if tmp_path else None, **kwargs)


def test_two_reports_of_one_event_become_one_story_and_unrelated_ones_stay_apart(day):
    store, _ = day
    b = briefer(store, SummaryLLM()).brief(date="2021-06-28")
    assert [sorted(s.article_ids) for s in b.stories] == [["strike_a", "strike_b"], ["floods"]]
    assert {c.article_id for c in b.stories[0].citations} == {"strike_a", "strike_b"}  # cites every report
    assert b.date_from == b.date_to == "2021-06-28" and "older" not in str(b.stories)


def test_default_is_the_latest_day_and_undated_articles_are_listed_not_dropped(day):
    store, _ = day
    b = briefer(store, SummaryLLM()).brief()
    assert b.date_from == "2021-06-28" and b.undated == ["undated"]
    everything = briefer(store, SummaryLLM()).brief(all_articles=True)
    assert {a for s in everything.stories for a in s.article_ids} == {a.id for a in store.articles()}


def test_citations_resolve_to_articles_invalid_ones_are_dropped_and_numbers_are_global(day):
    store, _ = day
    llm = QueueLLM("## العنوان: غارة أمريكية قرب القائم\nقصفت طائرات أمريكية مواقع قرب مدينة القائم [1]. "
                   "وأعلنت الفصائل مقتل خمسة من عناصرها [3][9].",
                   "سيول في جدة\nغمرت السيول أحياء واسعة في مدينة جدة [1].")
    b = briefer(store, llm).brief(date="2021-06-28")
    strike, floods = b.stories
    assert strike.headline == "غارة أمريكية قرب القائم" and "[9]" not in strike.summary
    assert any(f.kind == "invalid_citation" for f in strike.flags)
    numbers = [c.n for s in b.stories for c in s.citations]
    assert numbers == list(range(1, len(numbers) + 1))  # one numbering for the whole briefing
    assert {c.article_id for c in strike.citations} == {"strike_a", "strike_b"}
    [flood] = floods.citations
    assert f"[{flood.n}]" in floods.summary and flood.article_id == "floods" and "السيول" in flood.text
    assert flood.source == "Outlet C" and flood.date == "2021-06-28"


def test_unsupported_sentences_and_figures_are_caught_and_an_uncited_summary_falls_back(day):
    store, _ = day
    llm = QueueLLM("غارة\nقصفت طائرات أمريكية مواقع قرب مدينة القائم وقتلت 12 شخصا [1]. "
                   "وسقطت ثلوج كثيفة على جبال الألب السويسرية أمس [2].",
                   "مقتل رئيس الوزراء\nهذا نص بلا أي مصدر ولا رقم مقطع.")
    strike, floods = briefer(store, llm).brief(date="2021-06-28").stories
    assert any(f.kind == "unsupported_figure" and "12" in f.detail for f in strike.flags)
    assert any(f.kind == "unsupported_sentence" and "الألب" in f.detail for f in strike.flags)
    assert "الألب" not in strike.summary
    assert any(f.kind == "fallback" for f in floods.flags) and "السيول" in floods.summary
    assert floods.headline == "title floods"  # an invented headline gives way to the article's own title


def test_a_long_story_is_map_reduced_so_no_prompt_exceeds_the_budget(day):
    store, _ = day
    llm = SummaryLLM()
    b = briefer(store, llm, passage_words=30, prompt_words=40).brief(date="2021-06-28")
    strike = b.stories[0]
    assert len(llm.prompts) == 4  # two map prompts for the strike (one article each), one combine, one floods
    for prompt in llm.prompts:
        passages = [line for line in prompt.splitlines() if line.startswith(("[", "- "))]
        assert sum(len(line.split()) for line in passages) <= 40 + 10  # budget + the "[n] (outlet, date)" labels
    assert {c.article_id for c in strike.citations} == {"strike_a", "strike_b"}


def test_a_second_request_is_served_from_the_cache_and_a_changed_article_regenerates(day, tmp_path, embedder):
    store, folder = day
    llm = SummaryLLM()
    first = briefer(store, llm, tmp_path).brief(date="2021-06-28")
    calls = len(llm.prompts)
    assert briefer(store, llm, tmp_path).brief(date="2021-06-28") == first and len(llm.prompts) == calls
    (folder / "floods.txt").write_text(FLOODS + " وتوقعت الهيئة تحسن الطقس غدا.", encoding="utf-8")
    Ingestor(store, embedder, ArabicChunker()).ingest([folder])
    briefer(store, llm, tmp_path).brief(date="2021-06-28")
    assert len(llm.prompts) > calls


def test_an_empty_day_says_so_plainly_without_calling_the_model(day):
    store, _ = day
    b = briefer(store, QueueLLM()).brief(date="2021-06-29", lang="en")
    assert b.stories == [] and b.message.startswith("No articles dated 2021-06-29")
    assert "No articles dated 2021-06-29" in render(b, "md")


def test_bad_dates_are_actionable():
    with pytest.raises(BadInput, match="YYYY-MM-DD"):
        select_articles([], date="28/06/2021")
    with pytest.raises(BadInput, match="after"):
        select_articles([], since="2021-07-01", until="2021-06-01")


def test_renderings_carry_sources_and_arabic_layout(day):
    store, _ = day
    b = briefer(store, SummaryLLM()).brief(date="2021-06-28")
    md, page, data = render(b, "md"), render(b, "html"), json.loads(render(b, "json"))
    assert "\u20662021-06-28\u2069" in md and '<bdi dir="ltr">2021-06-28</bdi>' in page  # dates keep their order in RTL
    md = md.replace("\u2066", "").replace("\u2069", "")
    last = b.stories[-1].citations[-1].n
    assert "## المصادر" in md and f"[{last}] title floods — Outlet C — 2021-06-28" in md
    assert '<html lang="ar" dir="rtl">' in page and 'href="#src-1"' in page and f'id="src-{last}"' in page
    assert set(data) >= {"lang", "date_from", "date_to", "title", "stories", "undated"}
    assert set(data["stories"][0]) >= {"headline", "summary", "citations", "flags"}
    assert set(data["stories"][0]["citations"][0]) == {"n", "article_id", "title", "source", "date"}


def test_brief_command_writes_a_file(tmp_path, monkeypatch, fake_models, seeds_dir, capsys):
    import rag.llm

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setattr(rag.llm, "make_chat_model", lambda settings: SummaryLLM())
    monkeypatch.setenv("RAG_BRIEF_MODE", "write")
    assert main(["ingest", str(seeds_dir)]) == 0
    assert main(["brief", "--all", "--format", "json", "--out", "b.json"]) == 0
    data = json.loads((tmp_path / "b.json").read_text())
    seeds = {p.stem for p in seeds_dir.glob("*.txt")}
    assert {c["article_id"] for s in data["stories"] for c in s["citations"]} == seeds
    assert main(["brief", "--date", "2021-13-01"]) == 2
    assert main(["brief", "--articles", "nope"]) == 2 and "'nope'" in capsys.readouterr().err
    first = sorted(seeds)[0]
    assert main(["brief", "--articles", first, "--format", "json", "--out", "one.json"]) == 0
    assert [s["article_ids"] for s in json.loads((tmp_path / "one.json").read_text())["stories"]] == [[first]]
    assert main(["brief", "--date", "2021-06-28", "--all"]) == 2


def test_citations_move_after_their_sentence_and_copied_outlet_labels_go():
    from rag.brief import _tidy_claim

    assert _tidy_claim("[1] قصفت طائرات أمريكية مواقع قرب القائم.", set()) == "قصفت طائرات أمريكية مواقع قرب القائم [1]."
    assert _tidy_claim("ترا عراق - تتواصل تداعيات القصف [2].", {"ترا عراق"}) == "تتواصل تداعيات القصف [2]."
    assert _tidy_claim("قال الكاظمي: نحن مستعدون [1].", {"الجزيره"}) == "قال الكاظمي: نحن مستعدون [1]."


def test_a_sentence_the_model_repeats_is_kept_once():
    from rag.brief import _tidy_claim

    looped = "رفضت الكتائب بشدة أي وساطات لإيقاف العمليات " * 3 + "[3]."
    assert _tidy_claim(looped, set()) == "رفضت الكتائب بشدة أي وساطات لإيقاف العمليات [3]."


# ---- extract mode: code chooses, quotes and (in English) checks the model's rendering ------------------------------
class TranslatorLLM:
    """Renders each Arabic sentence it is sent as the English given for a word it contains, else a fixed line."""

    name = "fake:translator"

    def __init__(self, renderings: dict[str, str], otherwise: str = "Aircraft struck sites."):
        self.renderings, self.otherwise, self.prompts = renderings, otherwise, []

    def stream(self, messages, max_tokens=None):
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        sentence = prompt.rsplit("\n\n", 1)[-1]
        yield next((english for word, english in self.renderings.items() if word in sentence), self.otherwise)


def test_extract_mode_quotes_chosen_sentences_with_citations_and_calls_no_model_in_arabic(day):
    from rag.verify import cited_numbers, claims

    store, _ = day
    b = briefer(store, QueueLLM(), mode="extract").brief(date="2021-06-28")  # QueueLLM fails if it is called
    strike, floods = b.stories
    articles = {a.id: a.text for a in store.articles()}
    for story in b.stories:
        by_n = {c.n: c for c in story.citations}
        for sentence in claims(story.summary):
            [n] = cited_numbers(sentence)
            quoted = sentence.rsplit(" [", 1)[0].split("، ", 1)[-1]  # without the outlet attribution
            assert quoted in " ".join(articles[by_n[n].article_id].split())
    assert {c.article_id for c in strike.citations} == {"strike_a", "strike_b"}
    assert "بحسب Outlet A، " in strike.summary and "بحسب Outlet B، " in strike.summary  # who reported what
    assert "بحسب" not in floods.summary  # one outlet: no attribution needed
    assert strike.headline == "title strike_a" and any(f.kind == "extractive" for f in strike.flags)
    assert "extractive" not in render(b, "md")  # how it was made is in the record, not a warning to the reader
    from rag.bench.brief import unsupported_sentences

    assert unsupported_sentences(b) == []


def test_extract_mode_never_repeats_a_sentence_across_stories_and_skips_page_furniture(tmp_path, embedder):
    folder = tmp_path / "articles"
    folder.mkdir()
    tweet = "عاجل قصف مواقع الفصائل المسلحة قرب الحدود pic.twitter.com/abc123"
    _write(folder, "a", STRIKE + "\n" + tweet, "2021-06-28", "Outlet A")
    _write(folder, "b", FLOODS + "\n" + STRIKE.split(". ")[1] + ".\nالمصدر : وكالات\nقصص ذات صلة بالسيول والأمطار "
           "في مدن المملكة خلال الأسبوع الماضي.", "2021-06-28", "Outlet C")
    store = LocalStore(tmp_path / "index", embedder.name)
    Ingestor(store, embedder, ArabicChunker()).ingest([folder])
    b = Briefer(store, QueueLLM(), group_threshold=0.99, mode="extract").brief(date="2021-06-28")
    text = " ".join(s.summary for s in b.stories)
    assert len(b.stories) == 2 and text.count("مخازن أسلحة") == 1  # the shared sentence is said once
    assert "twitter" not in text and "قصص ذات صلة" not in text  # a tweet and what follows "المصدر :" are not news


def test_english_extract_asserts_checked_renderings_and_quotes_the_arabic_of_the_rest(day):
    store, _ = day
    llm = TranslatorLLM({"القائم": "US aircraft struck faction sites near al-Qaim on the Iraqi-Syrian border on Monday",
                         "مخازن": "The Pentagon said the strikes hit weapons depots in Gaza",
                         "خمسة": "The factions said 12 of their members were killed",
                         "جدة": "Floods swept large parts of Jeddah"})
    b = briefer(store, llm, mode="extract", english="rendered").brief(date="2021-06-28", lang="en")
    strike = b.stories[0]
    assert "near al-Qaim" in strike.summary  # the name renders القائم and Monday is in the Arabic
    assert "Gaza" not in strike.summary and "12" not in strike.summary  # invented name, invented figure
    assert "n Arabic: «" in strike.summary  # what could not be rendered is shown as the article says it
    assert "According to Outlet A: " in strike.summary or "According to Outlet A, in Arabic" in strike.summary
    why = " ".join(f.detail for f in strike.flags if f.kind == "rendering_rejected")
    assert "unverified_name" in why and "unsupported_figure" in why  # kept in the record, not shown
    assert "Gaza" not in render(b, "md")
    assert all(f"[{c.n}]" in strike.summary for c in strike.citations)
    from rag.bench.brief import unsupported_sentences

    assert unsupported_sentences(b) == []  # the benchmark's check, on the finished record


def test_english_facts_quote_the_arabic_with_only_what_code_can_check_in_english(day):
    from rag.bench.brief import unsupported_sentences

    store, _ = day
    llm = TranslatorLLM({"القائم": "US aircraft struck faction sites near al-Qaim on the Iraqi-Syrian border",
                         "خمسة": "The factions said Kataib Hezbollah lost twelve members in Gaza"})
    b = briefer(store, llm, mode="extract").brief(date="2021-06-28", lang="en")  # english="facts", the default
    strike = b.stories[0]
    assert "«قصفت طائرات أمريكية مواقع" in strike.summary and "(names: Qaim; dates: Monday) [" in strike.summary
    assert "aircraft struck" not in strike.summary  # the rendering itself is never asserted
    assert "Kataib" not in strike.summary and "Gaza" not in strike.summary  # names the Arabic lacks
    assert "figures: 5" in strike.summary  # خمسة, from the Arabic, by code
    assert unsupported_sentences(b) == [] and strike.headline == "Qaim (Outlet A, 2021-06-28)"
    assert "the wording is not" not in render(b, "md") and "in brackets, what was checked" in render(b, "md")


def test_translations_sent_at_once_give_the_same_briefing_in_less_time(day):
    import threading
    import time

    class SlowTranslator(TranslatorLLM):
        """Each call takes 0.2 s and notes how many run at once."""

        def __init__(self, *args):
            super().__init__(*args)
            self.running = self.most = 0
            self.lock = threading.Lock()

        def stream(self, messages, max_tokens=None):
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(0.2)
            with self.lock:
                self.running -= 1
            yield from super().stream(messages, max_tokens)

    store, _ = day
    renderings = {"القائم": "US aircraft struck faction sites near al-Qaim", "خمسة": "Five were killed"}
    one, three = SlowTranslator(renderings), SlowTranslator(renderings)
    started = time.perf_counter()
    alone = briefer(store, one, mode="extract").brief(date="2021-06-28", lang="en")
    alone_s, started = time.perf_counter() - started, time.perf_counter()
    at_once = briefer(store, three, mode="extract", parallel=3).brief(date="2021-06-28", lang="en")
    at_once_s = time.perf_counter() - started
    assert [s.summary for s in at_once.stories] == [s.summary for s in alone.stories]  # order kept
    assert one.most == 1 and three.most > 1 and len(three.prompts) == len(one.prompts) >= 3
    assert at_once_s < alone_s
    with pytest.raises(ValueError, match="parallel"):
        briefer(store, one, parallel=0)


def test_the_last_check_removes_what_its_passages_do_not_bear_out_and_what_was_said_already():
    from rag.brief import enforce

    passages = {1: "قصفت طائرات أمريكية مواقع لفصائل مسلحة قرب مدينة القائم فجر الإثنين.",
                2: "وأعلنت الفصائل مقتل خمسة من عناصرها في القصف."}
    summary = ("قصفت طائرات أمريكية مواقع لفصائل مسلحة قرب مدينة القائم [1]. وأعلنت الفصائل مقتل 12 من عناصرها [2]. "
               "قصفت طائرات أمريكية مواقع لفصائل مسلحة قرب مدينة القائم فجر الإثنين [1]. وسقطت ثلوج على جبال الألب [2]. "
               "جملة بلا أي رقم مقطع عن القصف.")
    kept, flags = enforce(summary, passages)
    assert kept == "قصفت طائرات أمريكية مواقع لفصائل مسلحة قرب مدينة القائم [1]."
    assert [f.kind for f in flags] == ["unsupported_sentence", "repeated_sentence", "unsupported_sentence",
                                       "unsupported_sentence"]
    assert all(f.detail.split(": ", 1)[1] not in kept for f in flags)  # nothing shown is flagged as removed


def test_a_story_says_where_its_outlets_give_different_figures(tmp_path, embedder):
    folder = tmp_path / "articles"
    folder.mkdir()
    _write(folder, "strike_a", STRIKE, "2021-06-28", "Outlet A")
    _write(folder, "strike_b", STRIKE_OTHER_OUTLET.replace("مقتل خمسة", "مقتل أربعة"), "2021-06-28", "Outlet B")
    store = LocalStore(tmp_path / "index", embedder.name)
    Ingestor(store, embedder, ArabicChunker()).ingest([folder])
    [story] = briefer(store, QueueLLM(), mode="extract").brief(date="2021-06-28").stories
    [differ] = [f for f in story.flags if f.kind == "outlets_differ"]
    assert differ.detail.startswith("Outlet A: 5; Outlet B: 4") and "outlets_differ" in render(
        Briefing(lang="ar", title="t", stories=[story]), "md")


def test_a_clause_ending_in_a_semicolon_is_one_sentence_with_what_follows(tmp_path, embedder):
    folder = tmp_path / "articles"
    folder.mkdir()
    text = ("وأمهلت ميليشيا عصائب أهل الحق التي يقودها قيس الخزعلي المقرب من طهران؛ الحكومة العراقية 48 ساعة "
            "للإفراج عن عناصرها. " + FLOODS)
    _write(folder, "deadline", text, "2021-06-28", "Outlet A")
    store = LocalStore(tmp_path / "index", embedder.name)
    Ingestor(store, embedder, ArabicChunker()).ingest([folder])
    [story] = briefer(store, QueueLLM(), mode="extract").brief(date="2021-06-28").stories
    assert "طهران؛ الحكومة العراقية 48 ساعة" in story.summary


def test_english_facts_give_figures_with_their_units_in_english_notation():
    arabic = "تشمل الاتفاقيات رسوم حمل سنوية قدرها 30 مليون جنيه إسترليني، ويمثل الكاثوليك 56,2٪ من السكان"
    assert verified_facts("", arabic) == ["figures: £30 million, 56.2%"]  # not "562", not a bare 30


def test_english_facts_keep_what_the_arabic_bears_out_of_a_name():
    arabic = "وأمهلت ميليشيا “عصائب أهل الحق” التي يقودها قيس الخزعلي المقرب من طهران؛ الحكومة العراقية 48 ساعة"
    assert verified_facts("Asaib, led by Qais Khazali of Tehran, gave 48 hours", arabic) == \
        ["names: Asaib, Qais Khazali, Tehran", "figures: 48"]
    # The model's given name renders nothing: the family name it got right is kept, the invented one is not.
    assert verified_facts("Asaib, led by Cesar Khazali of Tehran, gave 48 hours", arabic) == \
        ["names: Asaib, Khazali, Tehran", "figures: 48"]
    assert verified_facts("Asaib, led by Cesar Mahdi, gave 48 hours", arabic) == ["names: Asaib", "figures: 48"]
    # The people the Arabic names, as the world spells them, stand for the model's rendering of them.
    spelt = [("قيس الخزعلي", "Qais Khazali")]
    assert verified_facts("Asaib, led by Cesar Khazali, gave 48 hours", arabic, spelt=spelt) == \
        ["names: Qais Khazali, Asaib", "figures: 48"]
    # Where the rendering names nobody there, the index's reading is not trusted alone ("أمام الحوار" is no one).
    assert verified_facts("the militia gave 48 hours", arabic, spelt=spelt) == ["figures: 48"]
    assert verified_facts("Asaib, led by Khazali Qais, gave 48 hours", arabic, spelt=spelt) == \
        ["names: Qais Khazali, Asaib", "figures: 48"]  # the model's words of the same person: named once
    # A common noun spelt out is no name ("Mellisha" for ميليشيا), nor are words matched in two places.
    assert verified_facts("The Mellisha of Asaib gave 48 hours", arabic) == ["names: Asaib", "figures: 48"]
    assert verified_facts("Haqq Ahl gave 48 hours", arabic) == ["figures: 48"]


def test_english_facts_ask_the_model_for_a_gist_and_renderings_for_the_whole_sentence():
    arabic = "وقال أمين عام الحركة أكرم الكعبي إنه لا خيار إلا الحل العسكري"
    for english, opening in (("facts", "Say in plain English, in at most 20 words"), ("rendered", "Translate")):
        llm = QueueLLM("Akram al-Kaabi said there is no option but the military solution.")
        rendering, problems = Briefer(None, llm, english=english).translate(arabic)
        assert llm.calls[0][0]["content"].startswith(opening) and arabic in llm.calls[0][0]["content"]
        assert rendering.startswith("Akram al-Kaabi") and not problems
