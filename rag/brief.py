"""Daily briefings: the day's articles grouped into stories, each summarised in a few cited sentences.

Stories are found by embedding similarity (two articles whose leads are at least `group_threshold` alike,
published within `group_days` of each other, report the same event); each story is summarised from its
articles' sentences closest to the story's centre, one numbered passage per sentence, and long stories are
summarised per batch first and then combined (map-reduce), so no prompt goes over the passage budget.
Citations and grounding are checked as for answers.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date as Date
from pathlib import Path

import numpy as np

from rag.arabic import isolate_ltr_runs, normalize_for_search
from rag.chunk import split_sentences
from rag.errors import BadInput
from rag.files import write_text_atomic
from rag.names import NameRomanizer, common_nouns_only, find_in_arabic, latin_names
from rag.prompts import load_prompt
from rag.records import Article, BriefCitation, Briefing, Flag, Hit, Story
from rag.verify import (
    CITATION,
    CONTROL_TOKENS,
    SUPPORTED_SHARE,
    Passage,
    check_translation,
    cited_numbers,
    claims,
    comparable,
    content_words,
    ground,
    is_instruction,
    is_refusal,
    measured_en,
    name_words,
    numbers,
    passage_block,
    render_dates_en,
    render_days_en,
    stated_figures,
    strip_citations,
    unsupported,
    unverified_names,
    verified_family_name,
    word_share,
)

TITLES = {"ar": "الموجز الإخباري", "en": "News briefing"}
_HEADLINE_PREFIX = re.compile(r"^\s*(?:#+\s*|\*+\s*|(?:العنوان|عنوان|headline|title)(?:\s+(?:قصير|short))?\s*[:：]\s*"
                              r"|(?:short\s+headline|عنوان\s+قصير)\s*[:：]\s*)+", re.I)
MODES = ("extract", "write")
# English in extract mode. facts: each sentence quoted in Arabic with what can be checked rendered in English
# (names whose skeletons match the Arabic, figures, dates); rendered: the model's whole rendering asserted when
# `check_translation` passes. Measured on the embedded model, about half the renderings that pass state a wrong
# meaning ("the Iraqi Islamic Party" for Kataib Hezbollah, "airports" for embassies): `rendered` is for a stronger
# RAG_LLM_BASE_URL.
ENGLISH = ("facts", "rendered")
# Bumped when code changes what a briefing says, so briefings cached before are made again.
BRIEF_FORMAT = 2  # 2: names spelt as attested (NameRomanizer)
_DUPLICATE_SENTENCE = 0.95  # cosine above which two sentences say the same thing: keep one
# Two sentences repeat each other at this cosine or above: e5-small puts 1% of all pairs of seed sentences at
# >= 0.90, different events among them (0.94: attacks on Ain al-Asad / a foiled drone attack on Victoria), while
# restatements of one fact sit at >= 0.95 (Kirby's statement in the standfirst and in the body: 0.97).
REPEATED = 0.95
_MIN_PASSAGE_WORDS = 6
_MMR_LAMBDA = 0.5  # weight of centrality (and facts) against novelty when choosing a story's sentences
_LEAD_WINDOW = 3  # the lead is the most central of an article's first sentences (the first may be a caption)
_FACT_BONUS = 0.1  # the most a sentence's figures and rare words add to its centrality (cosines span ~0.1)
_RARE_SHARE = 0.2  # a word in at most this share of recent articles is rare
_DF_ARTICLES = 2000
# Where an article's own text ends: source lines, related-story lists, "read also" links and page furniture.
_END_MARKERS = re.compile(r"^\s*(?:المصدر\s*:|حول هذه القصة|اقرأ\s*(?:/\s*ي)?\s*أيض|قصص قد تهمك|المزيد من|"
                          r"تصنيفات|الأكثر قراءة|Published On|Read more|Related)", re.M)
# Sentences that are page furniture, not reporting: embedded tweets, photo captions ending in a credit, links.
_FURNITURE = re.compile(r"pic\.twitter\.com|https?://|@\w|\((?:[^()]{2,30})\)\s*$|[-–]\s*(?:AFP|Reuters|AP)\s*$|"
                        r"دقائق القراءة")
_LABEL = re.compile(r"^\s*(?:(?:الجملة|النص|النصوص|الملخص|الموجز)(?:\s+\S+)?|(?:sentence|summary|text)(?:\s+\S+)?)"
                    r"\s*[:：]\s*", re.I)


def _check_date(value: str, name: str) -> str:
    try:
        return Date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise BadInput(f"--{name} {value!r} is not a date; use YYYY-MM-DD") from exc


def select_articles(articles: list[Article], date: str | None = None, since: str | None = None,
                    until: str | None = None, all_articles: bool = False,
                    article_ids: list[str] | None = None) -> tuple[list[Article], str, str, list[str]]:
    """(chosen articles, date_from, date_to, undated ids). Default: the latest date that has articles.
    Undated articles are listed, never silently dropped; `--all` briefs them too. `article_ids`: exactly these
    articles (summaries on demand), every id known."""
    undated = sorted(a.id for a in articles if not a.date)
    dated = [a for a in articles if a.date]
    if article_ids:
        by_id = {a.id: a for a in articles}
        unknown = [i for i in dict.fromkeys(article_ids) if i not in by_id]
        if unknown:
            raise BadInput(f"no article with id {', '.join(map(repr, unknown[:5]))}: `rag articles` (or GET "
                           "/api/articles) lists the ids")
        chosen = [by_id[i] for i in dict.fromkeys(article_ids)]
        days = sorted(a.date for a in chosen if a.date)
        return (sorted(chosen, key=lambda a: (a.date or "9999", a.id)), days[0] if days else "",
                days[-1] if days else "", sorted(a.id for a in chosen if not a.date))
    if all_articles:
        days = sorted(a.date for a in dated)
        return (sorted(articles, key=lambda a: (a.date or "9999", a.id)), days[0] if days else "",
                days[-1] if days else "", undated)
    if date:
        since = until = _check_date(date, "date")
    elif since or until:
        since = _check_date(since, "since") if since else "0000-01-01"
        until = _check_date(until, "until") if until else "9999-12-31"
        if since > until:
            raise BadInput(f"--since {since} is after --until {until}")
    else:
        latest = max((a.date for a in dated), default="")
        since = until = latest
    chosen = [a for a in dated if since <= a.date <= until]
    return sorted(chosen, key=lambda a: (a.date, a.id)), since, until, undated


def lead_vector(store, article_id: str, sentences: int = 3) -> np.ndarray:
    """The article's lead (its first sentences, where news puts the event), as one normalised vector; the
    first chunk's vector when the index has no sentence vectors."""
    first = store.chunks_of(article_id)[0]
    rows = [v for _, _, v in store.sentences_of(first.id)[:sentences]]
    v = np.mean(rows, axis=0) if rows else store.chunk_vector(first.id)
    return v / (np.linalg.norm(v) or 1.0)


