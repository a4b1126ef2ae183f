"""`rag bench brief`: whether a briefing tells a reader what happened, and what it costs.

Quality is measured against key facts written per article into `evals/brief_facts.jsonl` (names, places, figures
and the event; each fact a list of groups, every group needing one accepted spelling, matched strictly by
`rag.evaluate.answer_found`), and on a second corpus whose facts nobody wrote for it: XQuAD paragraphs as
articles, their questions' short answers as the facts. Beside coverage: repeated sentences (embedding cosine >=
0.9, or one contained in another), sentences their cited passages do not bear out (`rag.verify.unsupported`,
applied to the finished record), words per story, model calls and time; each brief mode side by side (extract
with English facts, the default; `rendered`, extract with the model's English asserted; write, the model's own
summary, the previous design). Story
grouping's margin on the seeds plus second reports of the same events is printed first."""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rag.errors import BadInput
from rag.jsonl import iter_jsonl

# Sentences the briefer writes from metadata, not from a passage: "also reported by <outlet> [n]", and the
# model-written path's English fallback "Reported by <outlet> on <date>: «<title>» [n]".
_ATTRIBUTION = re.compile(r"^\s*(?:وأوردت الخبر أيضًا|Also reported by|Reported by)\b")


def grouping_figures(store, pairs_file: Path, threshold: float, max_days: int) -> dict:
    from rag.brief import lead_vector, same_story

    try:
        same = {frozenset(p) for p in json.loads(Path(pairs_file).read_text(encoding="utf-8"))["same_event"]}
    except (OSError, ValueError, KeyError) as exc:
        raise BadInput(f"cannot read the same-event pairs {pairs_file}: {exc}") from exc
    articles = sorted(store.articles(), key=lambda a: a.id)
    leads = {a.id: lead_vector(store, a.id) for a in articles}
    rows = []
    for i, a in enumerate(articles):
        for b in articles[i + 1:]:
            grouped, score = same_story(a, b, leads[a.id], leads[b.id], threshold, max_days)
            rows.append({"a": a.id, "b": b.id, "lead_cosine": round(score, 3), "same_event": frozenset((a.id, b.id))
                         in same, "grouped": grouped})
    positives = [r["lead_cosine"] for r in rows if r["same_event"]]
    negatives = [r["lead_cosine"] for r in rows if not r["same_event"]]
    return {"threshold": threshold, "max_days": max_days, "pairs": rows,
            "same_event_grouped": sum(r["grouped"] for r in rows if r["same_event"]), "same_event_pairs": len(positives),
            "different_grouped": sum(r["grouped"] for r in rows if not r["same_event"]),
            "different_pairs": len(negatives),
            "lowest_same_event_cosine": min(positives, default=None),
            "highest_different_cosine": max(negatives, default=None)}


# ---- key facts ------------------------------------------------------------------------------------------------
def load_facts(path: Path) -> list[dict]:
    """Rows of {article, id, fact, ar: [[spelling, ...], ...], en: [[...], ...]}."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read the key facts {path}: {exc}") from exc
    facts = []
    for n, row, error in iter_jsonl(text):
        if error:
            raise BadInput(f"{path}:{n}: {error}")
        if not isinstance(row, dict) or not row.get("article") or not all(
                isinstance(row.get(lang), list) and row[lang] and all(isinstance(g, list) and g for g in row[lang])
                for lang in ("ar", "en")):
            raise BadInput(f"{path}:{n}: a key fact needs `article` and non-empty `ar` and `en` lists of "
                           "accepted-spelling groups")
        facts.append(row)
    if not facts:
        raise BadInput(f"{path} has no key facts")
    return facts


def xquad_corpus(data_dir: Path, articles: int = 6, per_article: int = 5) -> tuple[list[dict], list[dict]]:
    """A second corpus the briefing was never tuned on: the first paragraph of `articles` XQuAD articles spread
    over the set, as undated articles; each paragraph's distinct short answers (at most 3 words, Arabic and
    English of the same question) as its key facts."""
    from rag.datasets import load_xquad
    from rag.verify import numbers

    paragraphs, questions = load_xquad(data_dir)
    firsts = [p for p in paragraphs if p["id"].endswith("-0")]
    step = max(1, len(firsts) // articles)
    chosen = firsts[::step][:articles]
    ids = {p["id"] for p in chosen}
    facts, seen = [], set()
    for (_, article_id, ar), (_, _, en) in zip(questions["ar"], questions["en"], strict=True):
        ar, en = ar.strip(" .،"), en.strip(" .,")
        if article_id not in ids or len(ar.split()) > 3 or len(en.split()) > 3 or (article_id, en.lower()) in seen:
            continue
        if sum(f["article"] == article_id for f in facts) >= per_article:
            continue
        seen.add((article_id, en.lower()))
        facts.append({"article": article_id, "id": f"{article_id}:{len(facts)}", "fact": en,
                      "ar": [[ar, *sorted(numbers(ar))]], "en": [[en, *sorted(numbers(en))]]})
    return [{"id": p["id"], "text": p["text"]} for p in chosen], facts


def story_texts(briefing) -> dict[str, str]:
    """Each article's story as a reader sees it (headline and summary), by article id."""
    return {a: f"{s.headline}\n{s.summary}" for s in briefing.stories for a in s.article_ids}


