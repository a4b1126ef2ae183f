"""`rag bench speed`: what a reader and an ingest wait for, each embedder configuration side by side in one run.

Per embedder configuration (each measured in its own process, so one runtime's imports and memory do not
colour the other's): XQuAD R@1 (the quality a faster configuration must keep), ingest chunks/s with sentence
vectors on, query embedding and retrieval p50/p95 (one question at a time, as a user asks), peak RSS, and a cold
`rag retrieve` (a new process over the index on disk,
timed to its first line of output). Then the embedded LLM: prompt and generation tokens/s of each llama.cpp
runtime here on the same prompt (one at a time: two models at once would measure the contention; with xllamacpp
built for this CPU installed, the prebuilt wheel is measured beside it), and the answer chain's prompt tokens and
first-token/total p50/p95 on a sample of the question set, on each xllamacpp build. Prints figures; asserts
nothing."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rag.datasets import load_xquad, write_articles_jsonl
from rag.errors import BadInput
from rag.settings import Settings

# The configurations compared: the previous default first, so each row reads against it.
EMBEDDERS = {"torch": "torch fp32 (sentence-transformers; the previous default)",
             "onnx": "ONNX Runtime, 8-bit block-wise (the default)"}
RUNTIMES = ("xllamacpp", "llama-cpp-python")
# Where `python -m rag.native --prebuilt` unpacks the prebuilt xllamacpp wheel, so that, with the build made for
# this CPU installed, the previous runtime is measured beside it in the same run (through PYTHONPATH).
PREBUILT_DIR = Path(".cache/xllamacpp-prebuilt")
PREBUILT = "xllamacpp prebuilt (AVX2; the previous default)"
BUILT_HERE = "xllamacpp built here for this CPU (the default)"
QUERIES_PER_LANG = 100
COLD_RUNS = 3


def _percentiles(values_ms: list[float]) -> dict:
    return {"p50": round(statistics.median(values_ms), 1), "p95": round(float(np.percentile(values_ms, 95)), 1)}


def _corpus(settings: Settings, tmp: Path) -> tuple[list[Path], list[str], dict, str]:
    """XQuAD's 240 Arabic paragraphs, 100 questions per language to time, and every question with its paragraph
    for recall; the seeds (no recall) where XQuAD is absent."""
    try:
        articles, questions = load_xquad(settings.data_dir)
    except BadInput:
        from rag.evaluate import load_question_set

        timed = [q["question"] for q in load_question_set(Path("evals/questions.jsonl"))]
        return [Path("seeds")], timed, {}, "seeds/ (XQuAD absent)"
    src = write_articles_jsonl(articles, tmp / "xquad-ar.jsonl")
    timed = [q for lang in ("ar", "en") for q, _, _ in questions[lang][:QUERIES_PER_LANG]]
    return [src], timed, questions, f"XQuAD ({len(articles)} Arabic paragraphs)"


def recall_at_1(retriever, questions: dict) -> dict:
    """Hybrid retrieval's R@1 per language: the quality a faster configuration must keep."""
    from rag.bench.retrieval import recall_table

    out = {}
    for lang, rows in questions.items():
        hits = retriever.retrieve_many([q for q, _, _ in rows], k=1)
        out[lang] = recall_table([[h.article_id for h in hs] for hs in hits], [gold for _, gold, _ in rows])["R@1"]
    return out