def same_story(a: Article, b: Article, lead_a: np.ndarray, lead_b: np.ndarray, threshold: float,
               max_days: int) -> tuple[bool, float]:
    """Two articles report one event when their leads (`lead_vector`) are at least `threshold` alike (cosine)
    and, when both are dated, they appeared within `max_days` of each other (coverage of an event spans days,
    not months). Measured on seed articles and second reports written for the test (README, `rag bench brief`):
    whole-article or chunk cosines do not separate same-event from same-topic articles; leads do."""
    score = float(lead_a @ lead_b)
    if a.date and b.date and abs((Date.fromisoformat(a.date) - Date.fromisoformat(b.date)).days) > max_days:
        return False, score
    return score >= threshold, score


def group_stories(store, articles: list[Article], threshold: float, max_days: int = 3) -> list[list[Article]]:
    """Stories by single linkage over `same_story`, in the articles' order."""
    leads = [lead_vector(store, a.id) for a in articles]
    parent = list(range(len(articles)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(articles)):
        for j in range(i + 1, len(articles)):
            if same_story(articles[i], articles[j], leads[i], leads[j], threshold, max_days)[0]:
                parent[root(j)] = root(i)
    groups: dict[int, list[Article]] = {}
    for i, a in enumerate(articles):
        groups.setdefault(root(i), []).append(a)
    return list(groups.values())


class Briefer:
    """Collaborators are passed in: the store (articles, vectors) and a chat model."""

    def __init__(self, store, llm, group_threshold: float = 0.96, passage_words: int = 60, prompt_words: int = 200,
                 max_tokens: int = 220, cache_dir: Path | None = None, identity: str = "",
                 progress: Callable[[str], None] | None = None, group_days: int = 3, mode: str = "extract",
                 story_sentences: int = 6, story_words: int = 170, english: str = "facts", parallel: int = 1,
                 romanizer: NameRomanizer | None = None):
        if not 0.0 <= group_threshold <= 1.0:
            raise ValueError(f"group_threshold must be between 0 and 1, got {group_threshold}")
        if passage_words < 10:
            raise ValueError(f"passage_words must be >= 10, got {passage_words}")
        if prompt_words < passage_words:
            raise ValueError(f"prompt_words ({prompt_words}) must hold at least one passage ({passage_words} words)")
        if group_days < 0:
            raise ValueError(f"group_days must be >= 0, got {group_days}")
        if mode not in MODES:
            raise ValueError(f"brief mode must be one of {MODES}, got {mode!r}")
        if story_sentences < 1 or story_words < _MIN_PASSAGE_WORDS:
            raise ValueError(f"a story needs at least 1 sentence and {_MIN_PASSAGE_WORDS} words")
        self.mode, self.story_sentences, self.story_words = mode, story_sentences, story_words
        if english not in ENGLISH:
            raise ValueError(f"brief English must be one of {ENGLISH}, got {english!r}")
        self.english = english
        if parallel < 1:
            raise ValueError(f"parallel must be >= 1, got {parallel}")
        self.parallel = parallel
        self.romanizer = romanizer or NameRomanizer()
        self.store, self.llm = store, llm
        self.group_threshold, self.passage_words, self.prompt_words = group_threshold, passage_words, prompt_words
        self.group_days = group_days
        self.max_tokens = max_tokens
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.identity = identity
        self.progress = progress or (lambda message: None)
        self.prompts = {(task, lang): load_prompt(task, lang) for task in ("brief_story", "brief_reduce")
                        for lang in ("ar", "en")}
        # English facts lines keep only the names of a rendering, so a short gist serves (fewer tokens to generate:
        # prompts/gist_en.txt); a rendering asserted whole (english="rendered") must be the whole sentence.
        self._rendering_task = "translate" if english == "rendered" else "gist"
        self.prompts[(self._rendering_task, "en")] = load_prompt(self._rendering_task, "en")
        self.llm_calls = 0
        self._calls_lock = threading.Lock()
        self._df: tuple[int, Counter] | None = None

    @classmethod
    def from_settings(cls, store, llm, settings, progress=None) -> Briefer:
        identity = f"{settings.llm_base_url or 'embedded'}|{settings.llm_model}|{settings.llm_temperature}"
        return cls(store, llm, settings.brief_group_threshold, settings.brief_passage_words,
                   settings.brief_prompt_words, settings.brief_max_tokens, settings.cache_dir / "briefs", identity,
                   progress, settings.brief_group_days, settings.brief_mode, settings.brief_story_sentences,
                   settings.brief_story_words, settings.brief_english, settings.brief_parallel,
                   NameRomanizer(settings.names_country))

    # ---- public API ------------------------------------------------------------------------------------------
    def brief(self, date: str | None = None, since: str | None = None, until: str | None = None,
              all_articles: bool = False, lang: str = "ar", use_cache: bool = True,
              article_ids: list[str] | None = None) -> Briefing:
        if lang not in ("ar", "en"):
            raise BadInput(f"--lang must be ar or en, got {lang!r}")
        started = time.perf_counter()
        articles, date_from, date_to, undated = select_articles(self.store.articles(), date, since, until,
                                                                all_articles, article_ids)
        all_articles = all_articles or bool(article_ids)  # the cache key's span: these articles, whatever their days
        span = date_from if date_from == date_to else f"{date_from} – {date_to}"
        title = f"{TITLES[lang]} — {span}" if span else TITLES[lang]
        if not articles:
            known = sorted({a.date for a in self.store.articles() if a.date})
            message = (f"لا توجد مقالات بتاريخ {span or 'محدد'}." if lang == "ar" else
                       f"No articles dated {span or 'at all'}.")
            hint = f" ({', '.join(known[-5:])})" if known else ""
            return Briefing(lang=lang, date_from=date_from, date_to=date_to, title=title, undated=undated,
                            message=message + hint)
        key = self._cache_key(articles, lang, date_from, date_to, all_articles)
        cached = self._cache_read(key) if use_cache else None
        if cached is not None:
            self.progress("briefing unchanged since last time: served from the cache")
            return cached
        groups = group_stories(self.store, articles, self.group_threshold, self.group_days)
        self.progress(f"{len(articles)} articles in {len(groups)} stories")
        # Most-covered stories first; among equals, the most recent.
        groups.sort(key=lambda g: max(a.date or "" for a in g), reverse=True)
        groups.sort(key=len, reverse=True)  # stable: equal coverage keeps the recent-first order
        stories = []
        taken: list[np.ndarray] = []  # sentences already in the briefing: no story repeats another
        for i, group in enumerate(groups, start=1):
            self.progress(f"story {i}/{len(groups)}: {group[0].title[:60]}")
            stories.append(self._story(group, lang, taken))
        briefing = Briefing(lang=lang, date_from=date_from, date_to=date_to, title=title,
                            stories=_renumber(stories), undated=undated,
                            timings={"total_s": round(time.perf_counter() - started, 2)})
        self._cache_write(key, briefing)
        return briefing

    # ---- one story -------------------------------------------------------------------------------------------
    def _story(self, articles: list[Article], lang: str, taken: list[np.ndarray]) -> Story:
        if self.mode == "extract":
            headline, summary, used, flags, passages = self._extracted(articles, lang, taken)
        else:
            headline, summary, used, flags, passages = self._written(articles, lang)
        # Every article that covers the story is cited, even when the model summarised from fewer.
        cited_articles = {p.hit.article_id for p in passages if p.n in used}
        for article in articles:
            if article.id not in cited_articles:
                first = next(p for p in passages if p.hit.article_id == article.id)
                outlet = article.source or article.title or article.id
                summary += (f" وأوردت الخبر أيضًا: {outlet} [{first.n}]." if lang == "ar"
                            else f" Also reported by: {outlet} [{first.n}].")
                used.append(first.n)
        by_n = {p.n: p for p in passages}
        citations = [BriefCitation(n=n, article_id=by_n[n].hit.article_id, title=by_n[n].hit.title,
                                   source=by_n[n].hit.source, date=by_n[n].hit.date, chunk_id=by_n[n].hit.chunk_id,
                                   text=by_n[n].text, start=by_n[n].start, end=by_n[n].end) for n in sorted(used)]
        return Story(headline=headline, summary=summary.strip(), article_ids=[a.id for a in articles],
                     citations=citations, flags=flags)

    def _written(self, articles: list[Article], lang: str):
        """The model writes the summary from the passages; code keeps what it can verify."""
        passages = self._passages(articles)
        raw = self._summarise(passages, lang)
        headline, summary = _split_headline(raw)
        flags: list[Flag] = []
        used: list[int] = []
        if summary and not is_refusal(summary):
            summary, flags = _verify_sentences(summary, passages, lang)
            summary, used, _, grounding = ground(summary, passages, "", lang)
            flags += grounding
            summary, checked = enforce(summary, {p.n: p.text for p in passages})
            flags += checked
            used = [n for n in used if f"[{n}]" in summary]
        if not used:  # no usable cited summary: say what the articles say, not something uncited
            flags.append(Flag(kind="fallback", detail="the model gave no cited summary; extractive summary used"))
            summary, used = _extractive(passages, lang)
        headline, headline_flags = _check_headline(headline, articles, passages, lang)
        return headline, summary, used, flags + headline_flags, passages

    def _extracted(self, articles: list[Article], lang: str, taken: list[np.ndarray]):
        """The story's key sentences chosen in code (`key_passages`), quoted with a citation each. In English, each
        is quoted in Arabic with what code can check in English (`verified_facts`); with english="rendered", the
        model's rendering is asserted instead when `check_translation` finds nothing invented in it. The model
        never chooses what the story says."""
        passages = self.key_passages(articles, taken)
        several = len(articles) > 1
        flags: list[Flag] = [Flag(kind="extractive", detail="sentences chosen from the articles in code")]
        rendered = lang == "en" and self.english == "rendered"
        if rendered:
            flags.append(Flag(kind="machine_rendered", detail="English sentences are the model's renderings"))
        rare = self._rare_words(articles) if lang == "en" else set()
        arabics = [" ".join(p.text.split()).rstrip(" .") for p in passages]
        translations = self._translate_all(arabics) if lang == "en" else []
        sentences, lead_names = [], ""
        for i, (p, arabic) in enumerate(zip(passages, arabics, strict=True)):
            outlet = p.hit.source if several and p.hit.source else ""
            if lang == "ar":
                sentences.append(f"{'بحسب ' + outlet + '، ' if outlet else ''}{arabic} [{p.n}].")
                continue
            rendering, problems = translations[i]
            lead = f"According to {outlet}: " if outlet else ""
            if rendered and not problems:
                parts = [strip_citations(c).rstrip(" .") for c in claims(rendering)]  # each rendered sentence cites
                sentences.append(lead + " ".join(f"{part} [{p.n}]." for part in parts if part))
                continue
            # The rendering was not used: why stays in the record, and its invented words stay out of sight.
            flags += [Flag(kind="rendering_rejected", detail=f"{f.kind}: {f.detail}") for f in problems]
            facts = verified_facts(rendering, arabic, rare, self.romanizer.names_in(arabic))
            if p is passages[0]:  # the headline's names, when no sentence is rendered
                lead_names = next((f.removeprefix("names: ") for f in facts if f.startswith("names: ")), "")
            sentences.append(f"{lead}{'In Arabic' if not lead else 'in Arabic'}: «{arabic}»"
                             f"{' (' + '; '.join(facts) + ')' if facts else ''} [{p.n}].")
        headline, headline_flags = self._headline(articles, passages, sentences, lang, lead_names)
        flags += outlets_differ(passages)
        return headline, " ".join(sentences), [p.n for p in passages], flags + headline_flags, passages

    def _translate_all(self, arabics: list[str]) -> list[tuple[str, list[Flag]]]:
        """`translate` for each sentence, `parallel` at once (`RAG_BRIEF_PARALLEL`): the server decodes its slots'
        requests in one batch, so the seeds' 27 took 73 s three at once where one at a time took 101 s."""
        if self.parallel == 1 or len(arabics) < 2:
            return [self.translate(arabic) for arabic in arabics]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(self.parallel, len(arabics))) as pool:
            return list(pool.map(self.translate, arabics))

    def translate(self, arabic: str) -> tuple[str, list[Flag]]:
        """(the model's English for one Arabic sentence, why it cannot be asserted: [] when it can). It cannot
        when it invents a figure, a month, a weekday or a name, is not English, or runs on. A whole translation
        where it is asserted (english="rendered"), a gist where only its names are kept."""
        prompt = self.prompts[(self._rendering_task, "en")].render(sentence=arabic)
        with self._calls_lock:  # translations may run on several threads (`parallel`)
            self.llm_calls += 1
        reply = "".join(self.llm.stream([{"role": "user", "content": prompt}],
                                        max_tokens=2 * len(arabic.split()) + 24)).strip()
        english = " ".join(reply.splitlines()[0].split()).strip("\"'«» ").rstrip(".") if reply else ""
        return english, [f.model_copy(update={"kind": "untranslated"}) if f.kind == "not_english" else f
                         for f in check_translation(english, arabic)]

    def _headline(self, articles: list[Article], passages: list[Passage], sentences: list[str],
                  lang: str, lead_names: str = "") -> tuple[str, list[Flag]]:
        """The outlet's own headline (the most recent article's), else the opening clause of the lead. In English,
        the opening clause of the first sentence rendered and checked: the model's renderings of headlines were
        wrong without naming anyone the check could catch ("the commander of the American forces is criticizing
        the Iraqi army's tactics" for "Kadhimi criticises the shelling of Iraqi camps as futile")."""
        title = next((a.title for a in sorted(articles, key=lambda a: a.date or "", reverse=True) if a.title), "")
        if lang == "ar":
            return title or _opening_clause(passages[0].text), []
        first = next((strip_citations(s) for s in sentences if "«" not in s and not s.startswith("According")), "")
        if first:
            return _opening_clause(first), []
        latest = max(articles, key=lambda a: a.date or "")
        about = ", ".join(x for x in (latest.source, latest.date) if x)
        if lead_names:  # who or where the story is about, in checked English, and whose report it is
            return lead_names + (f" ({about})" if about else ""), []
        outlet = next((a.source for a in articles if a.source), "")
        date = max((a.date for a in articles if a.date), default="")
        return " ".join(x for x in ("Report", f"by {outlet}" if outlet else "", f"of {date}" if date else "") if x), []

    def key_passages(self, articles: list[Article], taken: list[np.ndarray]) -> list[Passage]:
        """The sentences a reader of the story must see, one passage each, in reading order: each article's lead,
        then maximal marginal relevance over sentence vectors (central to the story, unlike what is chosen),
        within `story_sentences` and `story_words` (more for stories several articles cover). Page furniture,
        the headline repeated, injected instructions, and sentences that repeat one already in the briefing
        (`taken`, cosine >= REPEATED, or contained in it) are never chosen."""
        extra = len(articles) - 1
        max_sentences = min(self.story_sentences + extra, self.story_sentences + 2)
        max_words = self.story_words + 40 * min(extra, 2)
        pool = [(i, start, end, vector) for i, a in enumerate(articles)
                for start, end, vector in _candidates(self.store, a)]
        if not pool:
            return [self._passage(articles[0], 0, min(len(articles[0].text), 400), 1)]
        vectors = [v for *_, v in pool if v is not None]
        centre = np.mean(vectors, axis=0) if vectors else None
        centre = centre / (np.linalg.norm(centre) or 1.0) if centre is not None else None
        rare = self._rare_words(articles)
        facts = {c[:2]: _fact_weight(articles[c[0]].text[c[1]:c[2]], rare) for c in pool}
        chosen: list[tuple] = []
        texts: list[str] = []
        words = 0

        def repeats(vector, text) -> bool:
            norm = comparable(text)
            return (vector is not None and any(float(vector @ v) >= REPEATED for v in taken)) or any(
                norm in t or t in norm for t in texts)

        def take(item) -> None:
            nonlocal words
            i, start, end, vector = item
            chosen.append(item)
            texts.append(comparable(articles[i].text[start:end]))
            words += len(articles[i].text[start:end].split())
            if vector is not None:
                taken.append(vector)

        for i in range(len(articles)):  # news puts the event in the lead: the most central of the first sentences
            firsts = [c for c in pool if c[0] == i and not repeats(c[3], articles[i].text[c[1]:c[2]])][:_LEAD_WINDOW]
            lead = max(firsts, key=lambda c: float(c[3] @ centre) if c[3] is not None and centre is not None
                       else -c[1], default=None)
            if lead and len(chosen) < max_sentences and (not chosen or words + len(
                    articles[i].text[lead[1]:lead[2]].split()) <= max_words):
                take(lead)
        picked = {c[:2] for c in chosen}
        rest = [c for c in pool if c[:2] not in picked]
        while rest and len(chosen) < max_sentences:
            def mmr(c):
                if c[3] is None or centre is None:
                    return -c[1] / 1e6  # no vectors: reading order
                novelty = max((float(c[3] @ v) for *_, v in chosen if v is not None), default=0.0)
                return _MMR_LAMBDA * (float(c[3] @ centre) + facts[c[:2]]) - (1 - _MMR_LAMBDA) * novelty
            best = max(rest, key=mmr)
            rest = [c for c in rest if c[:2] != best[:2]]
            text = articles[best[0]].text[best[1]:best[2]]
            if repeats(best[3], text) or words + len(text.split()) > max_words:
                continue
            take(best)
        chosen.sort(key=lambda c: (c[0], c[1]))
        return [self._passage(articles[i], start, end, n) for n, (i, start, end, _) in enumerate(chosen, start=1)]

    def _rare_words(self, articles: list[Article]) -> set[str]:
        """Words of these articles that few other articles use (names, places, what is particular to the story):
        document frequency over the most recent articles of the index (at most `_DF_ARTICLES`)."""
        if self._df is None:
            recent = sorted(self.store.articles(), key=lambda a: a.date or "", reverse=True)[:_DF_ARTICLES]
            self._df = (len(recent), Counter(w for a in recent for w in set(content_words(a.text))))
        total, df = self._df
        limit = max(1, int(total * _RARE_SHARE)) + len(articles) - 1  # the story's own reports all use its names
        return {w for a in articles for w in set(content_words(a.text)) if df.get(w, 0) <= limit}

    def _passage(self, article: Article, start: int, end: int, n: int) -> Passage:
        chunks = self.store.chunks_of(article.id)
        chunk = next((c for c in chunks if c.start <= start < c.end), chunks[0])
        hit = Hit(rank=n, chunk_id=chunk.id, article_id=article.id, title=article.title, text=chunk.text, score=0.0,
                  source=article.source, date=article.date)
        return Passage(n, hit, CONTROL_TOKENS.sub(" ", " ".join(article.text[start:end].split())), start, end)

    def _passages(self, articles: list[Article]) -> list[Passage]:
        """Per article, its sentences closest to the story's centre, near-duplicates of sentences already chosen
        from other articles skipped, in reading order, within passage_words; each sentence is one passage."""
        chunk_ids = [c.id for a in articles for c in self.store.chunks_of(a.id)]
        centre = np.mean([self.store.chunk_vector(c) for c in chunk_ids], axis=0)
        chosen_vectors: list[np.ndarray] = []
        passages = []
        for n, article in enumerate(articles, start=1):
            chunks = self.store.chunks_of(article.id)
            candidates = []  # (score, start, end, vector) with offsets in the article
            for chunk in chunks:
                sentences = self.store.sentences_of(chunk.id)
                if sentences:
                    candidates += [(float(v @ centre), chunk.start + s, chunk.start + e, v) for s, e, v in sentences]
                else:  # no sentence vectors: news leads first
                    candidates += [(-(chunk.start + s.start), chunk.start + s.start, chunk.start + s.end, None)
                                   for s in split_sentences(chunk.text)]
            picked, words = [], 0
            title = normalize_for_search(article.title)
            for _, start, end, vector in sorted(candidates, key=lambda c: -c[0]):
                if any(start == p[0] for p in picked):
                    continue  # chunks overlap by a sentence
                sentence = article.text[start:end]
                n_words = len(sentence.split())
                if n_words < _MIN_PASSAGE_WORDS or title and normalize_for_search(sentence).strip(" .") in title:
                    continue  # bylines, datelines and the headline repeated in the text say nothing new
                if is_instruction(sentence):
                    continue  # an article that talks to the model is not news
                if picked and words + n_words > self.passage_words:
                    continue
                if vector is not None and any(float(vector @ v) > _DUPLICATE_SENTENCE for v in chosen_vectors):
                    continue
                picked.append((start, end))
                words += n_words
                if vector is not None:
                    chosen_vectors.append(vector)
            if not picked:
                picked = [(0, min(len(article.text), 400))]
            # One numbered passage per sentence: the model cites sentences, and each [n] is checkable.
            for start, end in sorted(picked):
                chunk = next((c for c in chunks if c.start <= start < c.end), chunks[0])
                text = " ".join(" ".join(article.text[start:end].split()).split()[:self.passage_words])
                hit = Hit(rank=n, chunk_id=chunk.id, article_id=article.id, title=article.title, text=chunk.text,
                          score=0.0, source=article.source, date=article.date)
                passages.append(Passage(len(passages) + 1, hit, CONTROL_TOKENS.sub(" ", text), start, end))
        return passages

    def _summarise(self, passages: list[Passage], lang: str) -> str:
        """One prompt when the passages fit the budget; otherwise summarise batches that fit (map), then
        combine the partial summaries, again in batches if they do not fit (reduce)."""
        if sum(len(p.text.split()) for p in passages) <= self.prompt_words:
            return self._call("brief_story", lang, passages=passage_block(passages))
        partials = [self._call("brief_story", lang, passages=passage_block(batch))
                    for batch in _batches(passages, lambda p: len(p.text.split()), self.prompt_words)]
        partials = [_split_headline(p)[1] or p for p in partials]
        while True:
            batches = _batches(partials, lambda s: len(s.split()), self.prompt_words)
            combined = [self._call("brief_reduce", lang, summaries="\n".join(f"- {s}" for s in batch))
                        for batch in batches]
            if len(combined) == 1:
                return combined[0]
            partials = [_split_headline(c)[1] or c for c in combined]

    def _call(self, task: str, lang: str, **values: str) -> str:
        prompt = self.prompts[(task, lang)].render(**values)
        self.llm_calls += 1
        return "".join(self.llm.stream([{"role": "user", "content": prompt}], max_tokens=self.max_tokens)).strip()

    # ---- cache -----------------------------------------------------------------------------------------------
    def _cache_key(self, articles, lang, date_from, date_to, all_articles) -> str:
        material = {
            "articles": sorted((a.id, a.content_hash or hashlib.sha256(a.text.encode()).hexdigest())
                               for a in articles),
            "lang": lang, "span": [date_from, date_to, all_articles], "llm": self.identity, "format": BRIEF_FORMAT,
            "names": self.romanizer.country,
            "settings": [self.group_threshold, self.group_days, self.passage_words, self.prompt_words,
                         self.max_tokens, self.mode, self.story_sentences, self.story_words, self.english],
            "prompts": [p.text for p in self.prompts.values()],
        }
        return hashlib.sha256(json.dumps(material, ensure_ascii=False).encode()).hexdigest()[:24]

    def _cache_read(self, key: str) -> Briefing | None:
        path = self.cache_dir / f"{key}.json" if self.cache_dir else None
        if path is None or not path.is_file():
            return None
        try:
            return Briefing.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError:
            return None  # a damaged cache entry costs a regeneration, nothing more

    def _cache_write(self, key: str, briefing: Briefing) -> None:
        if not self.cache_dir:
            return
        write_text_atomic(self.cache_dir / f"{key}.json", briefing.model_dump_json())