def fact_coverage(briefing, facts: list[dict]) -> tuple[float, list[str]]:
    """The share of key facts that the story of their article states (every group matched), and the ids
    missed. A fact of an article no story covers is missed."""
    from rag.evaluate import answer_found

    texts = story_texts(briefing)
    missed = [f["id"] for f in facts if not all(answer_found(texts.get(f["article"], ""), group)
                                                for group in f[briefing.lang])]
    return (round(1 - len(missed) / len(facts), 3) if facts else 0.0), missed


def summary_sentences(briefing) -> list[tuple[int, str]]:
    """(story index, sentence) for every summary sentence the briefer wrote from a passage."""
    from rag.verify import claims, strip_citations

    return [(i, c.strip()) for i, s in enumerate(briefing.stories) for c in claims(s.summary)
            if strip_citations(c).strip() and not _ATTRIBUTION.match(c)]


_QUOTED = re.compile(r"^(?:According to [^:]*: )?[Ii]n Arabic: «(.+)»")  # the English facts line (rag.brief)


def what_it_says(sentence: str) -> str:
    """The words a summary sentence states: the quoted Arabic of an English facts line, without its wrapper.
    The wrapper ("In Arabic: «…» (figures: 1)") is the same on every such line and made two different facts
    (the XQuAD definitions of a prime and of a composite number) score 0.95 as a pair; the quotes alone do not."""
    quoted = _QUOTED.match(sentence.strip())
    return quoted.group(1) if quoted else sentence


def repeated_sentences(sentences: list[str], vectors: np.ndarray | None,
                       threshold: float = 0.9) -> list[tuple[str, str]]:
    """Pairs of sentences that say the same thing: embedding cosine >= threshold, or one contained in the
    other."""
    from rag.verify import comparable

    norm = [comparable(s) for s in sentences]
    pairs = []
    for i in range(len(sentences)):
        for j in range(i + 1, len(sentences)):
            alike = vectors is not None and float(vectors[i] @ vectors[j]) >= threshold
            if alike or norm[i] in norm[j] or norm[j] in norm[i]:
                pairs.append((sentences[i], sentences[j]))
    return pairs


def unsupported_sentences(briefing) -> list[tuple[str, str]]:
    """(sentence, why) for every summary sentence its own cited passages do not bear out."""
    from rag.verify import cited_numbers, unsupported

    out = []
    for i, sentence in summary_sentences(briefing):
        texts = {c.n: c.text for c in briefing.stories[i].citations}
        why = unsupported(sentence, [texts[n] for n in cited_numbers(sentence) if n in texts])
        if why:
            out.append((sentence, why))
    return out


def briefing_quality(briefing, facts: list[dict], embed=None) -> dict:
    """The quality figures of one briefing. `embed` (list[str] -> vectors) finds repeats by meaning."""
    from rag.verify import strip_citations

    coverage, missed = fact_coverage(briefing, facts)
    sentences = [s for _, s in summary_sentences(briefing)]
    said = [what_it_says(strip_citations(s)) for s in sentences]
    vectors = np.asarray(embed(said)) if embed and sentences else None
    from rag.brief import REPEATED

    repeats = repeated_sentences(said, vectors, REPEATED)
    loose = repeated_sentences(said, vectors, 0.9)
    bad = unsupported_sentences(briefing)
    words = [len(strip_citations(s.summary).split()) for s in briefing.stories]
    return {"coverage": coverage, "facts": len(facts), "missed": missed, "repeated": len(repeats),
            "repeated_pairs": repeats, "repeated_090": len(loose),
            "repeated_090_pairs": loose, "unsupported": len(bad), "unsupported_sentences": bad,
            "sentences": len(sentences), "stories": len(briefing.stories),
            "words_per_story": round(sum(words) / len(words), 1) if words else 0.0,
            "renderings_failed": sum(1 for s in briefing.stories for f in s.flags if f.kind == "rendering_rejected")}