def cold_retrieve_s(index_dir: Path, question: str, env: dict, runs: int = COLD_RUNS) -> list[float]:
    """Seconds from starting `rag retrieve` in a new process to its first line of output."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "rag", "retrieve", question, "--k", "1"],
                                env={**env, "RAG_INDEX_DIR": str(index_dir)}, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        first = proc.stdout.readline()
        times.append(round(time.perf_counter() - started, 2))
        proc.communicate()
        if proc.returncode != 0 or not first.startswith("["):
            raise BadInput(f"`rag retrieve` failed in the cold-start measurement (exit {proc.returncode}): {first}")
    return times


def measure_embedder(settings: Settings) -> dict:
    """One configuration, in this process: ingest, query embedding, retrieval, memory, cold CLI."""
    from rag.embed import make_embedder
    from rag.ingest import Ingestor
    from rag.retrieve import HybridRetriever
    from rag.store import LocalStore

    with tempfile.TemporaryDirectory(prefix="rag-bench-speed-") as tmp_name:
        tmp = Path(tmp_name)
        sources, queries, questions, corpus = _corpus(settings, tmp)
        started = time.perf_counter()
        embedder = make_embedder(settings)
        load_s = time.perf_counter() - started
        store = LocalStore(tmp / "index", embedder.name)
        report = Ingestor.from_settings(store, embedder, settings).ingest(sources)
        embedder.embed_queries(queries[:2])  # first-call set-up is the cold start's, not a query's
        embed_ms, retrieve_ms = [], []
        for q in queries:
            t = time.perf_counter()
            embedder.embed_queries([q])
            embed_ms.append((time.perf_counter() - t) * 1000)
        retriever = HybridRetriever.from_settings(store, embedder, settings)
        for q in queries:
            t = time.perf_counter()
            retriever.retrieve(q)
            retrieve_ms.append((time.perf_counter() - t) * 1000)
        recall = recall_at_1(retriever, questions)
        cold = cold_retrieve_s(tmp / "index", queries[0], dict(os.environ))
    return {"embedder": embedder.name, "corpus": corpus, "chunks": report.chunks_embedded,
            "ingest_s": round(report.seconds, 2),
            "chunks_per_s": round(report.chunks_embedded / max(report.seconds, 1e-9), 2),
            "load_s": round(load_s, 2), "query_embed_ms": _percentiles(embed_ms),
            "retrieve_ms": _percentiles(retrieve_ms), "queries": len(queries), "recall_at_1": recall,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "cold_retrieve_s": cold, "cold_retrieve_median_s": statistics.median(cold)}


# ---- the embedded LLM's runtimes ------------------------------------------------------------------------------
def speed_prompt() -> str:
    """A prompt the size of an uncached answer prompt: a seed article's opening and a question."""
    text = sorted(Path("seeds").glob("*.txt"))[0].read_text(encoding="utf-8")
    return text[:1400] + "\n\nما الذي حدث؟ أجب من النص."


