"""The answer chain: retrieve, choose the evidence, extract, verify, and only then answer.

Two designs, by setting (`RAG_ANSWER_MODE`):
- `extract` (default, for small local models): the passages' sentences are ranked in code and the best one is
  streamed as evidence before the model runs. For an Arabic question the model copies the words that answer
  from the best few sentences (`words [n]`), and code checks they are a run of a shown sentence that says more
  than the question. For an English question it answers in a few English words (`words [n]`), and code checks
  them against the cited Arabic sentence: figures and months must be the sentence's (dates are rendered in
  code), every name must render an Arabic name of the sentence (`rag.names`) or be the question's own. What
  fails a check is not asserted: the answer quotes the sentence instead, or refuses. With
  `choice="model"`, the model first names one sentence by number (next-token probabilities).
- `generate` (for strong endpoints): the model writes a short cited answer from excerpts of the passages, and
  the same citation and grounding checks flag what it wrote.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from rag.arabic import detect_language, normalize_for_search, strip_diacritics
from rag.chunk import split_sentences
from rag.errors import ConfigError
from rag.llm import choose_option
from rag.names import (
    NameRomanizer,
    arabic_terms,
    asks_for_continent,
    continents_in,
    find_in_arabic,
    has_term,
    is_definite,
    latin_names,
    names_match,
    question_names,
    same_spelling,
    spelt_letters,
)
from rag.prompts import load_prompt
from rag.records import Answer, Citation, Flag, Hit
from rag.retrieve import check_question
from rag.verify import (
    ARABIC_LETTERS,
    CITATION,
    CONTROL_TOKENS,
    FIGURE,
    FIGURE_LIST,
    REFUSAL,
    Passage,
    cited_numbers,
    content_words,
    ground,
    is_instruction,
    is_refusal,
    months,
    name_words,
    numbers,
    passage_block,
    render_dates_en,
    render_days_en,
    render_figures_en,
    render_measures_en,
    render_ranges_en,
    strip_citations,
    unsupported_measures,
    unverified_names,
    verified_family_name,
    with_digits,
)

MODES = ("extract", "generate")
# Invented names in prompts/answer_example_*.txt (as search tokens); they exist in no real article.
EXAMPLE_MARKERS = {"ar": {"نخيله", "قندلي"}, "en": {"nukhaila", "qandali"}}
# First replies that are not words of the sentences (or another role's name): worth a second try, in code
# (name_beside_role) and then asking again with worked examples (prompts/extract_example_*.txt).
SECOND_TRY = ("unsupported_answer", "copied_question", "unverified_span", "wrong_role")


@dataclass
class Evidence:
    """A candidate sentence: its text, where it is in the article, and why it ranks where it does."""
    hit: Hit
    text: str
    start: int  # in the article
    end: int
    score: float

    def citation(self, n: int) -> Citation:
        return Citation(n=n, chunk_id=self.hit.chunk_id, article_id=self.hit.article_id, title=self.hit.title,
                        source=self.hit.source, date=self.hit.date, text=self.text, start=self.start, end=self.end)

    def passage(self, n: int) -> Passage:
        return Passage(n, self.hit, self.text, self.start, self.end)


def excerpt(store, hit: Hit, query_vector: np.ndarray | None, max_words: int) -> tuple[str, int, int]:
    """The chunk's sentences that best match the question, in reading order, up to `max_words` words: short
    prompts on a CPU. Returns (text, start, end), offsets in the article (of the first to the last sentence)."""
    chunk = store.chunk(hit.chunk_id)
    sentences = store.sentences_of(hit.chunk_id) if query_vector is not None else []
    if sentences:
        spans = [(s, e) for s, e, _ in sentences]
        order = list(np.argsort([-float(v @ query_vector) for _, _, v in sentences]))
    else:
        spans = [(s.start, s.end) for s in split_sentences(chunk.text)]
        order = list(range(len(spans)))
    chosen, words = [], 0
    order = [i for i in order if not is_instruction(chunk.text[spans[i][0]:spans[i][1]])]
    if not order:  # nothing but instructions: an empty excerpt, which answers nothing
        return "", chunk.start, chunk.start
    for i in order:
        n = len(chunk.text[spans[i][0]:spans[i][1]].split())
        if chosen and words + n > max_words:
            continue
        chosen.append(int(i))
        words += n
    chosen.sort()
    parts = []
    for j, i in enumerate(chosen):
        if j and i != chosen[j - 1] + 1:
            parts.append("…")
        parts.append(chunk.text[spans[i][0]:spans[i][1]])
    text = " ".join(parts)
    if len(text.split()) > max_words:  # a single very long sentence
        text = " ".join(text.split()[:max_words]) + " …"
    return text, chunk.start + spans[chosen[0]][0], chunk.start + spans[chosen[-1]][1]


# How much the lexical vote counts beside the cosine, per question language. Cross-lingual cosines are weak, so an
# English question leans more on its names and terms. Measured with the answering sentence among the 4 shown, on
# evals/questions.jsonl: Arabic 21/21 at 0.15 (20/21 at 0.5), English 12/14 at 0.5 (10/14 at 0.15).
_LEXICAL_WEIGHT = {"ar": 0.15, "en": 0.5}


def rank_sentences(store, hits: list[Hit], question: str, lang: str, query_vector: np.ndarray | None,
                   limit: int, max_words: int) -> list[Evidence]:
    """The retrieved chunks' sentences, best first: cosine to the question, plus a lexical vote (shared words
    for an Arabic question; for an English one, its names found in the Arabic by skeleton and its common news
    terms through a small glossary), plus the question's figures. At most `limit` sentences, `max_words` words."""
    q_words = set(content_words(question))
    q_numbers = numbers(question)
    names = question_names(question) if lang == "en" else []
    terms = arabic_terms(question) if lang == "en" else []
    seen: set = set()
    scored: list[Evidence] = []
    for rank, hit in enumerate(hits):
        chunk = store.chunk(hit.chunk_id)
        rows = store.sentences_of(hit.chunk_id)
        spans = [(s, e, [v]) for s, e, v in rows] or [(s.start, s.end, []) for s in split_sentences(chunk.text)]
        # A clause that ends in a semicolon reads with the one after it ("أمهلت العصائب …؛ الحكومة 48 ساعة").
        joined: list[tuple[int, int, list]] = []
        for s, e, vectors in spans:
            if joined and chunk.text[joined[-1][0]:joined[-1][1]].rstrip().endswith(("؛", ";")):
                joined[-1] = (joined[-1][0], e, joined[-1][2] + vectors)
            else:
                joined.append((s, e, vectors))
        for s, e, vectors in joined:
            start = chunk.start + s
            text = CONTROL_TOKENS.sub(" ", chunk.text[s:e]).strip()
            if (hit.article_id, start) in seen or text in seen or len(text.split()) < 3:
                continue  # chunks overlap by a sentence; a caption may stand twice
            if is_instruction(chunk.text[s:e]):
                continue  # an article that talks to the model is not evidence
            seen.update({(hit.article_id, start), text})
            dense = max((float(v @ query_vector) for v in vectors), default=0.0) if query_vector is not None \
                else 0.0
            if lang == "ar":
                lexical = len(q_words & set(content_words(text))) / max(len(q_words), 1)
            else:
                norm_words = re.findall(r"\w+", normalize_for_search(text))
                found_names = sum(1 for n in names if find_in_arabic(n, text) is not None)
                found_terms = sum(1 for t in terms if has_term(t, norm_words))
                lexical = (found_names / max(len(names), 1) if names else 0.0) * 0.6 + \
                    min(found_terms, 4) / 4 * 0.4
            figures = 0.05 if q_numbers & numbers(text) else 0.0
            score = dense + _LEXICAL_WEIGHT[lang] * lexical + figures - 0.01 * rank
            scored.append(Evidence(hit, text, start, start + len(chunk.text[s:e].rstrip()), round(score, 4)))
    scored.sort(key=lambda ev: -ev.score)
    out, words = [], 0
    for ev in scored:
        n = len(ev.text.split())
        if out and words + n > max_words:
            continue
        out.append(ev)
        words += n
        if len(out) >= limit:
            break
    return out


def adds_information(span: str, question: str) -> bool:
    """Whether Arabic words the model copied say something the question does not: a figure, or a word whose
    stem the question does not hold."""
    if numbers(span) - numbers(question):
        return True
    asked = content_words(question)
    return any(not _stem_among(word, asked) for word in content_words(span))


def question_share(sentence: str, question: str) -> float:
    """The share of the question's content words whose stem the sentence holds: a span copied from a sentence
    about something else answers another question (measured on Arabic XQuAD: every right answer came from a
    sentence holding at least 43% of them; 8 of 16 wrong ones from sentences holding under 30%)."""
    asked = content_words(question)
    written = content_words(sentence)
    return sum(1 for w in asked if _stem_among(w, written)) / len(asked) if asked else 1.0


def _same_stem(a: str, b: str) -> bool:
    """Two Arabic words share a stem when one starts or ends with the other: a suffix (يقود / يقودها,
    صاروخ / صاروخا) or a clitic (حركه / لحركه, محافظه / بمحافظه)."""
    short, long_ = sorted((a, b), key=len)
    return len(short) >= 3 and (long_.startswith(short) or long_.endswith(short))


def _stem_among(word: str, words: list[str]) -> bool:
    return any(_same_stem(word, w) for w in words)


# Punctuation that clings to an Arabic word in running text, stripped before words are compared.
_WORD_EDGES = ".,،؛:\"'«»“”()"


def _plain_words(text: str) -> list[str]:
    """A sentence's words, normalised for search, without the punctuation around them."""
    return [normalize_for_search(w).strip(_WORD_EDGES) for w in text.split()]


def _word_before(sentence: str, start: int) -> re.Match | None:
    """The word just before `start` (group 1, with any punctuation on it), or None at the sentence's start."""
    return re.search(r"(\S+)\s+$", sentence[:start])


def has_term_word(word: str, terms: list[str]) -> bool:
    return any(has_term(t, [word]) for t in terms)


def _numbered(sentences: list[Evidence]) -> str:
    """Sentences as the prompts show them: "[n] text", one a line, n from 1."""
    return "\n".join(f"[{i}] {' '.join(ev.text.split())}" for i, ev in enumerate(sentences, start=1))


def _cited_first(reply: str, shown: int) -> list[int]:
    """Indexes of the shown sentences, those the reply cites first, then in ranked order."""
    cited = [n - 1 for n in cited_numbers(reply) if 1 <= n <= shown]
    return list(dict.fromkeys(cited + list(range(shown))))