# ---- helpers ---------------------------------------------------------------------------------------------------
def _candidates(store, article: Article) -> list[tuple[int, int, np.ndarray | None]]:
    """The article's reporting sentences as (start, end, vector) in reading order: before the page's end
    markers, at least a few words, not the headline repeated, not furniture, not an instruction to a model."""
    end_marker = _END_MARKERS.search(article.text)
    limit = end_marker.start() if end_marker else len(article.text)
    title = normalize_for_search(article.title)
    spans: dict[int, tuple[int, np.ndarray | None]] = {}  # start -> (end, vector); chunks overlap by a sentence
    for chunk in store.chunks_of(article.id):
        stored = store.sentences_of(chunk.id)
        for start, end, vector in ([(chunk.start + s, chunk.start + e, v) for s, e, v in stored] if stored else
                                   [(chunk.start + s.start, chunk.start + s.end, None)
                                    for s in split_sentences(chunk.text)]):
            spans.setdefault(start, (end, vector))
    joined, pending = [], None
    for start in sorted(spans):  # a clause ending in a semicolon or colon is one sentence with what follows it
        end, vector = spans[start]
        if pending is not None:
            start, vector = pending[0], _mean_vector(pending[1], vector)
        pending = (start, vector) if article.text[start:end].rstrip().endswith(("؛", ";", ":")) else None
        if pending is None:
            joined.append((start, end, vector))
    if pending is not None:  # the article ends on a colon
        joined.append((pending[0], max(e for e, _ in spans.values()), pending[1]))
    out = []
    for start, end, vector in joined:
        sentence = article.text[start:end]
        if start >= limit or len(sentence.split()) < _MIN_PASSAGE_WORDS:
            continue
        if title and normalize_for_search(sentence).strip(" .") in title:
            continue
        if _FURNITURE.search(sentence.strip()) or is_instruction(sentence):
            continue
        out.append((start, end, vector))
    return out


