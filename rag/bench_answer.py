"""`rag bench answer`: answer accuracy, citation validity, refusal correctness and latency of the answer chain,
side by side with llama-index's CitationQueryEngine on the same retriever and LLM. Prints figures."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from rag.arabic import normalize_for_search
from rag.errors import BadInput, RagError


def load_question_set(path: Path) -> list[dict]:
    from rag.jsonl import iter_jsonl

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read question set {path}: {exc}") from exc
    rows = []
    for n, row, error in iter_jsonl(text):
        if error:
            raise BadInput(f"{path}:{n}: {error}")
        if not isinstance(row, dict) or not row.get("question") or "answerable" not in row:
            raise BadInput(f"{path}:{n}: needs `question` and `answerable`")
        rows.append(row)
    return rows


def expected_found(answer: str, expect_any: list[str]) -> bool:
    norm = normalize_for_search(answer)
    return any(normalize_for_search(e) in norm for e in expect_any)


def score_row(q: dict, answer: str, refused: bool, cited_articles: list[str], dropped: int) -> dict:
    right = (not refused and expected_found(answer, q.get("expect_any", []))
             and (not q.get("sources") or any(a in q["sources"] for a in cited_articles)))
    return {"id": q.get("id"), "answerable": q["answerable"], "right": bool(right) if q["answerable"] else None,
            "refusal_correct": refused != q["answerable"], "refused": refused, "citations_valid": dropped == 0,
            "dropped": dropped}


def summarise(rows: list[dict], ttft: list[float], total: list[float]) -> dict:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def pct(values, q):
        return round(float(np.percentile(values, q)), 2) if values else None

    return {
        "n": len(rows),
        "answer_accuracy": round(sum(r["right"] for r in answerable) / max(len(answerable), 1), 3),
        "refused_unanswerable": (round(sum(r["refused"] for r in unanswerable) / len(unanswerable), 3)
                                 if unanswerable else None),
        "refused_answerable": round(sum(r["refused"] for r in answerable) / max(len(answerable), 1), 3),
        "answers_with_invalid_citations": sum(not r["citations_valid"] for r in rows),
        "citations_pointing_nowhere": sum(r["dropped"] for r in rows),
        "first_token_s": {"p50": pct(ttft, 50), "p95": pct(ttft, 95)},
        "total_s": {"p50": pct(total, 50), "p95": pct(total, 95)},
    }


def run_chain(chain, questions: list[dict], progress=None) -> tuple[dict, list[dict]]:
    rows, ttft, total = [], [], []
    for q in questions:
        try:
            a = chain.ask(q["question"])
        except RagError as exc:
            rows.append({**score_row(q, "", True, [], 0), "error": str(exc)})
            continue
        if "first_token_s" in a.timings:
            ttft.append(a.timings["first_token_s"])
        total.append(a.timings.get("total_s", 0.0))
        rows.append({**score_row(q, a.answer, a.refused, [c.article_id for c in a.citations], a.dropped_citations),
                     "answer": a.answer})
        if progress:
            progress(rows[-1])
    return summarise(rows, ttft, total), rows


def run_citation_query_engine(retriever, llm, questions: list[dict], k: int, progress=None):
    """llama-index's CitationQueryEngine over the same retriever (same passages) and the same chat model."""
    from llama_index.core.query_engine import CitationQueryEngine

    from rag.answer import REFUSAL, is_refusal
    from rag.llm import as_llama_index_llm
    from rag.retrieve import as_llama_index_retriever

    engine = CitationQueryEngine.from_args(index=None, retriever=as_llama_index_retriever(retriever, k=k),
                                           llm=as_llama_index_llm(llm), citation_chunk_size=4096)
    rows, ttft, total = [], [], []
    for q in questions:
        started = time.perf_counter()
        try:
            response = engine.query(q["question"])
        except RagError as exc:
            rows.append({**score_row(q, "", True, [], 0), "error": str(exc)})
            continue
        elapsed = time.perf_counter() - started
        total.append(elapsed)
        ttft.append(elapsed)  # the engine does not stream here: first token = whole answer
        text = str(response.response or "")
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", text)]
        sources = response.source_nodes
        dropped = sum(1 for n in numbers if not 1 <= n <= len(sources))
        cited = [sources[n - 1].node.metadata.get("article_id", "") for n in numbers if 1 <= n <= len(sources)]
        refused = is_refusal(text) or text.strip() in REFUSAL.values() or not text.strip()
        rows.append({**score_row(q, text, refused, cited, dropped), "answer": text})
        if progress:
            progress(rows[-1])
    return summarise(rows, ttft, total), rows