def _same_word(said: str, written: str) -> bool:
    """A copied word matches a written one when equal, or when one ends with the other and the shorter has
    at least 4 letters: a clitic the model dropped or added (العبثي / بالعبثي), a letter it lost (صطفى)."""
    if said == written:
        return True
    short, long_ = sorted((said, written), key=len)
    return len(short) >= 4 and long_.endswith(short)


def locate_span(reply: str, sentence: str, question: str = "") -> tuple[int, int] | None:
    """Where the model's copied words are in the sentence (offsets of whole words), compared in normalised
    form: the longest run of the reply's words that the sentence holds, contiguous and in order, and that says
    more than the question (a small model restates the question before it answers: "… هو جون كيربي"). A figure
    the model wrote as digits matches the sentence's number word (3 / ثلاثة). What the model added around the
    run is not asserted, except that a figure it added which the sentence does not hold rejects the reply
    ("72 ساعة" is not found in a sentence that says "48 ساعة")."""
    clean = _WORD_EDGES + "[]"
    words = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", sentence)]
    norm = [normalize_for_search(w).strip(clean) for w, _, _ in words]
    said = [w for w in (normalize_for_search(w).strip(clean) for w in strip_citations(reply).split()) if w]
    if numbers(" ".join(said)) - numbers(sentence):
        return None
    asked = content_words(question)
    written = {next(iter(numbers(w))): w for w in norm if len(numbers(w)) == 1 and not w[:1].isdigit()}
    said = [written.get(w, w) if w.isdigit() and w not in norm else w for w in said]
    for length in range(len(said), 0, -1):
        for at in range(len(said) - length + 1):
            run = said[at:at + length]
            where = next((j for j in range(len(norm) - length + 1)
                          if all(_same_word(a, b) for a, b in zip(run, norm[j:j + length], strict=True))), None)
            if where is None:
                continue
            # Most of what the model said must be found: "أبو" of another man's name, in a sentence lacking
            # "آلاء الولائي", verifies nothing the model said.
            rest = content_words(" ".join(said[:at] + said[at + length:]))
            unfound = [w for w in rest if not _stem_among(w, asked)]
            if len(unfound) > length:
                continue
            span = sentence[words[where][1]:words[where + length - 1][2]]
            if adds_information(span, question):
                return words[where][1], words[where + length - 1][2]
    return None


_FIGURE_QUESTION = re.compile(r"(?:^|[\s،؟?])كم\s|\bhow (?:many|much|long)\b|\bwhat number\b", re.I)
_TIME_QUESTION = re.compile(r"(?:^|\s)متى(?:\s|$|؟)|\bwhen\b|\b(?:what|which) (?:time|date|day|year|month)\b|"
                            r"(?:في )?أي(?:ة)? (?:ساعة|يوم|تاريخ|عام|سنة|شهر)|ما (?:هو |هي )?(?:العام|السنة|التاريخ)"
                            r"(?:\s|$|؟)", re.I)
# Nouns that head the name of a place smaller than a state; a state or a city's people can act, these cannot.
_PLACE_HEADS = frozenset(normalize_for_search(w) for w in (
    "مدينة محافظة قضاء ناحية قرية بلدة إمارة مقاطعة منطقة جزيرة حي شارع ساحة").split())
# "who": someone is asked for. Arabic "من" opens "from where" and "from which" as well.
_WHO_QUESTION = re.compile(r"(?:^|[,:،]\s*)(?:who|whom|whose)\b|^\s*من\s+(?!أين|اين|أي|اي|أجل|اجل|خلال|بين|حيث)",
                           re.I)
_HOUR_QUESTION = re.compile(r"في أي ساعة|أية ساعة|\bwhat time\b|\bat what hour\b", re.I)
_TIME_WORDS = ("فجر", "صباح", "ظهر", "عصر", "مساء", "ليل", "امس", "اليوم", "غدا", "الماضي", "العام", "عام")
_HOUR_WORDS = ("ساعه", "فجر", "صباح", "ظهر", "عصر", "مساء", "ليل", "منتصف")


def _asks_for_figure_or_date(question: str) -> bool:
    """A "how many" or a "when" question: answered by a figure or a date, not a name."""
    return bool(_FIGURE_QUESTION.search(question) or _TIME_QUESTION.search(question))


def counts_by_dual(span: str, question: str) -> bool:
    """Whether an answer to "how many" counts in the dual the very noun the question counts: "فريقين" for "كم
    فريقاً", "منطقتان" for "كم … من منطقة". A dual adjective counts nothing ("الضخمتين", "متوسعتان" for those two
    questions on Arabic XQuAD), nor does one with the article."""
    asked = content_words(question)
    for word in _plain_words(span):
        stem = re.fullmatch(r"([\u0621-\u064a]{3,}?)(?:تين|تان|ين|ان)", word)
        if stem and not is_definite(word) and _stem_among(stem.group(1), asked):
            return True
    return False


def answers_the_kind_asked(span: str, question: str) -> bool:
    """A "how many" question is answered by a figure, a "what time" question by a time of day, a "when"
    question by a date, a time or a day, a "which continent" question by a continent (measured on Arabic XQuAD:
    «ساحل المحيط الأطلسي» for the continent off whose coast the Canaries lie), a "who" question by at least a
    word of its own, not the question's words and a figure (English XQuAD: "The Franks entered the Euphrates
    valley in 1047" for who led them there)."""
    if asks_for_continent(question):
        return bool(continents_in(span))
    if _WHO_QUESTION.search(question):
        asked = content_words(question)
        first = normalize_for_search(span).split()[:1]
        if first and first[0].removeprefix("و") in _PLACE_HEADS:
            return False  # a place is not a "who" ("إمارة كابوا" for the count of Melfi; Arabic XQuAD)
        return any(not _stem_among(word, asked) for word in content_words(span))
    if _FIGURE_QUESTION.search(question):
        return bool(numbers(span, duals=False)) or counts_by_dual(span, question)
    if _HOUR_QUESTION.search(question):  # a time of day, or an hour's number that is not a date
        return any(w in normalize_for_search(span) for w in _HOUR_WORDS) or bool(numbers(span) and not months(span))
    if _TIME_QUESTION.search(question):
        norm = normalize_for_search(span)
        return bool(numbers(span) or months(span) or render_days_en(span) or any(w in norm for w in _TIME_WORDS))
    return True


_ORDINAL_HOURS = ("الأولى|الواحدة|الثانية|الثالثة|الرابعة|الخامسة|السادسة|السابعة|الثامنة|التاسعة|العاشرة|"
                  "الحادية عشرة|الثانية عشرة")
_HOUR_OF_DAY = re.compile(
    rf"(?:ال)?ساع[ةه]\s+(?:\d{{1,2}}(?:[:.]\d{{2}})?|(?:{_ORDINAL_HOURS})(?:\s+عشرة)?)(?:\s+و(?:النصف|الربع|\S+\s+دقيقة))?"
    r"(?:\s+(?:من\s+)?(?:فجر|صباح|ظهر|عصر|مساء|ليل|منتصف\s+ليل)[^\s،,.]*"
    r"(?:\s+(?:يوم\s+)?(?:ال)?(?:أحد|اثنين|إثنين|ثلاثاء|أربعاء|خميس|جمعة|سبت))?)?")


def hour_of_day(sentence: str) -> tuple[int, int] | None:
    """The time of day a sentence gives, read in code for "what time" when the model copied a date instead:
    "الساعة الثانية من فجر الإثنين" (an hour word, then an ordinal or digits; not "الساعة الماضية")."""
    found = _HOUR_OF_DAY.search(sentence)
    return found.span() if found else None


_ARABIC_WORD = re.compile("[\u0621-\u064a]+")  # a word of Arabic letters only, as normalised for search
_ROLE_QUESTION = re.compile(r"^\s*(?:من\s+(?:هو|هي|هم)|ما\s+(?:هو\s+)?اسم)\s+(\S+)")


def name_beside_role(sentence: str, question: str) -> tuple[int, int] | None:
    """For "who is the X of Y" asked in Arabic: the name the sentence sets beside "X of Y" (`name_beside`)."""
    asked_role = _ROLE_QUESTION.search(normalize_for_search(question))
    if not asked_role:
        return None
    role, asked = asked_role.group(1).strip("؟?،,"), content_words(question)
    return name_beside(sentence, lambda word: _same_stem(word, role), lambda word: _stem_among(word, asked))


# English role words of "who is the X of Y" -> the Arabic stems that say the role (normalised, article stripped).
ROLE_TERMS = {"spokes": ["متحدث", "ناطق"], "secretary": ["امين"], "leader": ["زعيم", "قائد", "امين"],
              "commander": ["قائد"], "head": ["رئيس"], "chief": ["رئيس", "قائد"], "ambassador": ["سفير"],
              "minister": ["وزير"], "president": ["رئيس"], "governor": ["محافظ"], "director": ["مدير"]}
_ROLE_QUESTION_EN = re.compile(r"^\s*who\s+(?:is|was)\s+(?:the\s+)?([^?]+)", re.I)


def name_beside_role_en(sentence: str, question: str) -> tuple[int, int] | None:
    """For "who is the X of Y" asked in English: the name the Arabic sentence sets beside the role
    (`name_beside`), the role and Y read through the glossary (secretary -> أمين, movement -> حركة) and Y's names
    by skeleton ("Kataib" -> "الكتائب")."""
    asked_role = _ROLE_QUESTION_EN.search(question)
    words = re.findall(r"[a-z]+", asked_role.group(1).lower()) if asked_role else []
    roles = next((stems for word in words for key, stems in ROLE_TERMS.items() if word.startswith(key)), None)
    if not roles:
        return None
    terms = arabic_terms(question)
    asked_names = [w for name in question_names(question) for w in name_words(name)]
    return name_beside(sentence, lambda word: has_term_word(word, roles),
                       lambda word: has_term_word(word, terms) or any(names_match(n, word) for n in asked_names))