def counted(text: str) -> dict[str, set[str]]:
    """Figures by what they count: "5 صواريخ" / "خمسة من عناصرها" -> {"صوار": {"5"}, "عناص": {"5"}} (the
    counted word's first four letters, after "من"; digits and number words alike)."""
    words = re.findall(r"\w+", normalize_for_search(text))
    out: dict[str, set[str]] = {}
    for i, word in enumerate(words[:-1]):
        value = stated_figures(word)
        if len(value) != 1 or word.endswith(("تين", "تان")):  # a dual is its own counted word
            continue
        noun = words[i + 2] if words[i + 1] == "من" and i + 2 < len(words) else words[i + 1]
        if not noun.isdigit() and len(noun) >= 3:
            out.setdefault(noun.removeprefix("ال")[:4], set()).update(value)
    return out


def outlets_differ(passages: list[Passage]) -> list[Flag]:
    """Where outlets covering one story give different figures for the same thing (one says 5 rockets, another
    4), as flags a reader sees: which outlet said what."""
    by_article: dict[str, tuple[str, dict[str, set[str]]]] = {}
    for p in passages:
        name, figures = by_article.setdefault(p.hit.article_id, (p.hit.source or p.hit.article_id, {}))
        for noun, values in counted(p.text).items():
            figures.setdefault(noun, set()).update(values)
    flags, items = [], list(by_article.values())
    for i, (name_a, a) in enumerate(items):
        for name_b, b in items[i + 1:]:
            for noun in sorted(a.keys() & b.keys()):
                if not a[noun] & b[noun]:
                    flags.append(Flag(kind="outlets_differ", detail=f"{name_a}: {', '.join(sorted(a[noun]))}; "
                                                                     f"{name_b}: {', '.join(sorted(b[noun]))} ({noun}…)"))
    return flags


