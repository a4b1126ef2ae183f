"""`rag bench brief`: how well story grouping separates same-event from different-event articles (the
threshold's margin), and the time a briefing of the seeds takes with the configured model. Prints figures."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from rag.errors import BadInput


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


def run_brief_bench(settings, seeds: Path, pairs_dir: Path, as_json: bool = False, out=sys.stdout) -> dict:
    from rag.brief import Briefer
    from rag.embed import make_embedder
    from rag.ingest import Ingestor
    from rag.llm import make_chat_model
    from rag.store import FaissStore

    embedder = make_embedder(settings)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="rag-bench-brief-") as tmp:
        store = FaissStore(Path(tmp) / "grouping", embedder.name)
        Ingestor.from_settings(store, embedder, settings).ingest([seeds, pairs_dir])
        results["grouping"] = grouping_figures(store, pairs_dir / "pairs.json", settings.brief_group_threshold,
                                               settings.brief_group_days)
        seed_store = FaissStore(Path(tmp) / "seeds", embedder.name)
        Ingestor.from_settings(seed_store, embedder, settings).ingest([seeds])
        llm = make_chat_model(settings)
        for lang in ("ar", "en"):
            briefer = Briefer.from_settings(seed_store, llm, settings)
            briefer.cache_dir = None  # time the work, not the cache
            started = time.perf_counter()
            b = briefer.brief(all_articles=True, lang=lang)
            seconds = time.perf_counter() - started
            cited = {c.article_id for s in b.stories for c in s.citations}
            results[f"briefing_{lang}"] = {
                "seconds": round(seconds, 1), "llm_calls": briefer.llm_calls, "stories": len(b.stories),
                "articles": len(seed_store.articles()), "articles_cited": len(cited),
                "flags": sum(len(s.flags) for s in b.stories),
                "fallbacks": sum(1 for s in b.stories for f in s.flags if f.kind == "fallback")}
    if as_json:
        out.write(json.dumps(results, ensure_ascii=False, default=list) + "\n")
        return results
    g = results["grouping"]
    out.write(f"story grouping (lead cosine >= {g['threshold']}, within {g['max_days']} days), seeds + "
              f"{pairs_dir}:\n  same-event pairs grouped {g['same_event_grouped']}/{g['same_event_pairs']}, "
              f"different-event pairs grouped {g['different_grouped']}/{g['different_pairs']}; lowest same-event "
              f"cosine {g['lowest_same_event_cosine']}, highest different-event {g['highest_different_cosine']}\n")
    for lang in ("ar", "en"):
        r = results[f"briefing_{lang}"]
        out.write(f"briefing of the seeds (--all --lang {lang}): {r['seconds']} s, {r['llm_calls']} LLM calls, "
                  f"{r['stories']} stories, {r['articles_cited']}/{r['articles']} articles cited, {r['flags']} flags "
                  f"({r['fallbacks']} extractive fallbacks)\n")
    return results