def name_beside(sentence: str, is_role: Callable[[str], bool], is_asked: Callable[[str], bool]
                ) -> tuple[int, int] | None:
    """The name a sentence sets beside a role, as offsets, or None: in commas after it ("المتحدث باسم "الكتائب"،
    كاظم الفرطوسي، لوكالة"), in commas before it ("تغريدة "أبو علي العسكري"، المتحدث باسم "كتائب حزب الله"،"),
    or straight after it up to a dash or a bracket ("أمين عام الحركة أكرم الكعبي -خلال كلمة"). Every word
    between the role and the name must be the question's (`is_asked`, or "باسم"), so the name is Y's X and not
    another's; the name is 2-4 words, none the question's, a figure, a particle or a verb of saying."""
    words = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", sentence)]
    bare = [normalize_for_search(w).strip(_WORD_EDGES) for w, _, _ in words]

    def ends_phrase(i: int) -> bool:
        return words[i][0].rstrip("\"'»”").endswith(("،", ","))

    def opens_aside(i: int) -> bool:  # "-خلال كلمة"، "(البنتاغون)": the name before it is closed
        return i < len(words) and words[i][0].startswith(("-", "–", "—", "("))

    def a_name(first: int, last: int) -> tuple[int, int] | None:
        if not 2 <= last - first + 1 <= 4 or first < 0 or last >= len(words):
            return None
        if bare[first] in _DANGLING:  # "في بيان": a phrase of its own ("علي" inside a name is a name)
            return None
        for w in bare[first:last + 1]:
            if not w or numbers(w) or w in _NOT_NAME_WORDS or is_asked(w) or not _ARABIC_WORD.fullmatch(w):
                return None
        span = sentence[words[first][1]:words[last][2]]
        start = words[first][1] + len(span) - len(span.lstrip(_WORD_EDGES))
        return start, words[last][1] + len(words[last][0].rstrip(_WORD_EDGES))

    for i, word in enumerate(bare):
        if not is_role(word):
            continue
        # The role's own phrase: the question's words (and "باسم") up to a comma.
        end = i
        while not ends_phrase(end) and end + 1 < len(words) and end - i < 6 \
                and (bare[end + 1] == "باسم" or is_asked(bare[end + 1])):
            end += 1
        if not all(w == "باسم" or is_asked(w) for w in bare[i + 1:end + 1]):
            continue
        if not ends_phrase(end):
            # No comma: a name straight after the role's phrase, closed by a dash or a bracket.
            close = next((j for j in range(end + 2, min(end + 5, len(words))) if opens_aside(j + 1)), None)
            if end > i and close is not None and (found := a_name(end + 1, close)):
                return found
            continue
        after = next((j for j in range(end + 1, min(end + 5, len(words))) if ends_phrase(j)), None)
        if after is not None and (found := a_name(end + 1, after)):
            return found
        if i and ends_phrase(i - 1):  # "«NAME»، ROLE …،"
            first = next((j for j in range(i - 1, max(i - 5, -1), -1)
                          if words[j][0].startswith(("\"", "«", "“")) or j == 0 or ends_phrase(j - 1)), None)
            if first is not None and (found := a_name(first, i - 1)):
                return found
    return None


def names_the_role_asked(sentence: str, question: str) -> bool:
    """"Who is the spokesman of X" is answered by a sentence that speaks of a spokesman: the role the question
    asks about ("من هو المتحدث…", "ما اسم القاعدة…") must be in the sentence the name comes from. The leader of X
    named in another sentence is not X's spokesman (measured: "أبو آلاء الولائي" from "زعيم كتائب سيد الشهداء")."""
    asked = _ROLE_QUESTION.search(normalize_for_search(question))
    if not asked:
        return True
    role = asked.group(1).strip("؟?،,")
    return _stem_among(role, _plain_words(sentence))


def only_foreign_words(span: str, sentence: str = "", start: int = 0) -> bool:
    """Latin words alone, copied for an Arabic question, are the article's gloss of an Arabic word, not the
    answer: '"Franks"' from "افرنجي، معناه "Franks"" (Arabic XQuAD). Figures with a unit ("565 °C") are answers,
    and so is a name the sentence writes in Latin letters as part of its own text, straight after an Arabic word
    that is not a gloss word ("الشركة Energiprojekt AB في السويد", Arabic XQuAD)."""
    if not (re.search("[A-Za-z]", span) and detect_language(span) == "en" and not numbers(span)
            and not re.search("[\u0621-\u064a]", span)):
        return False
    before = _word_before(sentence, start)
    if before is None or span.lstrip()[:1] in "\"'«“([":
        return True
    previous = before.group(1)
    if not re.fullmatch("[\u0621-\u064a]+", strip_diacritics(previous)):
        return True  # after punctuation, a bracket or a quotation mark: set apart, a gloss
    norm = normalize_for_search(previous)
    return norm in _GLOSS_WORDS or (norm.startswith("بال") and norm.endswith("يه"))  # "in Polish", "بالإنجليزية"


# Words that introduce a gloss: "معناه" (meaning), "أي" (that is), "يعني".
_GLOSS_WORDS = frozenset(normalize_for_search(w) for w in "معناه معناها يعني تعني أي وتعني ويعني".split())


# Words an answer cannot end on: a preposition, a relative or a particle leaves the phrase open ("... دون").
_DANGLING = frozenset(normalize_for_search(w) for w in (
    "في من على إلى الى عن أن ان أو او مع دون بين عند حتى منذ التي الذي الذين اللذين حيث قد لم لن ثم كما لـ و").split())
_PAIRS = (("(", ")"), ("[", "]"), ("«", "»"), ("“", "”"))


def cut_off(span: str) -> bool:
    """Words copied across a boundary are a fragment, not an answer: a span that closes a bracket or quotation it
    did not open, or opens one it does not close ('وسيد إيطاليا وكونت النورمان …")', from a title quoted in
    brackets), that ends on a word that leaves the phrase open ("… يمكنهم نكث عهودهم دون"), or that opens on "and
    the …", the second half of a pair ("والمقاييس عام 1960" for what was named after Tesla; Arabic XQuAD)."""
    if span.count('"') % 2 or any(span.count(a) != span.count(b) for a, b in _PAIRS):
        return True
    words = normalize_for_search(span).split()
    if words and words[0].startswith("وال") and len(words[0]) >= 6:
        return True
    if words and all(w.strip("\"'()[]«»“”").removeprefix("و") in _DANGLING for w in words):
        return True  # particles alone: "والذي" (Arabic XQuAD)
    return len(words) > 1 and words[-1].strip("\"'()[]«»“”") in _DANGLING


def only_a_gloss(span: str) -> bool:
    """Words wholly in brackets gloss what comes before them: '("الغُواص")', the common name of the illness just
    named, copied for "what device treats illnesses such as …" (Arabic XQuAD)."""
    return bool(re.fullmatch(r"\(\s*[\"'«“]?[^()\"'«»“”]+[\"'»”]?\s*\)", span.strip()))


# Questions whose answer may be a place, a time or a manner: a word after a preposition answers them.
_WHERE_WHEN_HOW = re.compile(r"(?:^|\s)(?:أين|متى|كيف|بماذا|بم)(?:\s|$|؟)|في أي|\b(?:where|when|how)\b", re.I)


def lone_prepositional(span: str, question: str) -> bool:
    """One word carrying a preposition and the article ("بالحكومة", "in government") answers no "what" or "who":
    it is the tail of a phrase (Arabic XQuAD: copied from "انتخاب حزب العمال البريطاني بالحكومة" for what led
    the UK to sign). A "where", "when" or "how" may be answered so."""
    words = normalize_for_search(span).split()
    return len(words) == 1 and words[0].startswith(("بال", "لل", "كال")) and not _WHERE_WHEN_HOW.search(question)


# A figure straight after a negation ("لا توجد معاهدة واحدة") is the count of nothing; "لا يقل عن" (no fewer than)
# bounds a count, it does not deny it.
_BOUNDS = ("يقل", "تقل", "يزيد", "تزيد", "اقل", "اكثر")
_NEGATIONS = frozenset(normalize_for_search(w) for w in "لا ليس ليست لم لن بدون دون غير ولا ولم".split())


def negated_figure(sentence: str, start: int) -> bool:
    """Whether one of the three words before a copied figure is a negation: "لا توجد معاهدة واحدة أصلية" (there is
    no single founding treaty) gives no count of one (Arabic XQuAD)."""
    before = _plain_words(sentence[:start])[-3:]
    return any(w in _NEGATIONS and not nxt.startswith(_BOUNDS) for w, nxt in pairwise([*before, ""]))


def _years(text: str) -> set[str]:
    return {n for n in numbers(text, duals=False) if re.fullmatch(r"1[5-9]\d\d|20\d\d", n)}


def about_another_year(sentence: str, question: str) -> bool:
    """Whether a question that names a year is answered from a sentence that names other years and not that one:
    "36.9%" (Warsaw's Jews in 1909) for the Protestants of 1901 (English XQuAD)."""
    asked, stated = _years(question), _years(sentence)
    return bool(asked and stated and not asked & stated)


_SCALE_WORDS = frozenset(normalize_for_search(w) for w in "ألف آلاف مليون ملايين مليار مليارات من".split())


def _consonants(word: str) -> str:
    """A word's letters without a plural ending and the letters that spell vowels: اعتراضات and اعترض both
    give عترض, close enough to tell what a figure counts."""
    word = re.sub("(?:ات|ون|ين)$", "", word) if len(word) > 5 else word
    return re.sub("[اويى]", "", word)


def counts_something_else(sentence: str, start: int, end: int, question: str) -> bool:
    """For "how many X": whether the copied figure counts another thing than X while another figure of the same
    sentence counts X: "88" («88 عرقلة», tackles) for "how many did Josh Norman intercept" beside «بأربع اعتراضات»
    (Arabic XQuAD). What a figure counts is the word after it (after a scale word or "من")."""
    asked = {_consonants(w) for w in content_words(question)} - {""}
    words = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", sentence)]

    def counts_asked(i: int) -> bool | None:  # None: nothing after the figure to count
        j = i + 1
        while j < len(words) and normalize_for_search(words[j][0]) in _SCALE_WORDS:
            j += 1
        if words[i][0] != words[i][0].rstrip(_WORD_EDGES) or j >= len(words):
            return None
        stemmed = content_words(words[j][0])  # stemmed as the question's words are: "الشركات" as "شركات"
        noun = _consonants(stemmed[0] if stemmed else normalize_for_search(words[j][0].strip(_WORD_EDGES)))
        return any(len(a) >= 3 and len(noun) >= 3 and (noun.startswith(a) or a.startswith(noun)) for a in asked)

    figures = [i for i, (word, _, _) in enumerate(words) if numbers(word.strip(_WORD_EDGES), duals=False)]
    copied = [i for i in figures if words[i][1] < end and words[i][2] > start]
    if len(copied) != 1 or counts_asked(copied[0]) is not False:
        return False
    return any(counts_asked(i) for i in figures if i != copied[0])