def xquad_questions(data_dir: Path, n: int) -> tuple[list[dict], list[dict]]:
    """n/2 Arabic and n/2 English questions on the first paragraphs of XQuAD (answers: the gold span)."""
    from rag.bench import load_xquad

    paragraphs = max(n, 2)
    articles, questions = load_xquad(data_dir, limit=paragraphs)
    picked = []
    for lang in ("ar", "en"):
        seen = set()
        for question, article_id, answer in questions[lang]:
            if article_id in seen:
                continue
            seen.add(article_id)
            picked.append({"id": f"xquad-{lang}-{article_id}", "question": question, "lang": lang,
                           "expect_any": [answer], "sources": [article_id], "answerable": True})
            if len(seen) >= n // 2:
                break
    return articles, picked


def format_report(results: dict) -> str:
    lines = []
    for set_name, systems in results.items():
        lines += [f"### {set_name}", "",
                  "| system | n | accuracy | refused unanswerable | refused answerable | invalid-citation answers "
                  "| first token p50/p95 s | total p50/p95 s |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, s in systems.items():
            refused_u = "n/a" if s["refused_unanswerable"] is None else f"{s['refused_unanswerable']:.3f}"
            lines.append(f"| {name} | {s['n']} | {s['answer_accuracy']:.3f} | {refused_u} | "
                         f"{s['refused_answerable']:.3f} | {s['answers_with_invalid_citations']} | "
                         f"{s['first_token_s']['p50']} / {s['first_token_s']['p95']} | "
                         f"{s['total_s']['p50']} / {s['total_s']['p95']} |")
        lines.append("")
    return "\n".join(lines)


def run_answer_bench(settings, question_set: Path, xquad: int, baseline: bool, limit: int | None,
                     as_json: bool, out=sys.stdout) -> dict:
    import tempfile

    from rag.answer import AnswerChain
    from rag.embed import make_embedder
    from rag.ingest import Ingestor
    from rag.llm import make_chat_model
    from rag.retrieve import HybridRetriever
    from rag.store import FaissStore

    embedder = make_embedder(settings)
    llm = make_chat_model(settings)
    store = FaissStore.open(settings.index_dir, embedder.name)
    retriever = HybridRetriever.from_settings(store, embedder, settings)
    chain = AnswerChain.from_settings(retriever, llm, settings)

    def progress(row):
        if not as_json:
            ok = row["right"] if row["answerable"] else row["refusal_correct"]
            print(f"  {row['id']}: {'ok' if ok else 'miss'}", file=sys.stderr)

    seed_questions = load_question_set(question_set)[:limit]
    results: dict = {f"seed set ({question_set})": {}}
    results[f"seed set ({question_set})"]["rag answer chain"] = run_chain(chain, seed_questions, progress)[0]
    if baseline:
        results[f"seed set ({question_set})"]["llama-index CitationQueryEngine"] = run_citation_query_engine(
            retriever, llm, seed_questions, settings.answer_k, progress)[0]
    if xquad:
        articles, qs = xquad_questions(settings.data_dir, xquad)
        with tempfile.TemporaryDirectory(prefix="rag-bench-answer-") as tmp:
            src = Path(tmp) / "xquad.jsonl"
            src.write_text("\n".join(json.dumps(a, ensure_ascii=False) for a in articles))
            x_store = FaissStore(Path(tmp) / "index", embedder.name)
            Ingestor.from_settings(x_store, embedder, settings).ingest([src])
            x_retriever = HybridRetriever.from_settings(x_store, embedder, settings)
            x_chain = AnswerChain.from_settings(x_retriever, llm, settings)
            name = f"XQuAD sample ({len(qs)} questions over {len(articles)} paragraphs)"
            results[name] = {"rag answer chain": run_chain(x_chain, qs, progress)[0]}
            if baseline:
                results[name]["llama-index CitationQueryEngine"] = run_citation_query_engine(
                    x_retriever, llm, qs, settings.answer_k, progress)[0]
    if as_json:
        out.write(json.dumps(results, ensure_ascii=False) + "\n")
    else:
        out.write(format_report(results))
    return results