def _mean_vector(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or b is None:
        return a if b is None else b
    v = a + b
    return v / (np.linalg.norm(v) or 1.0)


def _fact_weight(sentence: str, rare: set[str]) -> float:
    """What a sentence adds to a briefing beyond centrality: its figures and its rare words (names, places),
    with diminishing returns, so a sentence of facts beats a sentence of comment."""
    words = set(content_words(sentence))
    found = len(words & rare) + 2 * len(numbers(sentence))
    return _FACT_BONUS * found / (found + 3)


def verified_facts(rendering: str, arabic: str, rare: set[str] | None = None,
                   spelt: list[tuple[str, str]] = ()) -> list[str]:
    """What of an Arabic sentence can be said in English and checked in code: the people it names as the world
    spells them (`spelt`: (Arabic, Latin) pairs from `NameRomanizer.names_in`, where the rendering names them too),
    the names of the model's rendering whose consonant skeletons match words of the Arabic (titles it adds,
    "General", left out; with `rare`, only names of words few articles use: not "Iraq" in every story about Iraq;
    none with a word of a person already spelt), the Arabic's figures (digits and number words), and its dates and
    weekdays rendered by code. E.g. ["names: Qais Khazali, Tehran", "figures: 48"]."""
    model_names = latin_names(rendering or "")
    # The rendering says where a name is, though it rarely spells it: a person is listed only where a word of the
    # rendering's names renders a word of theirs ("Kabbi" for أكرم الكعبي). The index alone would also take
    # phrases for names ("أمام الحوار" as Emam Hawwar, "سلامة المرضى" as Salama Al-Mardi).
    rendered = [word for found in model_names for word in name_words(found)]
    names = list(dict.fromkeys(latin for person, latin in spelt
                               if any(find_in_arabic(word, person) for word in rendered)))
    spelt = [(person, latin) for person, latin in spelt if latin in names]
    for found in model_names:
        name = " ".join(name_words(found))
        if name and unverified_names(name, arabic, ""):  # "Cesar Khazali": the family name alone, if borne out
            family = verified_family_name(name, arabic, "")
            name = family[0] if family else ""
        # A person already spelt is not named again by the model's rendering of any word of the name
        # ("Mohammed Mehdi Mehdi" beside "Abou Mehdi al-Mouhandis").
        if not name or name in names or any(find_in_arabic(word, person) for word in name_words(name)
                                            for person, _ in spelt):
            continue
        # The whole name must render one run of the Arabic ("Shahid Shahid", word by word from two places, does
        # not), and not only common nouns of the glossary ("Mellisha" for ميليشيا, militia).
        where = find_in_arabic(name, arabic)
        if where is None or common_nouns_only(arabic[where[0]:where[1]]):
            continue
        if rare is None or set(content_words(arabic[where[0]:where[1]])) & rare:
            names.append(name)
    figures = [measured_en(f, arabic) for f in sorted(stated_figures(arabic), key=lambda x: (len(x), x))]
    dates = render_dates_en(arabic) + render_days_en(arabic)
    return [f"{label}: {', '.join(items)}" for label, items in (("names", names), ("figures", figures),
                                                                ("dates", dates)) if items]


def _opening_clause(text: str) -> str:
    """A headline from a sentence: its opening clause (its first 12 words when that clause is too short to
    say anything, "بهذه العبارة"), at most 12 words."""
    text = strip_citations(text)
    clause = re.split(r"[،,؛;:]", text, maxsplit=1)[0]
    return " ".join((clause if len(clause.split()) >= 5 else text).split()[:12]).rstrip(" .،,")


def _same_words(a: str, b: str) -> bool:
    """Two sentences that say the same: one's content words nearly all the other's (Jaccard >= 0.8), or one
    contained in the other."""
    na, nb = comparable(a), comparable(b)
    if na and nb and (na in nb or nb in na):
        return True
    wa, wb = set(content_words(a)), set(content_words(b))
    return bool(wa and wb) and len(wa & wb) / len(wa | wb) >= 0.8


def enforce(summary: str, passage_texts: dict[int, str]) -> tuple[str, list[Flag]]:
    """The last word on a summary, whichever way it was written: every sentence must be borne out by the
    passages it cites (`rag.verify.unsupported`) and say something no earlier sentence said; others are
    removed and flagged, so nothing shown is ever flagged as dropped."""
    kept: list[str] = []
    flags: list[Flag] = []
    for claim in claims(summary):
        claim = claim.strip()
        if not strip_citations(claim):
            continue
        cited = [passage_texts[n] for n in cited_numbers(claim) if n in passage_texts]
        why = unsupported(claim, cited)
        if why:
            flags.append(Flag(kind="unsupported_sentence", detail=f"removed ({why}): {strip_citations(claim)}"))
        elif any(_same_words(claim, k) for k in kept):
            flags.append(Flag(kind="repeated_sentence", detail=f"removed: {strip_citations(claim)}"))
        else:
            kept.append(claim)
    return " ".join(kept), flags


def _batches(items: list, size: Callable, budget: int) -> list[list]:
    batches, current, used = [], [], 0
    for item in items:
        if current and used + size(item) > budget:
            batches.append(current)
            current, used = [], 0
        current.append(item)
        used += size(item)
    return batches + ([current] if current else [])


def _split_headline(raw: str) -> tuple[str, str]:
    """First line = headline (markdown and labels removed, no citations), the rest = summary, at most
    four sentences."""
    lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
    if not lines:
        return "", ""
    headline = _HEADLINE_PREFIX.sub("", CITATION.sub("", lines[0])).strip(" *#\"'«»:")
    rest = " ".join(_LABEL.sub("", re.sub(r"^[-*•\d.)\s]+(?=\S)", "", line)) for line in lines[1:])
    rest = re.sub(r"^(?:الموجز|الملخص|summary)\s*[:：]\s*", "", rest, flags=re.I)
    if len(headline.split()) > 20 or (not rest and CITATION.search(lines[0])):
        headline, rest = "", " ".join(lines)  # no headline line: the model went straight to the summary
    spans = split_sentences(rest)
    if len(spans) > 4:
        rest = rest[:spans[3].end]
    return headline, rest.strip()


def _support(claim: str, passages: list[Passage]) -> list[float]:
    return [word_share(claim, p.text) for p in passages]


def _verify_sentences(summary: str, passages: list[Passage], lang: str) -> tuple[str, list[Flag]]:
    """Arabic summaries can be checked word by word against the passages (English ones translate): a sentence
    the model left uncited is cited to the one passage that contains most of its words, or dropped when none
    does; a cited sentence whose words are mostly absent from its passages is dropped."""
    outlets = {normalize_for_search(p.hit.source).removeprefix("ال") for p in passages if p.hit.source}
    tidied = [_tidy_claim(c, outlets) for c in claims(summary)]
    if lang != "ar":
        return " ".join(c for c in tidied if c), []
    by_n = {p.n: p for p in passages}
    kept, flags = [], []
    for claim in tidied:
        cited = [by_n[n] for n in cited_numbers(claim) if n in by_n]
        bare = CITATION.sub("", claim).strip()
        if not cited and len(bare.split()) < 3:
            continue  # labels and fragments
        if cited:
            if max(_support(bare, cited)) < SUPPORTED_SHARE:
                flags.append(Flag(kind="unsupported_sentence", detail=f"dropped, not in its passages: {bare}"))
                continue
            kept.append(claim.strip())
            continue
        scores = _support(bare, passages)
        best = int(np.argmax(scores))
        if scores[best] >= SUPPORTED_SHARE:
            kept.append(f"{bare.rstrip('.。')} [{passages[best].n}].")
        else:
            flags.append(Flag(kind="unsupported_sentence", detail=f"dropped, uncited and in no passage: {bare}"))
    return " ".join(kept), flags


_LEADING_CITATIONS = re.compile(r"^\s*((?:\[\d+(?:\s*[,،]\s*\d+)*\]\s*)+)(.*?)([.!?؟…]*)\s*$", re.S)
_PREFIX = re.compile(r"^\s*([^\s:：\-–]+(?:\s+[^\s:：\-–]+){0,2})\s*(?::|：|\s[-–]\s)\s*(?=\S)")


def _tidy_claim(claim: str, outlets: set[str]) -> str:
    """`[1] Sentence.` becomes `Sentence [1].`; a leading outlet name or label (`Outlet - `, `North: `) that a
    small model copies from the passage labels is removed."""
    words = claim.split()
    seen: dict[tuple, int] = {}
    for i in range(len(words) - 5):  # a small model that loops repeats itself word for word: keep one
        gram = tuple(words[i:i + 6])
        if gram in seen and i >= seen[gram] + 6:
            tail = " ".join(w for w in words[i:] if CITATION.fullmatch(w.strip(".")))
            claim = " ".join(words[:i]).rstrip(" ،,") + (f" {tail}" if tail else "")
            break
        seen.setdefault(gram, i)
    found = _LEADING_CITATIONS.match(claim)
    if found and found.group(2).strip():
        claim = f"{found.group(2).strip()} {found.group(1).strip()}{found.group(3) or '.'}"
    prefix = _PREFIX.match(claim)
    if prefix:
        words = normalize_for_search(prefix.group(1)).removeprefix("ال")
        if any(words and (words in o or o in words) for o in outlets) or prefix.group(1) in ("الشمال", "الجنوب"):
            claim = claim[prefix.end():]
    return claim.strip()


def _check_headline(headline: str, articles: list[Article], passages: list[Passage],
                    lang: str) -> tuple[str, list[Flag]]:
    """A one-article story keeps the outlet's own headline when it has one; otherwise the model's headline,
    when the passages bear it out, else a fallback from the article."""
    title = next((a.title for a in articles if a.title), "")
    # No title: the opening clause of the first passage (news leads name the event), at most 12 words.
    opening = re.split(r"[،,؛;:.]", passages[0].text, maxsplit=1)[0]
    fallback = title or " ".join(opening.split()[:12])
    if len(articles) == 1 and title:
        return title, []
    headline = _PREFIX.sub("", headline) if _PREFIX.match(headline) and lang == "ar" else headline
    if not headline:
        return fallback, []
    if lang == "ar" and word_share(headline, " ".join(p.text for p in passages)) < SUPPORTED_SHARE:
        return fallback, [Flag(kind="unsupported_headline", detail=f"the model's headline was not in the passages, replaced: {headline}")]
    missing = sorted(set(numbers(headline)) - set(numbers(" ".join(p.text for p in passages))))
    if missing:
        return fallback, [Flag(kind="unsupported_figure", detail=f"{', '.join(missing)} in the headline: {headline}")]
    return headline, []


def _extractive(passages: list[Passage], lang: str) -> tuple[str, list[int]]:
    if lang == "ar":
        firsts = list({p.hit.article_id: p for p in reversed(passages)}.values())[::-1][:3]
        return " ".join(f"{p.text.rstrip('.')} [{p.n}]." for p in firsts), [p.n for p in firsts]
    firsts = list({p.hit.article_id: p for p in reversed(passages)}.values())[::-1]
    return (" ".join(f"Reported by {p.hit.source or 'an outlet'}"
                     f"{' on ' + p.hit.date if p.hit.date else ''}: «{p.hit.title or p.hit.article_id}» [{p.n}]."
                     for p in firsts), [p.n for p in firsts])


def _renumber(stories: list[Story]) -> list[Story]:
    """One number per article across the whole briefing, so the source list at the end is unambiguous."""
    next_n, out = 1, []
    for story in stories:
        mapping = {}
        for c in story.citations:
            mapping[c.n] = next_n
            next_n += 1
        summary = re.sub(r"\[(\d+)\]", lambda m, mapping=mapping: f"[{mapping.get(int(m.group(1)), m.group(1))}]",
                         story.summary)
        citations = [c.model_copy(update={"n": mapping[c.n]}) for c in story.citations]
        out.append(story.model_copy(update={"summary": summary, "citations": citations}))
    return out


# ---- rendering -------------------------------------------------------------------------------------------------
_LABELS = {"ar": {"sources": "المصادر", "undated": "مقالات بلا تاريخ", "flags": "تنبيه"},
           "en": {"sources": "Sources", "undated": "Undated articles", "flags": "Check"}}


# How a story was made: in the record, not a warning to the reader.
QUIET_FLAGS = ("fallback", "extractive", "machine_rendered", "rendering_rejected")


def _source_line(c: BriefCitation) -> str:
    return " — ".join(x for x in (c.title, c.source, c.date, c.article_id) if x)


def _sources(b: Briefing) -> list[tuple[str, BriefCitation]]:
    """One line per article: the numbers that cite it, then its title, outlet, date and id."""
    by_article: dict[str, list[BriefCitation]] = {}
    for c in (c for s in b.stories for c in s.citations):
        by_article.setdefault(c.article_id, []).append(c)
    return [("".join(f"[{c.n}]" for c in cs), cs[0]) for cs in by_article.values()]


def render_markdown(b: Briefing) -> str:
    text = _render_markdown(b)
    return isolate_ltr_runs(text) if b.lang == "ar" else text


def _machine_note(b: Briefing) -> str:
    """How to read an English briefing made in extract mode."""
    kinds = {f.kind for s in b.stories for f in s.flags} if b.lang == "en" else set()
    if "machine_rendered" in kinds:
        return ("Each sentence renders the Arabic passage it cites; names, figures and dates are checked against "
                "it, the wording is not: follow the citation before quoting.")
    if "extractive" in kinds:
        return ("Each item quotes the article in Arabic; in brackets, what was checked in English: names (people "
                "as their names are spelt in Wikidata, others' spelling matched to the Arabic), figures and dates.")
    return ""


def _render_markdown(b: Briefing) -> str:
    labels = _LABELS[b.lang]
    out = [f"# {b.title}", ""]
    if b.message:
        out += [b.message, ""]
    if _machine_note(b):
        out += [f"*{_machine_note(b)}*", ""]
    for story in b.stories:
        out += [f"## {story.headline}", "", story.summary, ""]
        out += [f"> ⚠ {labels['flags']}: {f.kind}: {f.detail}" for f in story.flags if f.kind not in QUIET_FLAGS]
        if any(f.kind not in QUIET_FLAGS for f in story.flags):
            out.append("")
    sources = _sources(b)
    if sources:
        out += [f"## {labels['sources']}", ""] + [f"{numbers} {_source_line(c)}  " for numbers, c in sources] + [""]
    if b.undated:
        out += [f"{labels['undated']}: " + ", ".join(b.undated), ""]
    return "\n".join(out)


def render_html(b: Briefing) -> str:
    esc = html.escape
    labels = _LABELS[b.lang]
    direction = "rtl" if b.lang == "ar" else "ltr"

    def bidi(text: str) -> str:
        return isolate_ltr_runs(esc(text), html=True) if b.lang == "ar" else esc(text)

    def linked(text: str) -> str:
        return re.sub(r"\[(\d+)\]", r'<a href="#src-\1">[\1]</a>', bidi(text))

    body = [f"<h1>{bidi(b.title)}</h1>"]
    if b.message:
        body.append(f"<p>{esc(b.message)}</p>")
    if _machine_note(b):
        body.append(f'<p class="flag"><i>{esc(_machine_note(b))}</i></p>')
    for story in b.stories:
        body.append(f'<section><h2 dir="auto">{esc(story.headline)}</h2><p dir="auto">{linked(story.summary)}</p>')
        body += [f'<p class="flag" dir="auto">⚠ {esc(f.kind)}: {esc(f.detail)}</p>' for f in story.flags
                 if f.kind not in QUIET_FLAGS]
        body.append("</section>")
    sources = _sources(b)
    if sources:
        body.append(f"<h2>{labels['sources']}</h2><ul class=sources>")
        for numbers, c in sources:
            anchors = "".join(f'<span id="src-{n}"></span>' for n in re.findall(r"\d+", numbers))
            body.append(f'<li dir="auto">{anchors}{numbers} {bidi(_source_line(c))}</li>')
        body.append("</ul>")
    if b.undated:
        body.append(f"<p>{labels['undated']}: {bidi(', '.join(b.undated))}</p>")
    return f"""<!doctype html>
<html lang="{b.lang}" dir="{direction}"><head><meta charset="utf-8"><title>{esc(b.title)}</title><style>
body{{font-family:"Noto Naskh Arabic","Noto Sans Arabic","Amiri","Segoe UI",Tahoma,sans-serif;max-width:760px;
margin:2em auto;line-height:1.7;padding:0 1em}} [dir=auto]{{unicode-bidi:plaintext}} a{{text-decoration:none}}
.flag{{color:#8a6d3b;font-size:.9em}} .sources{{list-style:none;padding:0;font-size:.9em}}
</style></head><body>
{chr(10).join(body)}
</body></html>
"""


def render(b: Briefing, fmt: str) -> str:
    if fmt == "md":
        return render_markdown(b)
    if fmt == "html":
        return render_html(b)
    if fmt == "json":
        data = b.model_dump(include={"lang", "date_from", "date_to", "title", "undated", "message", "timings"})
        data["stories"] = [{"headline": s.headline, "summary": s.summary, "article_ids": s.article_ids,
                            "citations": [c.model_dump(include={"n", "article_id", "title", "source", "date"})
                                          for c in s.citations],
                            "flags": [f.model_dump() for f in s.flags]} for s in b.stories]
        return json.dumps(data, ensure_ascii=False, indent=1)
    raise BadInput(f"--format must be md, html or json, got {fmt!r}")