# An answer is a few words (the longest right answer of the seed and XQuAD runs is eight, a date); more is a
# clause copied from its sentence, which is better shown whole, as a quote.
MAX_ANSWER_WORDS = 10


def cut_from_its_noun(sentence: str, start: int) -> bool:
    """A span that opens on an adjective of relation (…ية) straight after its noun (both indefinite, or both with
    the article) is the tail of a noun phrase without its noun: "حضرية ضخمة" from "مناطق إحصائية حضرية ضخمة",
    "الضريبية" from "والأرصدة الضريبية" (Arabic XQuAD). A
    preposition, a particle or punctuation before it starts a phrase of its own ("في سورية")."""
    before = _word_before(sentence, start)
    first = sentence[start:].split(maxsplit=1)
    if not before or not first:
        return False
    word, previous = normalize_for_search(first[0].strip(_WORD_EDGES)), before.group(1)  # "الابتدائية،"
    if previous != previous.rstrip(_WORD_EDGES + "-–—/") or not _ARABIC_WORD.fullmatch(previous):
        return False
    previous = normalize_for_search(previous)
    if len(word) >= 5 and word.endswith("يه") and is_definite(word) and is_definite(previous):
        return True  # the same with the article: "الضريبية" from "والأرصدة الضريبية" (Arabic XQuAD)
    return (len(word) >= 5 and word.endswith("يه") and not is_definite(word) and not is_definite(previous)
            and previous not in _DANGLING and previous not in _NOT_NAME_WORDS)


_CLITICS = ("و", "ب", "ل", "ف", "ك")
# Figures just before a span, with nothing but spaces and "و" between them: "687 و760 " before "نانومتر".
_FIGURES_BEFORE = re.compile(r"(?:^|\s)(\d[\d.,]*(?:\s*و\s*\d[\d.,]*)*)\s+$")


def with_its_figure(sentence: str, start: int) -> int:
    """A span that opens on the word a figure counts or measures, right after the figure, is widened to it:
    "نانومتر" from "687 و760 نانومتر" (Arabic XQuAD: the unit alone stated no answer)."""
    first = sentence[start:].split(maxsplit=1)
    if not first or numbers(first[0]):
        return start
    figures = _FIGURES_BEFORE.search(sentence[:start])
    return figures.start(1) if figures else start


_RANGE_JOINT = r"\s*(-|–|إلى|الى|حتى|و)\s*"


def with_its_range(sentence: str, start: int, end: int) -> tuple[int, int]:
    """A figure that is one end of a range is widened to the range: "2005" from "بين سنتي 2005 و2010" (Arabic
    XQuAD, where the one year stated a wrong fact). "و" makes a range only after "بين" ("قتل 5 و10 جرحى" is two
    counts); the "بين" or "من" that opens a range, and a word between it and the figure, are kept with it."""
    span = sentence[start:end]
    core = span.strip(" .،,؛:")
    if not core or not re.fullmatch(FIGURE, core):
        return start, end
    first = start + span.index(core)
    last = first + len(core)
    if after := re.match(_RANGE_JOINT + FIGURE, sentence[last:]):
        joint, last = after.group(1), last + after.end()
    elif before := re.search(FIGURE + _RANGE_JOINT + "$", sentence[:first]):
        joint, first = before.group(1), before.start()
    else:
        return start, end
    opener = re.search(r"(?:^|\s)((بين|من)\s+(?:[^\s\d]+\s+)?)$", sentence[:first])
    if joint == "و" and not (opener and opener.group(2) == "بين"):
        return start, end
    return (opener.start(1) if opener else first), last


def with_its_head_noun(sentence: str, start: int) -> int:
    """Where a span opens on a definite word straight after a noun in the construct state (a word ending in ة,
    without the article or a clitic), the span is that noun's complement cut from it: "التعقيد الحاسوبي" from
    "نظرية التعقيد الحاسوبي" (Arabic XQuAD; the gold is the whole phrase). The span is widened to open on the
    noun. No verb ends in ة, so a verb and its subject ("أعلنت الحكومة") are never joined this way."""
    before = _word_before(sentence, start)
    first = sentence[start:].split(maxsplit=1)
    if not before or not first or numbers(first[0]) or not is_definite(normalize_for_search(first[0])):
        return start
    previous = strip_diacritics(before.group(1))
    norm = normalize_for_search(previous)
    if not re.fullmatch("[\u0621-\u064a]{2,}ة", previous) or previous.startswith(_CLITICS) or is_definite(norm) \
            or norm in _DANGLING or norm in _NOT_NAME_WORDS:
        return start
    return before.start(1)


def with_its_complement(sentence: str, start: int, end: int) -> int:
    """A span that ends on a noun in the construct state (a word ending in ة, without the article, not a counted
    noun after a figure) ends cut from its complement: "في جامعة" from "في جامعة باريس" (Arabic XQuAD). It is
    widened by the words that follow while nothing but a space parts them and each is no particle, through an
    indefinite word only to a definite one that closes the chain ("قاعدة عين الأسد"); at most three words."""
    particles = _DANGLING | _NOT_NAME_WORDS
    widened = False
    for _ in range(3):
        words = sentence[start:end].split()
        last = strip_diacritics(words[-1]) if words else ""
        norm = normalize_for_search(last)
        after = re.match(r" +([^\s.,،؛:\"'«»“”()]+)", sentence[end:])
        if not after or normalize_for_search(after.group(1)) in particles \
                or not content_words(after.group(1)) or is_definite(norm) or norm in particles:
            return end
        construct = re.fullmatch("[\u0621-\u064a]{2,}ة", last) \
            and not (len(words) > 1 and numbers(words[-2], duals=False))
        # Through an indefinite word only to a word with the bare article: "للتفاوض" after "ثلاثة أشهر" is a
        # prepositional phrase, not the chain's end.
        if not construct and not (widened and normalize_for_search(after.group(1)).startswith("ال")):
            return end
        end += after.end(1)
        widened = True
    return end


def mostly_the_question(span: str, question: str) -> bool:
    """Copied words that are mostly the question's own, with no figure of their own, do not name what was asked:
    "الفصائل المسلحة العمليات ضد القوات الأميركية" for "which armed factions threatened US forces?" is one new
    word beside four of the question's (every right Arabic span of the seed questions shares none, or is a figure).
    A new noun heading the question's words names a new thing: "مؤشر المحرك البخاري" for "what instrument examines
    the steam engine's performance?" (Arabic XQuAD); so a noun phrase of two or three words, no particle between
    them, that opens on a word of its own is not the question's ("العمليات ضد القوات الأميركية" still is)."""
    if numbers(span) - numbers(question):
        return False
    words, asked = content_words(span), content_words(question)
    if 2 <= len(words) <= 3 and len(span.split()) == len(words) and not _stem_among(words[0], asked):
        return False
    shared = sum(1 for w in words if _stem_among(w, asked))
    return len(words) >= 2 and shared / len(words) > 0.5


# Words that stand next to a name without being part of it: verbs of saying, glosses ("معناه") and the particles
# no stop list holds.
_NOT_NAME_WORDS = frozenset(normalize_for_search(w) for w in (
    "قال قالت يقول تقول أعلن أعلنت أكد أكدت ذكر ذكرت أضاف أضافت أوضح أوضحت تابع وقال وأكد وأضاف وذكر مثل "
    "نحو أيضا فقط أمس اليوم يوم وهو وهي لكن بينما معناه يعني").split())


def whole_name(sentence: str, start: int, end: int, question: str) -> tuple[int, int]:
    """One word copied from a name is widened to the name: the word on either side of it, when no punctuation
    parts them and that word is not the question's, a particle, a verb of saying, a definite noun or (before
    it) a word joined by "و"; after it, only a word that closes the phrase with punctuation ("أوغرود
    ساسكي" for "ساسكي", "بولونيا وارسو" for "بولونيا": measured on Arabic XQuAD, where the model copies one word
    of a two-word name and states half a name). Only for one word that is not a figure, and only asked "who" or
    "what", not "how many" or "when"; at most one word each side."""
    span = sentence[start:end]
    if len(span.split()) != 1 or numbers(span) or _asks_for_figure_or_date(question):
        return start, end
    asked = content_words(question)

    def joins(word: str) -> bool:
        if word != word.strip(_WORD_EDGES + "-–—/"):
            return False  # punctuation between it and the span (or on its far side) ends the name
        norm = normalize_for_search(word)
        return (bool(content_words(norm)) and not numbers(norm) and norm not in _NOT_NAME_WORDS
                and not is_definite(norm) and not _stem_among(norm, asked))

    # A word ending in punctuation closes its phrase; a definite one ("الكاظمي") ends a name.
    if span == span.strip(_WORD_EDGES) and not is_definite(normalize_for_search(span)):
        after = re.match(r"\s+(\S+)", sentence[end:])
        if after:
            word = after.group(1)
            bare = word.rstrip(_WORD_EDGES)
            closed = bare != word or not sentence[end + after.end(1):].strip()
            if bare and closed and joins(bare):  # "كيربي اعتبر أن": a verb follows names, unclosed
                end += after.start(1) + len(bare)
    before = _word_before(sentence, start)
    if before and joins(before.group(1)) and not normalize_for_search(before.group(1)).startswith("و"):
        start = before.start(1)
    return start, end


RIVAL_MARGIN = 0.25  # how much more of the question a rival sentence must hold to outweigh the model's choice


def rival_figure(span: str, chosen: Evidence, shown: list[Evidence], question: str) -> Evidence | None:
    """For "how many" and "when": a shown sentence holding clearly more of the question's words (RIVAL_MARGIN)
    than the one the span comes from, with a figure of its own and not the span's, so the two answer with
    different figures; None when there is none. Measured on Arabic XQuAD: "متى حقق تسلا براءة اختراع جهاز الإرسال
    الكهربائي؟" answered 1901 (Marconi's broadcast; 43% of the question's words) beside the sentence of the patent
    in 1900 (71%). Every right figure of the seed and XQuAD runs came from a sentence within 0.17 of the best."""
    if not _asks_for_figure_or_date(question):
        return None
    floor = question_share(chosen.text, question) + RIVAL_MARGIN
    said, asked = numbers(span), numbers(question)
    rivals = [(question_share(ev.text, question), ev) for ev in shown if ev is not chosen]
    rivals = [(share, ev) for share, ev in rivals
              if share >= floor and numbers(ev.text) - asked and not numbers(ev.text) & said]
    return max(rivals, key=lambda pair: pair[0])[1] if rivals else None


