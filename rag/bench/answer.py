"""`rag bench answer`: answer accuracy, citation validity, refusal correctness and latency of the answer chain,
side by side with llama-index's CitationQueryEngine on the same retriever and LLM. Prints figures."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from rag.errors import RagError
from rag.evaluate import (
    aggregate,
    load_question_set,
    run_questions,
    score_question,
    xquad_chain,
    xquad_questions,
)
from rag.records import Answer, Citation


def run_chain(chain, questions: list[dict], progress=None) -> tuple[dict, list[dict]]:
    rows = run_questions(chain, questions, progress=lambda i, n, row: progress and progress(row))
    return aggregate(rows), rows


def run_citation_query_engine(retriever, llm, questions: list[dict], k: int, progress=None):
    """llama-index's CitationQueryEngine over the same retriever (same passages) and the same chat model."""
    from llama_index.core.query_engine import CitationQueryEngine

    from rag.llm import as_llama_index_llm
    from rag.retrieve import as_llama_index_retriever
    from rag.verify import REFUSAL, is_refusal

    engine = CitationQueryEngine.from_args(index=None, retriever=as_llama_index_retriever(retriever, k=k),
                                           llm=as_llama_index_llm(llm), citation_chunk_size=4096)
    rows = []
    for q in questions:
        started = time.perf_counter()
        try:
            response = engine.query(q["question"])
        except RagError as exc:
            rows.append(score_question(q, None, error=str(exc)))
            continue
        elapsed = time.perf_counter() - started
        text = str(response.response or "")
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", text)]
        sources = response.source_nodes
        citations = [Citation(n=n, chunk_id=sources[n - 1].node.node_id, title="", text="",
                              article_id=sources[n - 1].node.metadata.get("article_id", ""))
                     for n in dict.fromkeys(numbers) if 1 <= n <= len(sources)]
        refused = is_refusal(text) or text.strip() in REFUSAL.values() or not text.strip()
        # The engine does not stream here: first token = whole answer.
        answer = Answer(question=q["question"], lang=q.get("lang", ""), answer=text, refused=refused,
                        citations=citations, dropped_citations=sum(1 for n in numbers if not 1 <= n <= len(sources)),
                        timings={"first_token_s": elapsed, "total_s": elapsed})
        retrieved = [s.node.metadata.get("article_id", "") for s in sources]
        rows.append(score_question(q, answer, retrieved))
        if progress:
            progress(rows[-1])
    return aggregate(rows), rows


def format_report(results: dict) -> str:
    lines = []
    for set_name, systems in results.items():
        lines += [f"### {set_name}", "",
                  "| system | n | passed | accuracy | refused unanswerable | refused answerable "
                  "| citations pointing nowhere | first token p50/p95 s | total p50/p95 s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, s in systems.items():
            refused_u = "n/a" if s["unanswerable_refused"] is None else f"{s['unanswerable_refused']:.3f}"
            lines.append(f"| {name} | {s['n']} | {s['pass_rate']:.3f} | {s['right']:.3f} | {refused_u} | "
                         f"{s['answerable_refused']:.3f} | {s['citations_pointing_nowhere']} | "
                         f"{s['first_token_p50_s']} / {s['first_token_p95_s']} | "
                         f"{s['total_p50_s']} / {s['total_p95_s']} |")
        lines.append("")
    return "\n".join(lines)


def run_answer_bench(settings, question_set: Path, xquad: int, baseline: bool, limit: int | None,
                     as_json: bool, out=sys.stdout) -> dict:
    from rag.answer import AnswerChain
    from rag.embed import make_embedder
    from rag.llm import make_chat_model
    from rag.retrieve import HybridRetriever
    from rag.store import open_store

    embedder = make_embedder(settings)
    llm = make_chat_model(settings)
    store = open_store(settings, embedder.name)
    retriever = HybridRetriever.from_settings(store, embedder, settings)
    chain = AnswerChain.from_settings(retriever, llm, settings)

    def progress(row):
        if not as_json:
            print(f"  {row['id']}: {'ok' if row['passed'] else 'miss'}", file=sys.stderr)

    seed_questions = load_question_set(question_set)[:limit]
    results: dict = {f"seed set ({question_set})": {}}
    results[f"seed set ({question_set})"]["rag answer chain"] = run_chain(chain, seed_questions, progress)[0]
    if baseline:
        results[f"seed set ({question_set})"]["llama-index CitationQueryEngine"] = run_citation_query_engine(
            retriever, llm, seed_questions, settings.answer_k, progress)[0]
    if xquad:
        articles, qs = xquad_questions(settings.data_dir, xquad)
        with xquad_chain(settings, embedder, llm, articles) as x_chain:
            name = f"XQuAD sample ({len(qs)} questions over {len(articles)} paragraphs)"
            results[name] = {"rag answer chain": run_chain(x_chain, qs, progress)[0]}
            if baseline:
                results[name]["llama-index CitationQueryEngine"] = run_citation_query_engine(
                    x_chain.retriever, llm, qs, settings.answer_k, progress)[0]
    if as_json:
        out.write(json.dumps(results, ensure_ascii=False) + "\n")
    else:
        out.write(format_report(results))
    return results