def measure_runtime(runtime: str, settings: Settings, new_tokens: int = 32) -> dict:
    """Prompt and generation tokens/s of one llama.cpp runtime on `speed_prompt()`, no prompt cache."""
    if runtime not in RUNTIMES:
        raise BadInput(f"unknown LLM runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
    prompt, threads = speed_prompt(), settings.threads
    if runtime == "llama-cpp-python":
        from llama_cpp import Llama

        llm = Llama(model_path=str(settings.embedded_llm_path), n_ctx=settings.llm_context, n_threads=threads,
                    n_threads_batch=threads, verbose=False)
        tokens = llm.tokenize(prompt.encode("utf-8"))
        t = time.perf_counter()
        llm.eval(tokens)
        prompt_s = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(new_tokens):
            llm.eval([llm.sample(temp=0.0)])
        gen_s = time.perf_counter() - t
        return {"prompt_tokens": len(tokens), "prompt_tok_s": round(len(tokens) / prompt_s, 1),
                "gen_tok_s": round(new_tokens / gen_s, 1)}
    import httpx

    from rag.llm import EmbeddedServer

    server = EmbeddedServer(settings.embedded_llm_path, settings.llm_context, threads, slots=1,
                            lock_dir=Path(tempfile.mkdtemp(prefix="rag-bench-llm-")))
    root = server.ensure().removesuffix("/v1")
    body = {"prompt": prompt, "n_predict": new_tokens, "cache_prompt": False, "temperature": 0.0,
            "ignore_eos": True}
    timings = httpx.post(f"{root}/completion", json=body, timeout=300).json()["timings"]
    return {"prompt_tokens": timings["prompt_n"], "prompt_tok_s": round(timings["prompt_per_second"], 1),
            "gen_tok_s": round(timings["predicted_per_second"], 1)}


def measure_answers(settings: Settings, questions: Path, n: int) -> dict:
    """Prompt tokens and first-token/total times of the current answer chain on the first n questions, over a
    fresh index of the seeds (the set's questions are about them)."""
    from rag.evaluate import aggregate, load_question_set, run_questions
    from rag.ingest import Ingestor
    from rag.service import Service
    from rag.store import LocalStore

    with tempfile.TemporaryDirectory(prefix="rag-bench-speed-") as tmp:
        service = Service(settings.model_copy(update={"index_dir": Path(tmp) / "index"}))
        store = LocalStore(Path(tmp) / "index", service.embedder().name)
        Ingestor.from_settings(store, service.embedder(), settings).ingest([Path("seeds")])
        a = aggregate(run_questions(service.chain(), load_question_set(questions)[:n]))
    keys = ("n", "prompt_tokens_p50", "cached_tokens_p50", "first_token_p50_s", "first_token_p95_s",
            "total_p50_s", "total_p95_s", "right", "confidently_wrong")
    return {k: a.get(k) for k in keys}


# ---- the command ----------------------------------------------------------------------------------------------
def _in_subprocess(args: list[str], env: dict | None = None) -> dict:
    """Run `rag bench speed --part ...` in a new process and read its one JSON line."""
    proc = subprocess.run([sys.executable, "-m", "rag", "bench", "speed", "--json", *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0][:300]}
    return json.loads(lines[-1])


def installed_runtimes() -> list[str]:
    import importlib.util

    return [r for r in RUNTIMES if importlib.util.find_spec(r.replace("-cpp-python", "_cpp")) is not None]


def llm_configurations() -> dict[str, dict]:
    """The embedded LLM's runtimes to measure, each with the environment of its child process: with the build
    for this CPU installed (`rag.native`), the prebuilt wheel first (unpacked on PYTHONPATH), then the build; and
    llama-cpp-python where it is installed. Label -> {"runtime", "env"}."""
    from rag.native import is_native, system_info, unpack_prebuilt

    configurations: dict[str, dict] = {}
    runtimes = installed_runtimes()
    if "xllamacpp" in runtimes:
        from importlib.metadata import version

        if is_native(system_info()) and unpack_prebuilt(version("xllamacpp"), PREBUILT_DIR) == 0:
            path = os.pathsep.join(filter(None, [str(PREBUILT_DIR.resolve()), os.environ.get("PYTHONPATH")]))
            configurations[PREBUILT] = {"runtime": "xllamacpp", "env": {"PYTHONPATH": path}}
            configurations[BUILT_HERE] = {"runtime": "xllamacpp", "env": {}}
        else:
            configurations["xllamacpp"] = {"runtime": "xllamacpp", "env": {}}
    if "llama-cpp-python" in runtimes:
        configurations["llama-cpp-python (not a dependency)"] = {"runtime": "llama-cpp-python", "env": {}}
    return configurations


def run_speed_bench(settings: Settings, part: str = "all", answers: int = 10,
                    questions: Path = Path("evals/questions.jsonl"), as_json: bool = False,
                    out=sys.stdout) -> dict:
    if part.startswith("embedder:"):
        figures = measure_embedder(settings)
    elif part.startswith("runtime:"):
        figures = measure_runtime(part.split(":", 1)[1], settings)
    elif part == "answers":
        figures = measure_answers(settings, questions, answers)
    else:
        progress = sys.stderr if as_json else out

        def say(text: str) -> None:
            progress.write(f"  {text} ...\n")
            progress.flush()

        figures = {"embedders": {}, "runtimes": {}, "answers": {}}
        for runtime in EMBEDDERS:
            say(f"embedder {runtime}")
            figures["embedders"][runtime] = _in_subprocess(["--part", f"embedder:{runtime}"],
                                                           {"RAG_EMBED_RUNTIME": runtime})
        configurations = llm_configurations()
        for label, c in configurations.items():
            say(f"LLM runtime: {label}")
            figures["runtimes"][label] = _in_subprocess(["--part", f"runtime:{c['runtime']}"], c["env"])
        # The answer chain on each xllamacpp build (the app's server); llama-cpp-python has no server here.
        for label, c in configurations.items() if answers else ():
            if c["runtime"] == "xllamacpp":
                say(f"answer chain, {answers} questions: {label}")
                figures["answers"][label] = _in_subprocess(["--part", "answers", "--answers", str(answers),
                                                            "--set", str(questions)], c["env"])
    if as_json or part != "all":  # one part is a child process's answer to its parent: always JSON
        out.write(json.dumps(figures, ensure_ascii=False) + "\n")
    else:
        out.write(format_speed(figures))
    return figures


def format_speed(f: dict) -> str:
    lines = []
    embedders = f.get("embedders") or {}
    if embedders:
        corpus = next((e["corpus"] for e in embedders.values() if "corpus" in e), "")
        lines += [f"Embedder configurations ({corpus}; sentence vectors on; one question at a time):", "",
                  "| configuration | R@1 ar / en | ingest chunks/s | query embedding p50 / p95 ms "
                  "| retrieval p50 / p95 ms | cold `rag retrieve` s (median of runs) | model load s | peak RSS MB |",
                  "|---|---|---|---|---|---|---|---|"]
        for key, e in embedders.items():
            name = EMBEDDERS.get(key, key)
            if "error" in e:
                lines.append(f"| {name} | failed: {e['error']} | | | | | | |")
                continue
            recall = e.get("recall_at_1") or {}
            lines.append(f"| {name} | {recall.get('ar', '–')} / {recall.get('en', '–')} "
                         f"| {e['chunks_per_s']} ({e['chunks']} in {e['ingest_s']} s) "
                         f"| {e['query_embed_ms']['p50']} / {e['query_embed_ms']['p95']} "
                         f"| {e['retrieve_ms']['p50']} / {e['retrieve_ms']['p95']} "
                         f"| {e['cold_retrieve_median_s']} ({', '.join(map(str, e['cold_retrieve_s']))}) "
                         f"| {e['load_s']} | {e['peak_rss_mb']} |")
        lines.append("")
    runtimes = f.get("runtimes") or {}
    if runtimes:
        lines += ["Embedded LLM runtimes (same model file and prompt, no prompt cache, one at a time):", "",
                  "| runtime | prompt tokens | prompt tokens/s | generated tokens/s |", "|---|---|---|---|"]
        for name, r in runtimes.items():
            if "error" in r:
                lines.append(f"| {name} | failed: {r['error']} | | |")
            else:
                lines.append(f"| {name} | {r['prompt_tokens']} | {r['prompt_tok_s']} | {r['gen_tok_s']} |")
        lines.append("")
    answers = f.get("answers") or {}
    if answers:
        n = next((a["n"] for a in answers.values() if "n" in a), "")
        lines += [f"Answer chain ({n} questions of the set; embedded model):", "",
                  "| runtime | prompt tokens p50 (of them cached) | first token p50 / p95 s | total p50 / p95 s "
                  "| right | confidently wrong |", "|---|---|---|---|---|---|"]
        for label, a in answers.items():
            if "error" in a:
                lines.append(f"| {label} | failed: {a['error']} | | | | |")
            else:
                lines.append(f"| {label} | {a['prompt_tokens_p50']} ({a['cached_tokens_p50']}) "
                             f"| {a['first_token_p50_s']} / {a['first_token_p95_s']} "
                             f"| {a['total_p50_s']} / {a['total_p95_s']} | {a['right']} | {a['confidently_wrong']} |")
        lines.append("")
    return "\n".join(lines)