_HOW_MANY_EN = re.compile(r"\bhow many ([a-z]+)", re.I)


def counted_figure(question: str, sentence: str) -> str | None:
    """For an English "how many X" question: the one figure the Arabic sentence attaches to X, read in code, or
    None. X must be a glossary term (drones -> مسير/طائر, hours -> ساع) found in the sentence, with the figure on
    that word (a dual: طائرتين) or on a word beside it (48 ساعة, خمسة قتلى); every name of the question must be
    in the sentence too (by skeleton: "Ain al-Asad" -> عين الأسد), so the figure is about what was asked. Two
    different figures for X, or a figure the question already gives, is no answer: the model answers, or not."""
    asked = _HOW_MANY_EN.search(question)
    stems = arabic_terms(asked.group(1)) if asked else []
    names = question_names(question)
    if not stems or not names or any(find_in_arabic(n, sentence) is None for n in names):
        return None
    words = sentence.split()
    norm = _plain_words(sentence)
    figures: set[str] = set()
    for i, word in enumerate(norm):
        # A counted noun is indefinite (48 ساعة, طائرتين); with the article it is a time or a rank (الساعة الثانية).
        if is_definite(word):
            continue
        if has_term_word(word, stems):
            figures |= numbers(" ".join(words[max(i - 1, 0):i + 2]))
    figures -= numbers(question)
    return next(iter(figures)) if len(figures) == 1 else None


_WHICH_EN = re.compile(r"\b(?:which|what)\s+(?:(?:us|u\.s\.|iraqi|american|military|armed)\s+)*([a-z]+)", re.I)


# Kinds of place and body a "which X" question asks for, whose Arabic noun (the glossary) precedes the name.
_WHICH_KINDS = {"district", "base", "town", "city", "province", "command", "airport", "embassy", "militia",
                "faction", "group", "movement", "agency", "ministry", "council", "parliament"}


def names_the_kind_asked(sentence: str, question: str) -> bool:
    """For an English "which X" question: whether the Arabic sentence names an X, an X-word of the glossary
    (district -> قضاء, base -> قاعدة, command -> القيادة) followed by a word that is not the question's, a particle
    or a verb of saying ("قضاء القائم", «قاعدة "كالسو"»): the sentence says which, even when no one can spell it."""
    asked = _WHICH_EN.search(question)
    kind = asked.group(1).lower().rstrip("s") if asked else ""
    stems = arabic_terms(kind) if kind in _WHICH_KINDS else []
    if not stems:
        return False
    terms = arabic_terms(question)
    words = _plain_words(sentence)
    for word, following in zip(words, words[1:], strict=False):
        if has_term_word(word, stems) and _ARABIC_WORD.fullmatch(following) \
                and following not in _DANGLING and following not in _NOT_NAME_WORDS \
                and not has_term_word(following, terms):
            return True
    return False