# ---- the benchmark --------------------------------------------------------------------------------------------
def _briefings(settings, store, llm, embedder, facts, modes, langs, label, out) -> dict:
    from rag.brief import Briefer

    results = {}
    for mode in modes:
        for lang in langs if mode != "rendered" else ("en",):  # rendered: extract's English variant only
            briefer = Briefer.from_settings(store, llm, settings)
            briefer.cache_dir = None  # time the work, not the cache
            briefer.mode, briefer.english = ("extract", "rendered") if mode == "rendered" else (mode, "facts")
            started = time.perf_counter()
            b = briefer.brief(all_articles=True, lang=lang)
            seconds = round(time.perf_counter() - started, 1)
            figures = briefing_quality(b, facts, lambda texts: embedder.embed_passages(texts))
            figures.update(seconds=seconds, llm_calls=briefer.llm_calls)
            results[f"{label}/{mode}/{lang}"] = {**figures, "briefing": b.model_dump(mode="json")}
            out.write(f"  {label} {mode} {lang}: coverage {figures['coverage']} in {seconds} s\n")
            out.flush()
    return results


def run_brief_bench(settings, seeds: Path, pairs_dir: Path, facts_file: Path, as_json: bool = False,
                    modes: tuple[str, ...] = ("extract", "rendered", "write"), out=sys.stdout) -> dict:
    from rag.datasets import write_articles_jsonl
    from rag.embed import make_embedder
    from rag.ingest import Ingestor
    from rag.llm import make_chat_model
    from rag.store import LocalStore

    embedder = make_embedder(settings)
    facts = load_facts(facts_file)
    results: dict = {"modes": list(modes)}
    progress = sys.stderr if as_json else out
    with tempfile.TemporaryDirectory(prefix="rag-bench-brief-") as tmp:
        store = LocalStore(Path(tmp) / "grouping", embedder.name)
        Ingestor.from_settings(store, embedder, settings).ingest([seeds, pairs_dir])
        results["grouping"] = grouping_figures(store, pairs_dir / "pairs.json", settings.brief_group_threshold,
                                               settings.brief_group_days)
        seed_store = LocalStore(Path(tmp) / "seeds", embedder.name)
        Ingestor.from_settings(seed_store, embedder, settings).ingest([seeds])
        llm = make_chat_model(settings)
        results["runs"] = _briefings(settings, seed_store, llm, embedder, facts, modes, ("ar", "en"), "seeds",
                                     progress)
        try:
            articles, xfacts = xquad_corpus(settings.data_dir)
        except BadInput as exc:
            progress.write(f"  XQuAD corpus skipped: {exc}\n")
        else:
            src = write_articles_jsonl(articles, Path(tmp) / "xquad.jsonl")
            x_store = LocalStore(Path(tmp) / "xquad", embedder.name)
            Ingestor.from_settings(x_store, embedder, settings).ingest([src])
            results["runs"].update(_briefings(settings, x_store, llm, embedder, xfacts, modes, ("ar", "en"),
                                              "xquad", progress))
    if as_json:
        out.write(json.dumps(results, ensure_ascii=False, default=list) + "\n")
        return results
    g = results["grouping"]
    out.write(f"story grouping (lead cosine >= {g['threshold']}, within {g['max_days']} days), seeds + "
              f"{pairs_dir}:\n  same-event pairs grouped {g['same_event_grouped']}/{g['same_event_pairs']}, "
              f"different-event pairs grouped {g['different_grouped']}/{g['different_pairs']}; lowest same-event "
              f"cosine {g['lowest_same_event_cosine']}, highest different-event {g['highest_different_cosine']}\n")
    out.write(format_table(results["runs"]))
    return results


def format_table(runs: dict) -> str:
    header = ("corpus", "mode", "lang", "key facts", "repeated", "unsupported", "renderings failed", "words/story",
              "LLM calls", "seconds")
    rows = [(*key.split("/"), f"{r['coverage']:.2f} ({r['facts'] - len(r['missed'])}/{r['facts']})",
             str(r["repeated"]), str(r["unsupported"]), str(r["renderings_failed"]), str(r["words_per_story"]),
             str(r["llm_calls"]), str(r["seconds"])) for key, r in runs.items()]
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)) for row in (header, *rows)]
    missed = [f"  missed ({key}): {', '.join(r['missed'])}" for key, r in runs.items() if r["missed"]]
    return "\n".join(lines + missed) + "\n"
