"""The answer chain: retrieve, excerpt, prompt, stream, then check what the model wrote.

The embedded model is a small coder model, weak in Arabic: the chain keeps prompts short (excerpts around the
best-matching sentences), refuses without calling it when nothing relevant was retrieved, and guards its
output: citations that point nowhere are removed and counted, uncited sentences and figures or names that the
cited passages do not contain are flagged for the reader, not hidden.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rag.arabic import detect_language, normalize_for_search, tokenize_for_search
from rag.chunk import split_sentences
from rag.errors import ConfigError
from rag.prompts import load_prompt
from rag.records import Answer, Citation, Flag, Hit
from rag.retrieve import check_question

REFUSAL = {"ar": "لا تذكر المقالات ذلك.", "en": "The articles don't say."}
_REFUSAL_MARKERS = [normalize_for_search(m) for m in (
    "لا تذكر المقالات", "لم تذكر المقالات", "لا تذكر المقاطع", "لم تذكر المقاطع", "لا تحتوي المقاطع",
    "لا تتضمن المقاطع", "لا توجد معلومات", "the articles don't say", "the articles do not say",
    "the passages don't", "the passages do not", "not mentioned in the", "no information",
)]
_CITATION = re.compile(r"\[\s*(\d+(?:\s*[,،]\s*\d+)*)\s*\]")
# Chat-template control tokens inside an article must never reach the model as tokens.
_CONTROL_TOKENS = re.compile(r"<\|[^|>]{1,40}\|>")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
    "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fourteen": "14", "twenty": "20",
    "واحد": "1", "اثنان": "2", "اثنين": "2", "ثلاث": "3", "ثلاثه": "3", "اربع": "4", "اربعه": "4", "خمس": "5",
    "خمسه": "5", "سته": "6", "ست": "6", "سبع": "7", "سبعه": "7", "ثماني": "8", "ثمانيه": "8", "تسع": "9",
    "تسعه": "9", "عشر": "10", "عشره": "10",
}
# Invented names in prompts/answer_example_*.txt (as search tokens); they exist in no real article.
EXAMPLE_MARKERS = {"ar": {"نخيله", "قندلي"}, "en": {"nukhaila", "qandali"}}
_LATIN_NAME = re.compile(r"\b[A-Z][a-zA-Z]+(?:[- ][A-Z][a-zA-Z]+)*")


@dataclass
class Passage:
    n: int
    hit: Hit
    text: str
    start: int  # in the article
    end: int


def passage_block(passages: list[Passage]) -> str:
    """Numbered passages as the prompts show them: `[n] (outlet, date) text`, one per line."""
    return "\n".join(f"[{p.n}] ({', '.join(x for x in (p.hit.source, p.hit.date) if x) or p.hit.title}) "
                     f"{' '.join(p.text.split())}" for p in passages)


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


def _numbers(text: str) -> set[str]:
    norm = normalize_for_search(text)
    found = {n.replace(",", "") for n in _NUMBER.findall(norm)}
    for word in re.findall(r"\w+", norm):
        if word in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word])
        elif word.startswith("و") and word[1:] in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word[1:]])
    return found


def _content_words(text: str) -> list[str]:
    return [t for t in tokenize_for_search(_CITATION.sub(" ", text)) if len(t) >= 3 and not t.isdigit()]


def is_refusal(text: str) -> bool:
    norm = normalize_for_search(text)
    return any(marker in norm for marker in _REFUSAL_MARKERS)


class AnswerChain:
    """Collaborators are passed in: a retriever (with its store and embedder) and a chat model."""

    def __init__(self, retriever, llm, k: int = 2, passage_words: int = 45,
                 min_score: dict[str, float] | None = None, max_tokens: int = 200, history_turns: int = 3):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if passage_words < 10:
            raise ValueError(f"passage_words must be >= 10, got {passage_words}")
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
        self.prompts = {(task, lang): load_prompt(task, lang)
                        for task in ("answer_system", "answer_example", "answer_user", "rewrite")
                        for lang in ("ar", "en")}
        for lang in ("ar", "en"):
            if self.prompts[("answer_example", lang)].text.count("\n---\n") != 1:
                raise ConfigError(f"prompts/answer_example_{lang}.txt must hold the example question, a line "
                                  "`---`, then the example answer")
        # Lines of the system prompt long enough that repeating one means the answer is leaking the rules.
        self._system_rules = {lang: [normalize_for_search(line.lstrip("- ")) for line in
                                     self.prompts[("answer_system", lang)].text.splitlines() if len(line.split()) >= 6]
                              for lang in ("ar", "en")}
        # The worked example's invented names: a small model that is unsure copies them into its answer.
        for lang in ("ar", "en"):
            example = set(_content_words(self.prompts[("answer_example", lang)].text))
            if not EXAMPLE_MARKERS[lang] <= example:
                raise ConfigError(f"prompts/answer_example_{lang}.txt must keep its invented names "
                                  f"({', '.join(sorted(EXAMPLE_MARKERS[lang]))}): the copy guard looks for them")

    @classmethod
    def from_settings(cls, retriever, llm, settings) -> AnswerChain:
        return cls(retriever, llm, settings.answer_k, settings.answer_passage_words,
                   {"ar": settings.answer_min_score_ar, "en": settings.answer_min_score_en}, settings.llm_max_tokens)

    # ---- public API --------------------------------------------------------------------------------
    def ask(self, question: str, history: list[tuple[str, str]] | None = None, k: int | None = None) -> Answer:
        answer = None
        for event in self.stream(question, history, k):
            if event["type"] == "answer":
                answer = event["answer"]
        return answer

    def stream(self, question: str, history: list[tuple[str, str]] | None = None,
               k: int | None = None) -> Iterator[dict]:
        """Yields {"type": "token", "text"} as the model writes, then {"type": "answer", "answer": Answer}."""
        started = time.perf_counter()
        question = check_question(question)
        lang = detect_language(question)
        standalone = self._standalone(question, lang, history) if history else question
        # One embedding of the question serves retrieval and the choice of excerpt sentences.
        query_vector = self.retriever.embedder.embed_queries([standalone])[0]
        hits = self.retriever.retrieve(standalone, k=k or self.k, query_vector=query_vector)
        timings = {"retrieve_s": round(time.perf_counter() - started, 3)}
        best = max((h.scores.get("dense", 0.0) for h in hits), default=0.0)
        if not hits or best < self.min_score[lang]:
            timings["total_s"] = round(time.perf_counter() - started, 3)
            yield {"type": "token", "text": REFUSAL[lang]}
            yield {"type": "answer", "answer": Answer(question=question, lang=lang, answer=REFUSAL[lang], refused=True,
                                                      standalone_question=standalone if history else "",
                                                      timings=timings)}
            return
        passages = []
        for n, hit in enumerate(hits, start=1):
            text, start, end = excerpt(self.retriever.store, hit, query_vector, self.passage_words)
            passages.append(Passage(n, hit, _CONTROL_TOKENS.sub(" ", text), start, end))
        messages = self._messages(standalone, lang, passages)
        pieces: list[str] = []
        stream = self.llm.stream(messages, max_tokens=self.max_tokens)
        for token in stream:
            if not pieces:
                timings["first_token_s"] = round(time.perf_counter() - started, 3)
            pieces.append(token)
            yield {"type": "token", "text": token}
        timings["total_s"] = round(time.perf_counter() - started, 3)
        answer = self.check("".join(pieces), question, lang, passages)
        answer.timings = timings
        if history:
            answer.standalone_question = standalone
        yield {"type": "answer", "answer": answer}

    # ---- prompt building ---------------------------------------------------------------------------
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

    # ---- output checks -----------------------------------------------------------------------------
    def check(self, raw: str, question: str, lang: str, passages: list[Passage]) -> Answer:
        by_n = {p.n: p for p in passages}
        text = raw.strip()
        flags: list[Flag] = []
        if any(rule and rule in normalize_for_search(text) for rule in self._system_rules[lang]):
            flags.append(Flag(kind="prompt_leak", detail="the answer repeated the system instructions; withheld"))
            return Answer(question=question, lang=lang, answer=REFUSAL[lang], refused=True, flags=flags)
        if not text or is_refusal(text) and not _CITATION.search(text):
            return Answer(question=question, lang=lang, answer=REFUSAL[lang], refused=True)
        seen = set(_content_words(" ".join(p.text for p in passages) + " " + question))
        copied = sorted(set(_content_words(text)) & (EXAMPLE_MARKERS["ar"] | EXAMPLE_MARKERS["en"]) - seen)
        if copied:
            flags.append(Flag(kind="copied_from_example",
                              detail=f"the answer used words from the prompt's example, not the articles: "
                                     f"{', '.join(copied[:5])}; withheld"))
            return Answer(question=question, lang=lang, answer=REFUSAL[lang], refused=True, flags=flags)

        if lang == "ar":
            # Words the answer adds beyond the question must come from the passages; an Arabic answer whose
            # added words appear in none of them ("the weather will be dark", a poem) is not an answer from the
            # articles. English answers translate, so their words cannot be matched this way.
            added = set(_content_words(text)) - set(_content_words(question))
            cited = {int(n) for group in _CITATION.findall(text) for n in re.split(r"[,،]", group)} & by_n.keys()
            cited_text = " ".join(by_n[n].text for n in cited) or " ".join(p.text for p in passages)
            if added and not added & set(_content_words(cited_text)):
                flags.append(Flag(kind="unsupported_answer",
                                  detail=f"none of {', '.join(sorted(added)[:5])} is in the cited passages; withheld"))
                return Answer(question=question, lang=lang, answer=REFUSAL[lang], refused=True, flags=flags)

        text, used, dropped, grounding = ground(text, passages, question, lang)
        flags += grounding
        citations = [Citation(n=n, chunk_id=by_n[n].hit.chunk_id, article_id=by_n[n].hit.article_id,
                              title=by_n[n].hit.title, source=by_n[n].hit.source, date=by_n[n].hit.date,
                              text=by_n[n].text, start=by_n[n].start, end=by_n[n].end) for n in used]
        return Answer(question=question, lang=lang, answer=text, refused=False, citations=citations, flags=flags,
                      dropped_citations=dropped)


def _claims(text: str) -> list[str]:
    """Sentences, with a clause that ends in a semicolon or colon joined to what follows it: the citation
    at the end of the sentence covers both."""
    out, pending = [], ""
    for span in split_sentences(text):
        piece = text[span.start:span.end]
        if piece.rstrip().endswith(("؛", ";", ":", "،", ",")):
            pending += piece + " "
            continue
        out.append(pending + piece)
        pending = ""
    return out + ([pending.strip()] if pending.strip() else [])


def ground(text: str, passages: list[Passage], question: str, lang: str) -> tuple[str, list[int], int, list[Flag]]:
    """Citation mapping and grounding checks shared by answers and briefings: numbers that point at no passage
    are removed and counted; sentences without a citation, and figures or (in Arabic text) Latin names that
    their cited passages do not contain, are flagged. Returns (text, cited numbers in order, dropped, flags)."""
    by_n = {p.n: p for p in passages}
    flags: list[Flag] = []
    dropped = 0
    used: list[int] = []

    def keep_valid(match: re.Match) -> str:
        nonlocal dropped
        valid = []
        for part in re.split(r"[,،]", match.group(1)):
            n = int(part)
            if n in by_n:
                valid.append(n)
                if n not in used:
                    used.append(n)
            else:
                dropped += 1
        return "[" + "][".join(map(str, valid)) + "]" if valid else ""

    text = _CITATION.sub(keep_valid, text)
    text = re.sub(r"[ \t]+([.،,؛])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    if dropped:
        flags.append(Flag(kind="invalid_citation",
                          detail=f"{dropped} citation(s) pointed at no passage and were removed"))
    for sentence in _claims(text):
        cited = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
        claim = _CITATION.sub("", sentence).strip()
        if len(claim.split()) < 3:
            continue
        if not cited:
            flags.append(Flag(kind="uncited_sentence", detail=claim))
        support = " ".join(by_n[n].text for n in cited) if cited else " ".join(p.text for p in passages)
        missing = sorted(_numbers(claim) - _numbers(support) - _numbers(question))
        if missing:
            flags.append(Flag(kind="unsupported_figure",
                              detail=f"{', '.join(missing)} not in the cited passage(s): {claim}"))
        if lang == "ar":  # Latin-script names can be checked when passages and answer share a script
            support_norm = normalize_for_search(support + " " + question)
            for name in _LATIN_NAME.findall(claim):
                if normalize_for_search(name) not in support_norm:
                    flags.append(Flag(kind="unsupported_name", detail=f"{name} not in the cited passage(s)"))
    return text, used, dropped, flags