class AnswerChain:
    """Collaborators are passed in: a retriever (with its store and embedder) and a chat model."""

    def __init__(self, retriever, llm, k: int = 2, passage_words: int = 45,
                 min_score: dict[str, float] | None = None, max_tokens: int = 200, history_turns: int = 3,
                 mode: str = "extract", evidence_chunks: int | dict[str, int] = 3, evidence_sentences: int = 4,
                 evidence_words: int = 140, choice: str = "code", min_choice: float = 0.0,
                 min_question_share: float = 0.4, romanizer: NameRomanizer | None = None, confirm: bool = False):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if passage_words < 10:
            raise ValueError(f"passage_words must be >= 10, got {passage_words}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if choice not in ("code", "model"):
            raise ValueError(f"choice must be code or model, got {choice!r}")
        if not 1 <= evidence_sentences <= 9:
            raise ValueError(f"evidence_sentences must be 1..9 (one digit to choose by), got {evidence_sentences}")
        min_score = {"ar": 0.80, "en": 0.75} if min_score is None else min_score
        if set(min_score) != {"ar", "en"} or not all(0 <= v <= 1 for v in min_score.values()):
            raise ValueError(f"min_score must give 'ar' and 'en' floors between 0 and 1, got {min_score}")
        self.retriever = retriever
        self.llm = llm
        self.k = k
        self.passage_words = passage_words
        self.min_score = min_score
        self.max_tokens = max_tokens
        self.history_turns = history_turns
        self.mode = mode
        # Per language: {"ar": n, "en": m}; one number serves both.
        self.evidence_chunks = evidence_chunks if isinstance(evidence_chunks, dict) else \
            {"ar": evidence_chunks, "en": evidence_chunks}
        self.evidence_sentences = evidence_sentences
        self.evidence_words = evidence_words
        self.choice = choice
        self.min_choice = min_choice
        self.min_question_share = min_question_share
        self.confirm = confirm
        self.romanizer = romanizer or NameRomanizer()
        self.prompts = {(task, lang): load_prompt(task, lang)
                        for task in ("answer_system", "answer_example", "answer_user", "rewrite", "extract_system",
                                     "extract_example", "choose", "extract")
                        for lang in ("ar", "en")}
        self._extract_examples = {lang: self._worked_examples(lang) for lang in ("ar", "en")}
        for lang in ("ar", "en"):
            if self.prompts[("answer_example", lang)].text.count("\n---\n") != 1:
                raise ConfigError(f"prompts/answer_example_{lang}.txt must hold the example question, a line "
                                  "`---`, then the example answer")
        # Lines of the system prompts long enough that repeating one means the answer is leaking the rules.
        self._system_rules = {lang: [normalize_for_search(line.lstrip("- ")) for task in ("answer_system",
                                                                                          "extract_system")
                                     for line in self.prompts[(task, lang)].text.splitlines()
                                     if len(line.split()) >= 6]
                              for lang in ("ar", "en")}
        # The worked example's invented names: a small model that is unsure copies them into its answer.
        for lang in ("ar", "en"):
            example = set(content_words(self.prompts[("answer_example", lang)].text))
            if not EXAMPLE_MARKERS[lang] <= example:
                raise ConfigError(f"prompts/answer_example_{lang}.txt must keep its invented names "
                                  f"({', '.join(sorted(EXAMPLE_MARKERS[lang]))}): the copy guard looks for them")

    def _worked_examples(self, lang: str) -> list[dict]:
        """prompts/extract_example_{lang}.txt as chat turns: its numbered sentences, then question and answer
        pairs, all split by `---` lines. Each question is put in the extract prompt itself, so the model sees the
        very format it must answer in. The turns never change, so the server's prompt cache keeps them."""
        text = self.prompts[("extract_example", lang)].text
        if not text:  # an empty file: no worked examples for this language
            return []
        parts = [part.strip() for part in text.split("\n---\n")]
        if len(parts) < 3 or len(parts) % 2 == 0 or not all(parts):
            raise ConfigError(f"prompts/extract_example_{lang}.txt must hold numbered sentences, then pairs of a "
                              "question and its answer, each part on its own lines between `---` lines")
        turns = []
        for question, answer in zip(parts[1::2], parts[2::2], strict=True):
            turns.append({"role": "user", "content": self.prompts[("extract", lang)].render(
                sentences=parts[0], question=question)})
            turns.append({"role": "assistant", "content": answer})
        return turns

    @classmethod
    def from_settings(cls, retriever, llm, settings) -> AnswerChain:
        return cls(retriever, llm, settings.answer_k, settings.answer_passage_words,
                   {"ar": settings.answer_min_score_ar, "en": settings.answer_min_score_en}, settings.llm_max_tokens,
                   mode=settings.answer_mode,
                   evidence_chunks={"ar": settings.answer_evidence_chunks, "en": settings.answer_evidence_chunks_en},
                   evidence_sentences=settings.answer_evidence_sentences,
                   evidence_words=settings.answer_evidence_words, choice=settings.answer_choice,
                   min_choice=settings.answer_min_choice, min_question_share=settings.answer_min_question_share,
                   romanizer=NameRomanizer(settings.names_country), confirm=settings.answer_confirm)

    # ---- public API --------------------------------------------------------------------------------
    def ask(self, question: str, history: list[tuple[str, str]] | None = None, k: int | None = None) -> Answer:
        answer = None
        for event in self.stream(question, history, k):
            if event["type"] == "answer":
                answer = event["answer"]
        return answer

    def stream(self, question: str, history: list[tuple[str, str]] | None = None,
               k: int | None = None, gate: Callable[[], Generator[dict, None, float]] | None = None
               ) -> Iterator[dict]:
        """Yields {"type": "evidence", "evidence": [Citation]} (extract mode: the best-ranked sentence, before the
        model runs), {"type": "token", "text"} as the answer arrives, then {"type": "answer", "answer": Answer}.

        `gate` runs once, just before the model is first needed, and not at all for a refusal that needs no model:
        the caller's queue for the model (it may yield `queued` events, and returns the seconds it waited, which
        are kept out of the other timings as `queue_s`)."""
        started = time.perf_counter()
        usage_before = dict(getattr(self.llm, "usage_totals", None) or {})
        question = check_question(question)
        lang = detect_language(question)
        queue_s = 0.0

        def wait_for_model() -> Iterator[dict]:
            nonlocal started, queue_s, gate
            if gate is not None:
                queue, gate = gate, None  # once
                queue_s = yield from queue()
                started += queue_s

        if history:
            yield from wait_for_model()
        standalone = self._standalone(question, lang, history) if history else question
        # One embedding of the question serves retrieval and the ranking of sentences.
        query_vector = self.retriever.embedder.embed_queries([standalone])[0]
        n_hits = k or (self.evidence_chunks[lang] if self.mode == "extract" else self.k)
        hits = self.retriever.retrieve(standalone, k=n_hits, query_vector=query_vector)
        timings = {"retrieve_s": round(time.perf_counter() - started, 3)}
        best = max((h.scores.get("dense", 0.0) for h in hits), default=0.0)

        def finish(answer: Answer) -> Iterator[dict]:
            if "first_token_s" not in timings:
                timings["first_token_s"] = round(time.perf_counter() - started, 3)
                yield {"type": "token", "text": answer.answer}
            timings["total_s"] = round(time.perf_counter() - started, 3)
            for key, total in (getattr(self.llm, "usage_totals", None) or {}).items():  # when the server reports them
                timings[key] = total - usage_before.get(key, 0)
            timings["queue_s"] = round(queue_s, 3)
            answer.timings = timings
            if history:
                answer.standalone_question = standalone
            yield {"type": "answer", "answer": answer}

        if not hits or best < self.min_score[lang]:
            yield from finish(self._refusal(question, lang))
            return
        if self.mode == "generate":
            yield from wait_for_model()
            answer = yield from self._generate(question, standalone, lang, hits, query_vector, timings, started)
            yield from finish(answer)
            return
        evidence = rank_sentences(self.retriever.store, hits, standalone, lang, query_vector,
                                  self.evidence_sentences, self.evidence_words)
        if not evidence:
            yield from finish(self._refusal(question, lang))
            return
        yield from wait_for_model()  # before the evidence: a full queue is then a status, not a broken stream
        timings["evidence_s"] = round(time.perf_counter() - started, 3)
        yield {"type": "evidence", "evidence": [evidence[0].citation(1)]}
        yield from finish(self._extract(question, standalone, lang, evidence))

    # ---- extract: choose, copy, verify ---------------------------------------------------------------------
    def _extract(self, question: str, standalone: str, lang: str, evidence: list[Evidence]) -> Answer:
        system = {"role": "system", "content": self.prompts[("extract_system", lang)].text}
        confidence = None
        if self.choice == "model":  # the model chooses one sentence by number (next-token probabilities)
            picked, probs = choose_option(self.llm, [system, {"role": "user", "content": self.prompts[
                ("choose", lang)].render(sentences=_numbered(evidence), question=standalone)}],
                [str(i) for i in range(1, len(evidence) + 1)])
            if picked is None:
                return self._refusal(question, lang, Flag(kind="no_choice", detail="the model chose no sentence"))
            confidence = round(probs[picked], 3) if probs else None
            if confidence is not None and confidence < self.min_choice:
                return self._refusal(question, lang, Flag(
                    kind="low_confidence", detail=f"the model's choice of sentence had probability {confidence}"))
            shown = [evidence[int(picked) - 1]]
        else:  # code's ranking chooses the few; the model copies from them
            shown = evidence
        answer = self._copied(question, standalone, lang, self._reply([system, self._ask(lang, standalone, shown)]),
                              shown, confidence)
        if not answer.flags or answer.flags[0].kind not in SECOND_TRY:
            return self._confirmed(answer, question, standalone, lang, system, shown)
        # The model wrote something other than words of the sentences: a description of its choice, the
        # question's own words, another role's name. For "who is the X of Y", the sentences that speak of an X
        # are the ones to read; a name one of them sets beside the role in commas is read in code.
        about_role = self._about_role(shown, standalone)
        for _, ev in sorted(about_role, key=lambda pair: -pair[0]):
            if (found := name_beside_role(ev.text, standalone)) is not None:
                return _cited(question, lang, ev.text[found[0]:found[1]], ev.citation(1), confidence)
        if not self._extract_examples[lang]:
            return answer
        # Asked again after worked examples, the model copies more often. Its first reply stands when the
        # second is no better.
        again_shown = [ev for _, ev in about_role] or shown
        again = self._copied(question, standalone, lang, self._reply(
            [system, *self._extract_examples[lang], self._ask(lang, standalone, again_shown)]), again_shown, confidence)
        return answer if again.refused else self._confirmed(again, question, standalone, lang, system, again_shown)

    def _confirmed(self, answer: Answer, question: str, standalone: str, lang: str, system: dict,
                   shown: list[Evidence]) -> Answer:
        """An asserted answer read again, with the shown sentences in reverse order: it stands when the second
        reading asserts an answer sharing a word or a figure of its own with it (not the question's), and is
        otherwise quoted (`unconfirmed`). Measured with the embedded model (README): on 200 Arabic XQuAD
        questions no check was made on, 13 of 21 wrong answers did not survive the change of order, and 15 of 44
        right ones did not either (the model favours the first sentences); on the seed set, 7 right ones."""
        if not self.confirm or answer.refused or answer.quoted or len(shown) < 2 or not answer.evidence:
            return answer
        again_shown = shown[::-1]
        again = self._copied(question, standalone, lang, self._reply([system, self._ask(lang, standalone,
                                                                                       again_shown)]),
                             again_shown, answer.confidence)
        if not again.refused and not again.quoted and same_reading(answer.answer, again.answer, standalone):
            return answer
        evidence = answer.evidence[0]  # the sentence the answer was copied from
        return self._quote(question, lang, evidence.text, evidence, [*answer.flags, Flag(
            kind="unconfirmed", detail=f"«{strip_citations(answer.answer)}» was not read again with the sentences "
                                       f"in another order (then: {strip_citations(again.answer)})")],
                           answer.confidence)

    def _ask(self, lang: str, question: str, shown: list[Evidence]) -> dict:
        return {"role": "user", "content": self.prompts[("extract", lang)].render(sentences=_numbered(shown),
                                                                                 question=question)}

    def _about_role(self, shown: list[Evidence], question: str) -> list[tuple[float, Evidence]]:
        """For "who is the X of Y": the shown sentences that speak of an X and hold enough of the question, each
        with its share of the question's words, in the order shown; [] for any other question."""
        if not _ROLE_QUESTION.search(normalize_for_search(question)):
            return []
        shares = [(question_share(ev.text, question), ev) for ev in shown if names_the_role_asked(ev.text, question)]
        return [(share, ev) for share, ev in shares if share >= self.min_question_share]

    def _reply(self, messages: list[dict]) -> str:
        lines = "".join(self.llm.stream(messages, max_tokens=48)).strip().splitlines()
        return lines[0].strip() if lines else ""

    def _copied(self, question: str, standalone: str, lang: str, reply: str, shown: list[Evidence],
                confidence: float | None) -> Answer:
        """The answer the model's reply bears out in the shown sentences: asserted, quoted or refused."""
        leak = self._leak(reply, lang)
        if leak:
            return self._refusal(question, lang, leak)
        if not reply or is_refusal(reply) or strip_citations(reply).lower().strip(". ") in ("none", "0"):
            if lang == "en":
                return self._read_in_code(question, standalone, shown, confidence) \
                    or self._which_quoted(question, standalone, shown, confidence) or self._refusal(question, lang)
            return self._refusal(question, lang)
        if lang == "en":
            return self._verify_english(question, standalone, reply, shown, confidence)
        # The words must be in a sentence the model was shown. Where several hold them, the one most about the
        # question is the evidence (a headline «استهداف قاعدة "كالسو"» cited for a name its story's sentence
        # gives); ties go to the sentence cited first, then the best-ranked.
        flags: list[Flag] = []
        found = [(shown[i], located) for i in _cited_first(reply, len(shown))
                 if (located := locate_span(reply, shown[i].text, standalone))]
        if found:
            chosen, located = max(found, key=lambda pair: question_share(pair[0].text, standalone))
        else:
            # Not verifiable. If what the model said shares words with a shown sentence beyond the question's,
            # that sentence is shown as evidence; if it shares none (a poem, an obeyed instruction), refuse.
            said = set(content_words(reply)) - set(content_words(standalone))
            if not said and not numbers(strip_citations(reply)) - numbers(standalone):
                return self._refusal(question, lang, Flag(
                    kind="copied_question", detail=f"the words chosen only repeat the question: {reply}"))
            overlap = [len(said & set(content_words(ev.text))) for ev in shown]
            best = max(range(len(shown)), key=lambda i: overlap[i])
            if not overlap[best]:
                return self._refusal(question, lang, Flag(
                    kind="unsupported_answer", detail=f"the model's words are in no sentence shown: {reply}"))
            flags.append(Flag(kind="unverified_span", detail=f"the model's words are in no sentence shown: {reply}"))
            return self._quote(question, lang, shown[best].text, shown[best].citation(1), flags, confidence)
        citation = chosen.citation(1)
        start, end = whole_name(chosen.text, *located, standalone)
        # The head noun code adds is the kind asked for as often as not ("نظرية" for "which branch of theory"):
        # whether the words restate the question is judged on the words the model chose.
        chosen_span = chosen.text[start:end].strip(" .،,؛:")
        start = with_its_head_noun(chosen.text, with_its_figure(chosen.text, start))
        start, end = with_its_range(chosen.text, start, end)
        end = with_its_complement(chosen.text, start, end)
        start, end = spelt_letters(chosen.text, start, end)
        span = chosen.text[start:end].strip(" .،,؛:")
        about = question_share(chosen.text, standalone)
        if about < self.min_question_share:
            return self._refusal(question, lang, Flag(
                kind="off_topic", detail=f"«{span}» is in a sentence that holds {about:.0%} of the question's words"))
        if about_another_year(chosen.text, standalone):
            flags.append(Flag(kind="other_year", detail=f"«{span}» is from a sentence about another year than the "
                                                         "question's"))
            return self._quote(question, lang, chosen.text, citation, flags, confidence)
        right_kind = answers_the_kind_asked(span, standalone)
        if not right_kind and _HOUR_QUESTION.search(standalone) and (hour := hour_of_day(chosen.text)):
            return _cited(question, lang, chosen.text[hour[0]:hour[1]], citation, confidence)
        if not right_kind or mostly_the_question(chosen_span, standalone) \
                or only_foreign_words(span, chosen.text, start):
            flags.append(Flag(kind="wrong_kind", detail=f"«{span}» is not the kind of answer asked for"))
            return self._quote(question, lang, chosen.text, citation, flags, confidence)
        if cut_off(span) or cut_from_its_noun(chosen.text, start) or only_a_gloss(span) \
                or lone_prepositional(span, standalone):
            flags.append(Flag(kind="fragment", detail=f"«{span}» is cut out of a phrase or quotation"))
            return self._quote(question, lang, chosen.text, citation, flags, confidence)
        if len(span.split()) > MAX_ANSWER_WORDS:
            flags.append(Flag(kind="long_span", detail=f"«{span}» is a clause, not an answer: the sentence is shown"))
            return self._quote(question, lang, chosen.text, citation, flags, confidence)
        if _FIGURE_QUESTION.search(standalone) and negated_figure(chosen.text, start):
            flags.append(Flag(kind="negated", detail=f"«{span}» follows a negation: the sentence counts nothing"))
            return self._quote(question, lang, chosen.text, citation, flags, confidence)
        if _FIGURE_QUESTION.search(standalone) and counts_something_else(chosen.text, start, end, standalone):
            flags.append(Flag(kind="wrong_count", detail=f"«{span}» counts another thing than the question; the "
                                                         "sentence counts that with another figure"))
            return self._quote(question, lang, chosen.text, citation, flags, confidence)
        rival = rival_figure(span, chosen, shown, standalone)
        if rival is not None:  # two sentences give different figures: the one more about the question is shown
            flags.append(Flag(kind="rival_figure", detail=f"«{span}» is from a sentence less about the question "
                                                          "than another shown with a different figure"))
            return self._quote(question, lang, rival.text, rival.citation(1), flags, confidence)
        if not names_the_role_asked(chosen.text, standalone):
            # The name is another role's. A shown sentence that speaks of the role asked is the evidence to give.
            flags.append(Flag(kind="wrong_role", detail=f"«{span}» is from a sentence without the role asked about"))
            about_role = self._about_role(shown, standalone)
            if not about_role:
                return self._refusal(question, lang, *flags)
            best = max(about_role, key=lambda pair: pair[0])[1]
            return self._quote(question, lang, best.text, best.citation(1), flags, confidence)
        return _cited(question, lang, span, citation, confidence, flags)

    def _verify_english(self, question: str, standalone: str, reply: str, shown: list[Evidence],
                        confidence: float | None) -> Answer:
        """An English answer is asserted only when the Arabic sentence it cites bears it out in code: its
        figures and dates are the sentence's, every name in it renders an Arabic name of the sentence (or is
        the question's own), and it says something the question does not, anchored by such a figure or name.
        Otherwise the sentence is quoted, or, when the model's answer touches none of them, refused."""
        english = strip_citations(reply).strip().strip("\"'«»").rstrip(".")
        candidates = _cited_first(reply, len(shown))
        results = [(i, *render_english(english, shown[i].text, standalone, self.romanizer.romanize))
                   for i in candidates]
        for i, rendered, flags in results:
            if rendered:
                return _cited(question, "en", rendered, shown[i].citation(1), confidence, flags)
        read = self._read_in_code(question, standalone, shown, confidence)
        if read:
            return read
        i, _, flags = results[0]
        # Quote the sentence when part of the answer is borne out there (a figure, one word of a name: "John
        # Kerry" for جون كيربي); an answer with nothing verifiable is a refusal (an invented name for a
        # question the articles do not answer).
        asked = normalize_for_search(standalone)
        words = [w for n in latin_names(english) for w in name_words(n) if normalize_for_search(w) not in asked]
        partial = [j for j in candidates if numbers(english) & numbers(shown[j].text) - numbers(standalone)
                   or any(find_in_arabic(w, shown[j].text) is not None for w in words)]
        if not partial or any(f.kind in ("copied_question", "not_english") for f in flags):
            return self._which_quoted(question, standalone, shown, confidence, flags) \
                or self._refusal(question, "en", *flags)
        return self._quote(question, "en", shown[partial[0]].text, shown[partial[0]].citation(1), flags, confidence)

    def _read_in_code(self, question: str, standalone: str, shown: list[Evidence],
                      confidence: float | None) -> Answer | None:
        """An English question the model declined or answered unverifiably, answered from what code reads in the
        shown sentences: a count (`_counted`), the name beside the role asked about (`_named`), or a continent
        (`_continent`)."""
        return self._counted(question, standalone, shown, confidence) \
            or self._named(question, standalone, shown, confidence) \
            or self._continent(question, standalone, shown, confidence)

    def _named(self, question: str, standalone: str, shown: list[Evidence],
               confidence: float | None) -> Answer | None:
        """For an English "who is the X of Y": the name the best-ranked shown sentence sets beside the role
        (`name_beside_role_en`), in its attested Latin spelling with the Arabic beside it; None when no sentence
        sets one there or nobody has spelt it (`NameRomanizer`): the model's spelling of a name is not trusted."""
        for ev in shown:
            found = name_beside_role_en(ev.text, standalone)
            arabic = ev.text[found[0]:found[1]] if found else ""
            latin = self.romanizer.romanize(arabic) if arabic else None
            if latin:
                return _cited(question, "en", f"{latin} ({arabic})", ev.citation(1), confidence, [Flag(
                    kind="romanized", detail=f"«{arabic}» is read beside the role in code; {latin} is its spelling as "
                                             "attested in Wikidata")])
        return None

    def _continent(self, question: str, standalone: str, shown: list[Evidence],
                   confidence: float | None) -> Answer | None:
        """For an English "which continent": the one continent the best-ranked shown sentence about the question
        names, in English (a closed class code renders both ways). A sentence is about the question when it holds
        one of the question's names or common terms besides the continent."""
        if not asks_for_continent(standalone):
            return None
        terms = arabic_terms(standalone)
        for ev in shown:
            named = continents_in(ev.text)
            about = any(find_in_arabic(w, ev.text) is not None for n in question_names(standalone) for w in n.split()) \
                or any(has_term(t, _plain_words(ev.text)) for t in terms)
            if len(named) == 1 and about:
                return _cited(question, "en", named[0], ev.citation(1), confidence, [Flag(
                    kind="rendered_in_code", detail=f"{named[0]} is the continent the sentence names, rendered in "
                                                    "code")])
        return None

    def _which_quoted(self, question: str, standalone: str, shown: list[Evidence], confidence: float | None,
                      flags: list[Flag] = ()) -> Answer | None:
        """An English "which X" question the model declined (or answered with nothing borne out): the best-ranked
        shown sentence that names an X (`names_the_kind_asked`) is quoted, so the reader sees that the articles
        do say, in Arabic, what nobody here can spell ("قضاء القائم", "كالسو"); None when no sentence names one."""
        for ev in shown:
            if names_the_kind_asked(ev.text, standalone):
                return self._quote(question, "en", ev.text, ev.citation(1), [*flags, Flag(
                    kind="declined", detail="no English answer could be verified; the sentence that names what was "
                                            "asked is quoted")], confidence)
        return None

    def _counted(self, question: str, standalone: str, shown: list[Evidence],
                 confidence: float | None) -> Answer | None:
        """An English "how many" question the model declined or answered unverifiably, answered by the figure
        code reads from the best-ranked shown sentence that has one (`counted_figure`)."""
        for ev in shown:
            figure = counted_figure(standalone, ev.text)
            if figure:
                unit = _HOW_MANY_EN.search(standalone).group(1).lower()
                return _cited(question, "en", f"{figure} {unit}", ev.citation(1), confidence)
        return None

    def _quote(self, question: str, lang: str, quote: str, citation: Citation, flags: list[Flag],
               confidence: float | None) -> Answer:
        """What the article says, in its words, when an answer in ours could not be verified."""
        quote = " ".join(quote.split()).rstrip(" .")
        if lang == "ar":
            text = f"تقول المقالة: «{quote}» [1]."
        else:
            parts = render_dates_en(quote) + render_days_en(quote)
            text = f"The article says (in Arabic): «{quote}» [1]." + (f" Dates: {'; '.join(parts)}." if parts else "")
        return Answer(question=question, lang=lang, answer=text, quoted=True, citations=[citation], flags=flags,
                      evidence=[citation], confidence=confidence)

    def _refusal(self, question: str, lang: str, *flags: Flag) -> Answer:
        return Answer(question=question, lang=lang, answer=REFUSAL[lang], refused=True, flags=list(flags))

    def _leak(self, text: str, lang: str) -> Flag | None:
        norm = normalize_for_search(text)
        if any(rule and rule in norm for rule in self._system_rules[lang]):
            return Flag(kind="prompt_leak", detail="the answer repeated the system instructions; withheld")
        return None

    # ---- generate: free writing, checked ----------------------------------------------------------------------
    def _generate(self, question, standalone, lang, hits, query_vector, timings, started):
        passages = []
        for n, hit in enumerate(hits, start=1):
            text, start, end = excerpt(self.retriever.store, hit, query_vector, self.passage_words)
            passages.append(Passage(n, hit, CONTROL_TOKENS.sub(" ", text), start, end))
        messages = self._messages(standalone, lang, passages)
        pieces: list[str] = []
        for token in self.llm.stream(messages, max_tokens=self.max_tokens):
            if not pieces:
                timings["first_token_s"] = round(time.perf_counter() - started, 3)
            pieces.append(token)
            yield {"type": "token", "text": token}
        return self.check("".join(pieces), question, lang, passages)

    def _messages(self, question: str, lang: str, passages: list[Passage]) -> list[dict]:
        example_user, example_answer = self.prompts[("answer_example", lang)].text.split("\n---\n")
        block = passage_block(passages)
        # Static parts first, so the server's prompt cache reuses them; instructions after the passages.
        return [
            {"role": "system", "content": self.prompts[("answer_system", lang)].text},
            {"role": "user", "content": example_user.strip()},
            {"role": "assistant", "content": example_answer.strip()},
            {"role": "user", "content": self.prompts[("answer_user", lang)].render(passages=block, question=question)},
        ]

    def _standalone(self, question: str, lang: str, history: list[tuple[str, str]]) -> str:
        turns = history[-self.history_turns:]
        text = "\n".join(f"- {q}\n  {a[:300]}" for q, a in turns)
        prompt = self.prompts[("rewrite", lang)].render(history=text, question=question)
        rewritten = "".join(self.llm.stream([{"role": "user", "content": prompt}], max_tokens=60)).strip()
        rewritten = rewritten.splitlines()[0].strip(" \"'«»") if rewritten else ""
        # A rewrite that is empty or runs on is worse than the question as asked.
        return rewritten if 3 <= len(rewritten) <= 3 * len(question) + 200 else question

    def check(self, raw: str, question: str, lang: str, passages: list[Passage]) -> Answer:
        """The free-writing path's checks: leaks, refusals, copied example names, citations, grounding."""
        by_n = {p.n: p for p in passages}
        text = raw.strip()
        leak = self._leak(text, lang)
        if leak:
            return self._refusal(question, lang, leak)
        if not text or is_refusal(text) and not CITATION.search(text):
            return self._refusal(question, lang)
        seen = set(content_words(" ".join(p.text for p in passages) + " " + question))
        copied = sorted(set(content_words(text)) & (EXAMPLE_MARKERS["ar"] | EXAMPLE_MARKERS["en"]) - seen)
        if copied:
            return self._refusal(question, lang, Flag(
                kind="copied_from_example", detail=f"the answer used words from the prompt's example, not the "
                                                   f"articles: {', '.join(copied[:5])}; withheld"))
        if lang == "ar":
            # Words the answer adds beyond the question must come from the passages; an Arabic answer whose
            # added words appear in none of them ("the weather will be dark", a poem) is not an answer from the
            # articles.
            added = set(content_words(text)) - set(content_words(question))
            cited = set(cited_numbers(text)) & by_n.keys()
            cited_text = " ".join(by_n[n].text for n in cited) or " ".join(p.text for p in passages)
            if added and not added & set(content_words(cited_text)):
                return self._refusal(question, lang, Flag(
                    kind="unsupported_answer",
                    detail=f"none of {', '.join(sorted(added)[:5])} is in the cited passages; withheld"))
        text, used, dropped, flags = ground(text, passages, question, lang)
        if lang == "en":  # names in an English answer must render an Arabic name of what they cite
            for sentence in re.split(r"(?<=[.!?])\s+", text):
                support = " ".join(by_n[n].text for n in cited_numbers(sentence) if n in by_n)
                for name in unverified_names(strip_citations(sentence), support, question):
                    flags.append(Flag(kind="unverified_name", detail=f"{name} renders no name in the cited passage"))
        citations = [Citation(n=n, chunk_id=by_n[n].hit.chunk_id, article_id=by_n[n].hit.article_id,
                              title=by_n[n].hit.title, source=by_n[n].hit.source, date=by_n[n].hit.date,
                              text=by_n[n].text, start=by_n[n].start, end=by_n[n].end) for n in used]
        return Answer(question=question, lang=lang, answer=text, refused=False, citations=citations, flags=flags,
                      dropped_citations=dropped)


def same_reading(first: str, second: str, question: str) -> bool:
    """Whether two answers to a question say the same thing: a word (by stem) or a figure in common that is not
    the question's. "مطار سان دييغو الدولي" and "مطار فان نويس" for "which airport" share only the question's
    word."""
    first, second = strip_citations(first), strip_citations(second)
    asked = content_words(question)
    words = [w for w in content_words(second) if not _stem_among(w, asked)]
    return any(_stem_among(w, words) for w in content_words(first) if not _stem_among(w, asked)) \
        or bool(numbers(first) & numbers(second) - numbers(question))


def _cited(question: str, lang: str, text: str, citation: Citation, confidence: float | None,
           flags: list[Flag] = ()) -> Answer:
    """An answer asserted from one sentence, cited as [1], that sentence its evidence."""
    return Answer(question=question, lang=lang, answer=f"{text} [1].", citations=[citation], flags=list(flags),
                  evidence=[citation], confidence=confidence)


# ---- English rendering -----------------------------------------------------------------------------------------
def _new_name(name: str, sentence: str, question: str) -> bool:
    """A name in an answer that says something the question does not: not the question's own words, not only
    common words, and not a rendering of the Arabic word for something the question asks about ("Amminiy" for
    الأمين when the question asks for the secretary-general)."""
    words = name_words(name)
    if not words or normalize_for_search(name) in normalize_for_search(question):
        return False
    asked = [w for q_name in question_names(question) for w in name_words(q_name)]
    if all(_renders_a_question_name(word, sentence, asked) for word in words):
        return False  # "Khatib al-Shuhada" for Kataib Sayyid al-Shuhada: the question's entity, mis-rendered
    where = find_in_arabic(" ".join(words), sentence)
    if where is None:
        return True  # verified word by word elsewhere; nothing ties it to the question
    asked = arabic_terms(question)
    rendered = re.findall(r"\w+", normalize_for_search(sentence[where[0]:where[1]]))
    return not all(has_term_word(w, asked) for w in rendered)


def _renders_a_question_name(word: str, sentence: str, asked: list[str]) -> bool:
    """Whether a word of an answer's name is one of the words of the question's names (`asked`), as written or as
    a rendering of the same Arabic word of the sentence."""
    if normalize_for_search(word) in {normalize_for_search(w) for w in asked}:
        return True
    where = find_in_arabic(word, sentence)
    return where is not None and any(find_in_arabic(w, sentence[where[0]:where[1]]) is not None for w in asked)


def figures_listed_with(figures: set[str], sentence: str) -> set[str]:
    """The figures an Arabic sentence lists together with any of `figures` ("687 و760 نانومتر"): an answer that
    gives one of them gives part of what the sentence says (English XQuAD: "687" for "687 and 760 nm")."""
    listed: set[str] = set()
    for run in FIGURE_LIST.finditer(with_digits(sentence)):  # "خمس إلى عشر سنوات" lists 5 and 10
        together = numbers(run.group())
        if together & figures:
            listed |= together
    return listed


_WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _shown_with_arabic(english: str, names: list[str], sentence: str, romanize: Callable[[str], str | None] | None,
                       flags: list[Flag]) -> str:
    """A name the model spelt, borne out by its consonants only, is shown with the Arabic it renders unless the
    world spells it that way (`romanize`): a skeleton cannot tell a spelling from a guess at one ("Nicolas
    Joulovin (نيكولاس جولوفين)" on English XQuAD, where the man is Nicholas Golovin). Months and weekdays are
    rendered by code, not spelt by the model."""
    for name in names:
        if f"{name} (" in english or months(name) or name in _WEEKDAYS_EN:
            continue  # already shown with its Arabic, or a date's word
        where = find_in_arabic(name, sentence)
        if where is None:
            continue  # borne out word by word across the sentence: no one run to show
        arabic = sentence[where[0]:where[1]].strip(_WORD_EDGES)
        attested = romanize(arabic) if romanize else None
        if attested and same_spelling(attested, name):
            continue
        english = english.replace(name, f"{name} ({arabic})", 1)
        flags.append(Flag(kind="unattested_spelling", detail=f"{name} is the model's spelling of «{arabic}»; no "
                                                              "attested spelling confirms it, so the Arabic is shown"))
    return english


def render_english(english: str, sentence: str, question: str,
                   romanize: Callable[[str], str | None] | None = None) -> tuple[str, list[Flag]]:
    """The model's English answer if the Arabic sentence bears it out, else "". Returns (answer, flags).
    Checks: figures and months are the sentence's (dates it names are rendered by code beside them); names are
    the question's own or render an Arabic name of the sentence, and take the question's spelling where they
    render the same Arabic words; the answer says more than the question and is anchored by a figure or a
    name of the sentence; a "how many" answer has a figure. A name whose given name is wrong keeps its verified
    family name, spelt whole by `romanize` where the world has spelt it ("Cesar Khazali" -> "Qais Khazali")."""
    flags: list[Flag] = []
    if not english or is_refusal(english) or ARABIC_LETTERS.search(english) or len(english.split()) > 30:
        return "", [Flag(kind="not_english", detail=f"not an English answer: {english}")] if english else []
    for q_name in question_names(question):  # the question's spelling of a name it shares with the sentence
        where = find_in_arabic(q_name, sentence)
        if where is None:
            continue
        for name in latin_names(english):
            if name != q_name and find_in_arabic(name, sentence[where[0]:where[1]]) is not None:
                english = english.replace(name, q_name)
    for name in unverified_names(english, sentence, question):
        family = verified_family_name(name, sentence, question)
        latin = romanize(family[1]) if family and romanize else None
        if latin and normalize_for_search(family[0]) in normalize_for_search(latin):
            english = english.replace(name, f"{latin} ({family[1]})")  # the whole name as the world spells it
            flags.append(Flag(kind="romanized", detail=f"«{name}»: only {family[0]} renders the Arabic {family[1]}; "
                                                       f"{latin} is its spelling as attested in Wikidata"))
        elif family:
            english = english.replace(name, f"{family[0]} ({family[1]})")
            flags.append(Flag(kind="partial_name", detail=f"«{name}»: only {family[0]} renders the Arabic "
                                                          f"{family[1]}; the given name is shown in Arabic"))
    new_words = set(content_words(english)) - set(content_words(question))
    figures = numbers(english) - numbers(question)
    extra = numbers(english) - numbers(sentence) - numbers(question)
    bad_months = months(english) - months(sentence)
    names = unverified_names(english, sentence, question)
    anchors = [n for n in latin_names(english) if n not in names and _new_name(n, sentence, question)]
    if not new_words and not figures:
        flags.append(Flag(kind="copied_question", detail=f"«{english}» only restates the question"))
    elif extra or bad_months:
        flags.append(Flag(kind="unsupported_figure", detail=f"«{english}» states "
                                                            f"{', '.join(sorted(extra) or map(str, bad_months))}, "
                                                            "which the sentence does not"))
    elif names:
        flags.append(Flag(kind="unverified_name", detail=f"{', '.join(names)} renders no name in the sentence; "
                                                         "the Arabic is quoted instead"))
    elif not answers_the_kind_asked(english, question):
        flags.append(Flag(kind="wrong_kind", detail=f"«{english}» is not the kind of answer asked for"))
    elif about_another_year(sentence, question):
        flags.append(Flag(kind="other_year", detail=f"«{english}» is from a sentence about another year than the "
                                                     "question's"))
    elif cut := [n for n in anchors if (where := find_in_arabic(n, sentence))
                 and spelt_letters(sentence, *where) != where]:
        flags.append(Flag(kind="fragment", detail=f"{', '.join(cut)} renders part of an acronym the sentence spells "
                                                  "out in Arabic letters"))
    elif unmeasured := unsupported_measures(english, sentence):
        flags.append(Flag(kind="unsupported_unit", detail=f"«{', '.join(unmeasured)}»: the sentence gives the figure "
                                                          "without that unit, scale or currency"))
    elif left_out := figures_listed_with(figures, sentence) - numbers(english):
        flags.append(Flag(kind="partial_figures", detail=f"«{english}» leaves out {', '.join(sorted(left_out))}, "
                                                         "which the sentence gives with it"))
    elif not (figures or anchors):
        flags.append(Flag(kind="unanchored", detail=f"«{english}» has no figure or name the sentence bears out; "
                                                    "the Arabic is quoted instead"))
    else:
        english = _shown_with_arabic(english, anchors, sentence, romanize, flags)
        # Units, scales, currencies, ranges and figures' notation as the sentence gives them, rendered by code.
        english = render_figures_en(render_ranges_en(render_measures_en(english, sentence), sentence), sentence)
        dates = render_dates_en(sentence)
        if months(english) and dates:  # the date as the sentence gives it, rendered by code
            english = next((d for d in dates if months(d) == months(english) and numbers(d) & numbers(english)),
                           english)
        return english, flags
    return "", flags
