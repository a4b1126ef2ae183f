"""`rag eval`: regression evaluation over a fixed question set.

Every question goes through the same chain as `rag ask`; each is scored on retrieval, answer, citations,
refusal and latency; a run is compared with a stored baseline (the JSON that `--json` prints), and the gate
fails when an aggregate metric drops by more than its tolerance or a question that passed now fails.
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
import re
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rag.arabic import normalize_for_search
from rag.errors import BadInput, LLMUnavailable, RagError
from rag.files import write_text_atomic
from rag.verify import strip_citations

# Aggregate metrics the gate watches: name -> True when higher is better.
QUALITY_METRICS = {
    "pass_rate": True, "right": True, "confidently_wrong": False, "retrieval_hit_at_k": True, "retrieval_mrr": True,
    "citation_validity": True, "cites_expected_source": True, "unanswerable_refused": True,
    "answerable_refused": False, "grounding_flags_per_answer": False,
}
LATENCY_METRICS = ("first_token_p50_s", "total_p50_s")


# ---- question sets ---------------------------------------------------------------------------------------
def load_question_set(path: Path) -> list[dict]:
    """Question rows as dicts (unknown fields kept); a malformed line is reported with its number."""
    from rag.jsonl import iter_jsonl

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read question set {path}: {exc}") from exc
    rows, ids = [], set()
    for n, row, error in iter_jsonl(text):
        if error:
            raise BadInput(f"{path}:{n}: {error}")
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise BadInput(f"{path}:{n}: needs a `question` string")
        if not isinstance(row.get("answerable"), bool):
            raise BadInput(f"{path}:{n}: needs `answerable`: true or false")
        for field in ("expect_any", "sources", "variants"):
            if not isinstance(row.get(field, []), list):
                raise BadInput(f"{path}:{n}: `{field}` must be a list")
        if row["answerable"] and not row.get("expect_any"):
            raise BadInput(f"{path}:{n}: an answerable question needs `expect_any` (accepted answer strings)")
        row = {**row, "id": str(row.get("id") or f"line-{n}")}
        if row["id"] in ids:
            raise BadInput(f"{path}:{n}: id {row['id']!r} is used twice")
        ids.add(row["id"])
        rows.append(row)
    if not rows:
        raise BadInput(f"question set {path} has no questions")
    return rows


# What opens a gold span without being part of its answer, as SQuAD's scorer drops "the" and "a": an article or
# a preposition, the copula "كان"/"كانت" (XQuAD's "كانت 20%"), "سنة"/"عام" before a year (XQuAD's "سنة 1998"
# for "1998"), and the clitic ب or ل before the article ("بالنقابات المهنية").
_GOLD_OPENERS = re.compile(r"^(?:(?:في|من|الي|علي|كان|كانت|the|a|an|in|on|at|from|to)\s+|(?:سنه|عام)\s+(?=\d)|[بل](?=ال))")
# A sum of money abbreviated after its currency sign ("£30m", "$2bn"), written out as the chain writes it.
_MONEY_SCALE = re.compile(r"([£$€]\d+(?:[.,]\d+)?)\s?(m|bn)\b")


# English counts in words are the same answer as in digits (XQuAD's "ten years" for the chain's "10 years"); not
# "one", which is as often no count ("no one", "one of them").
_COUNT_WORDS = {word: str(n) for n, word in enumerate(
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty".split(), start=2)}
_COUNT_WORD = re.compile(rf"(?<![\w-])({'|'.join(_COUNT_WORDS)})(?![\w-])")


def _figures_as_written(text: str) -> str:
    """A sum abbreviated after its currency sign, written out ("£30m" -> "£30 million"), and English counts in
    digits."""
    text = _MONEY_SCALE.sub(lambda m: f"{m.group(1)} {'million' if m.group(2) == 'm' else 'billion'}", text)
    return _COUNT_WORD.sub(lambda m: _COUNT_WORDS[m.group(1)], text)


def answer_found(answer: str, accepted: list[str]) -> bool:
    """An accepted string occurs in the answer, strictly: citation markers are removed first ("8 صواريخ [4]"
    does not hold "4"), numbers match whole ("28 حزيران" does not hold "2"), Latin words match whole words;
    then diacritics, letter forms, Arabic-Indic digits, case and spacing are folded, and words that only open
    a gold span (`_GOLD_OPENERS`) are not required."""
    norm = _figures_as_written(" ".join(normalize_for_search(strip_citations(answer)).split()))
    for wanted in accepted:
        # A gold span's own closing punctuation is not part of the answer (XQuAD's "كتابته الأخيرة.").
        wanted = _figures_as_written(" ".join(normalize_for_search(wanted).split()).strip(" .,،;؛:!?؟"))
        while (core := _GOLD_OPENERS.sub("", wanted, count=1)) != wanted and core:
            wanted = core
        if not wanted:
            continue
        pattern = re.escape(wanted)
        if wanted[0].isdigit():
            pattern = r"(?<![\d.,])" + pattern
        elif wanted[0].isascii() and wanted[0].isalpha():
            pattern = r"(?<![a-z])" + pattern
        if wanted[-1].isdigit():
            pattern += r"(?!\d|[.,]\d)"
        elif wanted[-1].isascii() and wanted[-1].isalpha():
            pattern += r"(?![a-z])"
        if re.search(pattern, norm):
            return True
    return False


def outcome(answerable: bool, refused: bool, quoted: bool, correct: bool, error: bool = False) -> str:
    """right | wrong (stated, and not right: "confidently wrong") | quoted (the article's words shown, not
    asserted) | refused | error. Any answer to an unanswerable question is wrong, a quote included."""
    if error:
        return "error"
    if refused:
        return "refused"
    if not answerable:
        return "wrong"
    if quoted:
        return "quoted"
    return "right" if correct else "wrong"


# ---- scoring ----------------------------------------------------------------------------------------------
def score_question(q: dict, answer=None, retrieved_articles: list[str] | None = None,
                   error: str | None = None) -> dict:
    """One result row. `answer` is an `Answer` (None when the chain failed); `retrieved_articles` ranked."""
    sources = list(q.get("sources", []))
    retrieved = list(dict.fromkeys(retrieved_articles or []))  # article ranks, first occurrence
    rank = next((i for i, a in enumerate(retrieved, start=1) if a in sources), None)
    refused = True if answer is None else answer.refused
    text = "" if answer is None else answer.answer
    cited = [c.article_id for c in answer.citations] if answer is not None else []
    accepted = list(q.get("expect_any", [])) + list(q.get("variants", []))
    quoted = bool(answer is not None and answer.quoted)
    found = bool(q["answerable"] and not refused and answer_found(text, accepted))
    correct = found and not quoted  # a quote is evidence shown, not an answer given
    cites_source = bool(not refused and (not sources or any(a in sources for a in cited)))
    citations_valid = answer is None or answer.dropped_citations == 0
    if error:
        passed = False  # a question the chain could not answer is never a pass, not even a "refusal"
    elif q["answerable"]:
        passed = correct and cites_source and citations_valid
    else:
        passed = refused
    timings = {} if answer is None else answer.timings
    return {
        "id": q["id"], "lang": q.get("lang") or (answer.lang if answer else ""), "question": q["question"],
        "answerable": q["answerable"], "passed": passed, "answer": text, "refused": refused, "quoted": quoted,
        "outcome": outcome(q["answerable"], refused, quoted, correct, bool(error)),
        "answer_correct": correct if q["answerable"] else None,
        "quote_holds_answer": (found and quoted) if q["answerable"] else None,
        "retrieval_hit": (rank is not None) if sources else None,
        "reciprocal_rank": (1.0 / rank if rank else 0.0) if sources else None,
        "cites_expected_source": cites_source if q["answerable"] else None,
        "citations_valid": citations_valid, "dropped_citations": 0 if answer is None else answer.dropped_citations,
        "refusal_correct": refused != q["answerable"],
        "cited_articles": cited, "retrieved_articles": retrieved,
        "flags": [f.kind for f in answer.flags] if answer is not None else [],
        "evidence_s": timings.get("evidence_s"), "first_token_s": timings.get("first_token_s"),
        "total_s": timings.get("total_s"), "confidence": None if answer is None else answer.confidence,
        "prompt_tokens": timings.get("prompt_tokens"), "cached_tokens": timings.get("cached_tokens"),
        "error": error,
    }


def _mean(values) -> float | None:
    values = [float(v) for v in values if v is not None]
    return round(sum(values) / len(values), 3) if values else None


def _percentile(values, q) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.percentile(values, q)), 2) if values else None


def aggregate(rows: list[dict]) -> dict:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in rows if not r["refused"]]
    first, total = [r["first_token_s"] for r in rows], [r["total_s"] for r in rows]
    outcomes = [r.get("outcome") or _legacy_outcome(r) for r in rows]
    return {
        "n": len(rows), "answerable": len(answerable), "unanswerable": len(unanswerable),
        "pass_rate": _mean(r["passed"] for r in rows),
        # right: share of answerable questions; confidently wrong: share of all questions (answered, not right)
        "right": _mean(o == "right" for o, r in zip(outcomes, rows, strict=True) if r["answerable"]),
        "confidently_wrong": _mean(o == "wrong" for o in outcomes),
        "quoted": _mean(o == "quoted" for o, r in zip(outcomes, rows, strict=True) if r["answerable"]),
        "retrieval_hit_at_k": _mean(r["retrieval_hit"] for r in answerable),
        "retrieval_mrr": _mean(r["reciprocal_rank"] for r in answerable),
        "citation_validity": _mean(r["citations_valid"] for r in answered),
        "cites_expected_source": _mean(r["cites_expected_source"] for r in answerable),
        "unanswerable_refused": _mean(r["refused"] for r in unanswerable),
        "answerable_refused": _mean(r["refused"] for r in answerable),
        "grounding_flags": sum(len(r["flags"]) for r in rows),
        "grounding_flags_per_answer": _mean(len(r["flags"]) for r in answered) if answered else 0.0,
        "citations_pointing_nowhere": sum(r["dropped_citations"] for r in rows),
        "errors": sum(1 for r in rows if r["error"]),
        "evidence_p50_s": _percentile([r.get("evidence_s") for r in rows], 50),
        "prompt_tokens_p50": _percentile([r.get("prompt_tokens") for r in rows], 50),
        "cached_tokens_p50": _percentile([r.get("cached_tokens") for r in rows], 50),
        "first_token_p50_s": _percentile(first, 50), "first_token_p95_s": _percentile(first, 95),
        "total_p50_s": _percentile(total, 50), "total_p95_s": _percentile(total, 95),
    }


def _legacy_outcome(row: dict) -> str:
    """Rows of baselines stored before outcomes were recorded."""
    return outcome(row["answerable"], row["refused"], False, bool(row.get("answer_correct")), bool(row["error"]))


def summarise(rows: list[dict]) -> dict:
    langs = sorted({r["lang"] for r in rows if r["lang"]})
    return {"summary": aggregate(rows), "by_lang": {lang: aggregate([r for r in rows if r["lang"] == lang])
                                                    for lang in langs}}


# ---- running ----------------------------------------------------------------------------------------------
def run_questions(chain, questions: list[dict], k: int = 5,
                  progress: Callable[[int, int, dict], None] | None = None, judge=None) -> list[dict]:
    """Every question through `chain.ask`, plus a ranked retrieval of k passages for hit@k and MRR.
    One failing question is recorded with its error; the rest go on."""
    rows = []
    for i, q in enumerate(questions, start=1):
        try:
            retrieved = [h.article_id for h in chain.retriever.retrieve(q["question"], k=k)]
        except RagError:
            retrieved = []
        try:
            answer = chain.ask(q["question"])
            row = score_question(q, answer, retrieved)
        except LLMUnavailable:
            raise  # every question would fail the same way: one clear error, not a run of failures
        except RagError as exc:
            answer, row = None, score_question(q, None, retrieved, error=str(exc))
        if judge is not None and answer is not None and not answer.refused:
            row["judge"] = judge.grade(q, answer)
        rows.append(row)
        if progress:
            progress(i, len(questions), row)
    return rows


class Judge:
    """Optional LLM judge (never the default): faithfulness to the cited passages and correctness."""

    def __init__(self, llm):
        from rag.prompts import load_prompt

        self.llm = llm
        self.prompt = load_prompt("judge", "en")

    def grade(self, q: dict, answer) -> dict:
        passages = "\n".join(f"[{c.n}] {c.text}" for c in answer.citations) or "(none cited)"
        prompt = self.prompt.render(question=q["question"], passages=passages, answer=answer.answer,
                                    expected=" | ".join(q.get("expect_any", [])) or "(not given)")
        try:
            reply = "".join(self.llm.stream([{"role": "user", "content": prompt}], max_tokens=60))
        except RagError as exc:
            return {"error": str(exc)}
        start, end = reply.find("{"), reply.rfind("}")
        try:
            verdict = json.loads(reply[start:end + 1])
            return {"faithful": bool(verdict["faithful"]), "correct": bool(verdict["correct"])}
        except (ValueError, KeyError, TypeError):
            return {"error": f"judge reply was not the JSON asked for: {reply[:120]!r}"}


def add_judge_metrics(report: dict, rows: list[dict]) -> None:
    graded = [r["judge"] for r in rows if "error" not in r.get("judge", {"error": 1})]
    report["summary"]["judge_faithfulness"] = _mean(g["faithful"] for g in graded)
    report["summary"]["judge_correctness"] = _mean(g["correct"] for g in graded)
    report["summary"]["judge_graded"] = len(graded)


# ---- baseline comparison ----------------------------------------------------------------------------------
def set_identity(questions: list[dict]) -> str:
    """A question set's identity: a hash of its ids and questions (a baseline records the one it was run on)."""
    import hashlib

    text = "\n".join(f"{q['id']}\t{q['question']}" for q in sorted(questions, key=lambda q: q["id"]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def baseline_fits(baseline: dict, question_set: Path) -> bool:
    """Whether a stored baseline was made for this question set (a set of one's own is not gated on it)."""
    stored = baseline.get("meta", {}).get("set_id")
    return stored == set_identity(load_question_set(question_set)) if stored else \
        Path(baseline.get("meta", {}).get("set", "")) == Path(question_set)


def compare(current: dict, baseline: dict, tolerance: float, latency_tolerance: float,
            gate_latency: bool = True) -> dict:
    """Questions that flipped and aggregate metrics that dropped. Only questions in both runs are compared,
    and the baseline's aggregates are recomputed over them, so a `--limit`ed run is judged fairly. Latency is
    reported always and gated only with `gate_latency` (shared CI machines are noisy)."""
    base_rows = {r["id"]: r for r in baseline.get("results", [])}
    cur_rows = {r["id"]: r for r in current["results"]}
    common = [i for i in cur_rows if i in base_rows]
    if not common:
        raise BadInput("the baseline shares no question ids with this run: is it for another question set? "
                       "Accept a new one with `rag eval --accept`")
    before = aggregate([base_rows[i] for i in common])
    after = aggregate([cur_rows[i] for i in common])
    regressions, metrics = [], {}
    for name, higher_better in QUALITY_METRICS.items():
        b, a = before.get(name), after.get(name)
        metrics[name] = {"baseline": b, "current": a}
        if a is None or b is None:
            continue
        drop = (b - a) if higher_better else (a - b)
        if drop > tolerance + 1e-9:
            regressions.append(f"{name} {b} -> {a} (tolerance {tolerance})")
    for name in LATENCY_METRICS:
        b, a = before.get(name), after.get(name)
        metrics[name] = {"baseline": b, "current": a}
        if gate_latency and a is not None and b and a > b * (1 + latency_tolerance):
            regressions.append(f"{name} {b}s -> {a}s (allowed +{latency_tolerance:.0%})")
    to_fail = [i for i in common if base_rows[i]["passed"] and not cur_rows[i]["passed"]]
    to_pass = [i for i in common if not base_rows[i]["passed"] and cur_rows[i]["passed"]]
    return {"compared": len(common), "metrics": metrics, "regressions": regressions,
            "flipped_to_fail": to_fail, "flipped_to_pass": to_pass,
            "new_questions": [i for i in cur_rows if i not in base_rows],
            "failed": bool(regressions or to_fail)}


def load_baseline(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read baseline {path}: {exc}; create one with `rag eval --accept`") from exc
    except ValueError as exc:
        raise BadInput(f"baseline {path} is not JSON ({exc}); the file `rag eval --json` prints is one") from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise BadInput(f"baseline {path} has no `results` list; the file `rag eval --json` prints is one")
    return data


# ---- output -----------------------------------------------------------------------------------------------
_LABELS = [("pass_rate", "passed"), ("right", "right (answerable)"),
           ("confidently_wrong", "confidently wrong (all)"), ("quoted", "quoted, not asserted (answerable)"),
           ("retrieval_hit_at_k", "retrieval hit@k"), ("retrieval_mrr", "retrieval MRR"),
           ("citation_validity", "citations all valid"), ("cites_expected_source", "cites an expected source"),
           ("unanswerable_refused", "unanswerable refused"), ("answerable_refused", "answerable refused"),
           ("grounding_flags", "grounding flags"), ("citations_pointing_nowhere", "citations pointing nowhere"),
           ("errors", "errors"), ("evidence_p50_s", "evidence p50 s"), ("first_token_p50_s", "first token p50 s"), ("first_token_p95_s", "first token p95 s"),
           ("prompt_tokens_p50", "prompt tokens p50 (sent)"), ("cached_tokens_p50", "of them cached p50"),
           ("total_p50_s", "total p50 s"), ("total_p95_s", "total p95 s"),
           ("judge_faithfulness", "judge: faithful"), ("judge_correctness", "judge: correct")]


def _columns(run: dict) -> dict[str, dict]:
    cols = {"all": run["summary"], **{f"{lang}": s for lang, s in run["by_lang"].items()}}
    if run.get("xquad"):
        cols["XQuAD"] = run["xquad"]["summary"]
        cols.update({f"XQuAD {lang}": s for lang, s in run["xquad"]["by_lang"].items()})
    return cols


def _fmt(v) -> str:
    return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def format_summary(run: dict, comparison: dict | None = None) -> str:
    cols = _columns(run)
    lines = [f"{run['meta']['set']}: {run['summary']['n']} questions", "",
             "| metric | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for key, label in _LABELS:
        if any(key in c for c in cols.values()):
            lines.append(f"| {label} | " + " | ".join(_fmt(c.get(key)) for c in cols.values()) + " |")
    lines.append("")
    if comparison:
        lines.append(f"against the baseline ({comparison['compared']} questions in common):")
        for r in comparison["regressions"]:
            lines.append(f"  REGRESSION {r}")
        for i in comparison["flipped_to_fail"]:
            lines.append(f"  pass -> FAIL  {i}")
        for i in comparison["flipped_to_pass"]:
            lines.append(f"  fail -> pass  {i}")
        lines.append("  verdict: " + ("WORSE than the baseline" if comparison["failed"] else "no regression"))
    return "\n".join(lines)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _plots(rows: list[dict]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")  # no screen on these machines
    import matplotlib.pyplot as plt

    out = {}
    fig, ax = plt.subplots(figsize=(7, 3))
    first = [r["first_token_s"] for r in rows if r["first_token_s"] is not None]
    total = [r["total_s"] for r in rows if r["total_s"] is not None]
    if first or total:
        ax.hist([first, total], bins=15, label=["first token", "total"])
        ax.set_xlabel("seconds")
        ax.set_ylabel("questions")
        ax.legend()
    ax.set_title("Latency")
    out["latency"] = _png(fig)
    plt.close(fig)

    checks = [("retrieval_hit", "retrieved"), ("answer_correct", "answer"), ("cites_expected_source", "source cited"),
              ("citations_valid", "citations valid"), ("refusal_correct", "refusal right"), ("passed", "PASSED")]
    grid = np.array([[np.nan if r[key] is None else float(r[key]) for key, _ in checks] for r in rows])
    fig, ax = plt.subplots(figsize=(6, 0.22 * len(rows) + 1))
    cmap = matplotlib.colors.ListedColormap(["#d9534f", "#5cb85c"])
    cmap = cmap.with_extremes(bad="#dddddd")
    ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(checks)), [label for _, label in checks], rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [r["id"] for r in rows], fontsize=7)
    ax.set_title("Per question (green pass, red fail, grey n/a)")
    out["grid"] = _png(fig)
    plt.close(fig)
    return out


def render_html(run: dict, comparison: dict | None) -> str:
    esc = html.escape
    cols = _columns(run)
    table = ["<table><tr><th>metric</th>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr>"]
    for key, label in _LABELS:
        if any(key in c for c in cols.values()):
            table.append(f"<tr><td>{esc(label)}</td>" + "".join(f"<td>{_fmt(c.get(key))}</td>" for c in cols.values())
                         + "</tr>")
    table.append("</table>")
    verdict = ""
    if comparison:
        items = ([f"<li class=bad>regression: {esc(r)}</li>" for r in comparison["regressions"]]
                 + [f"<li class=bad>pass → fail: {esc(i)}</li>" for i in comparison["flipped_to_fail"]]
                 + [f"<li class=good>fail → pass: {esc(i)}</li>" for i in comparison["flipped_to_pass"]])
        word = "worse than the baseline" if comparison["failed"] else "no regression against the baseline"
        verdict = (f"<h2>Baseline</h2><p><b>{word}</b> ({comparison['compared']} questions in common)</p>"
                   f"<ul>{''.join(items)}</ul>")
    plots = _plots(run["results"])
    per_question = ["<table><tr><th>id</th><th>pass</th><th>question</th><th>answer</th><th>cited</th>"
                    "<th>flags</th><th>s</th></tr>"]
    for r in run["results"]:
        per_question.append(
            f"<tr class={'good' if r['passed'] else 'bad'}><td>{esc(r['id'])}</td><td>{'✓' if r['passed'] else '✗'}"
            f"</td><td dir=auto>{esc(r['question'])}</td><td dir=auto>{esc(r['error'] or r['answer'])}</td>"
            f"<td>{esc(', '.join(r['cited_articles']))}</td><td>{esc(', '.join(r['flags']))}</td>"
            f"<td>{_fmt(r['total_s'])}</td></tr>")
    per_question.append("</table>")
    meta = run["meta"]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>rag eval: {esc(meta['set'])}</title><style>
body{{font-family:"Noto Naskh Arabic","Noto Sans Arabic","Segoe UI",Tahoma,sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse;margin:1em 0}} td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}
td[dir=auto]{{unicode-bidi:plaintext}} .bad{{color:#a94442}} tr.bad td{{background:#fdf2f2}} .good{{color:#3c763d}}
</style></head><body><h1>Evaluation: {esc(meta['set'])}</h1>
<p>{esc(meta['started'])} · {run['summary']['n']} questions · LLM {esc(meta['llm'])} · embedder {esc(meta['embedder'])}
 · k {meta['k']} · {esc(meta['machine'])}</p>
<h2>Aggregate</h2>{''.join(table)}{verdict}
<h2>Latency</h2><img alt="latency histogram" src="data:image/png;base64,{plots['latency']}">
<h2>Per question</h2><img alt="pass/fail grid" src="data:image/png;base64,{plots['grid']}">
{''.join(per_question)}</body></html>"""


def write_outputs(run: dict, comparison: dict | None, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = run["results"] + (run.get("xquad") or {}).get("results", [])
    write_text_atomic(out_dir / "results.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_text_atomic(out_dir / "report.html", render_html(run, comparison))
    write_text_atomic(out_dir / "run.json", json.dumps(run, ensure_ascii=False, indent=1))


# ---- the command ------------------------------------------------------------------------------------------
def xquad_questions(data_dir: Path, n: int, langs: tuple[str, ...] = ("ar", "en"),
                    nth: int = 1) -> tuple[list[dict], list[dict]]:
    """n questions split over `langs`, the `nth` question of each of the first XQuAD paragraphs (fewer where a
    paragraph has fewer), with the paragraphs as articles; the gold span is the accepted answer and its paragraph
    the expected source. Another `nth` asks other questions of the same paragraphs: a held-out slice for checks
    made on the first."""
    from rag.datasets import load_xquad

    if nth < 1:
        raise BadInput(f"--xquad-nth counts from 1, got {nth}")
    per_lang = max(n // len(langs), 1)
    articles, questions = load_xquad(data_dir, limit=per_lang)
    prefix = "xquad" if nth == 1 else f"xquad{nth}"  # the first slice keeps the ids baselines were made with
    picked = []
    for lang in langs:
        asked: dict[str, int] = {}
        for question, article_id, answer in questions[lang]:
            asked[article_id] = asked.get(article_id, 0) + 1
            if asked[article_id] == nth:
                picked.append({"id": f"{prefix}-{lang}-{article_id}", "question": question, "lang": lang,
                               "expect_any": [answer], "sources": [article_id], "answerable": True})
    return articles, picked


@contextmanager
def xquad_chain(settings, embedder, llm, articles: list[dict]):
    """An answer chain over XQuAD paragraphs indexed as articles in a temporary index (removed afterwards)."""
    import tempfile

    from rag.answer import AnswerChain
    from rag.datasets import write_articles_jsonl
    from rag.ingest import Ingestor
    from rag.retrieve import HybridRetriever
    from rag.store import LocalStore

    with tempfile.TemporaryDirectory(prefix="rag-xquad-") as tmp:
        src = write_articles_jsonl(articles, Path(tmp) / "xquad.jsonl")
        store = LocalStore(Path(tmp) / "index", embedder.name)
        Ingestor.from_settings(store, embedder, settings).ingest([src])
        yield AnswerChain.from_settings(HybridRetriever.from_settings(store, embedder, settings), llm, settings)


def _meta(settings, question_set: str, k: int, chain, questions: list[dict]) -> dict:
    return {"set": question_set, "set_id": set_identity(questions), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "k": k, "answer_k": settings.answer_k, "answer_mode": settings.answer_mode, "llm": settings.llm_base_url or "embedded", "embedder":
            chain.retriever.embedder.name, "machine": f"{platform.machine()}, {settings.threads} threads"}


def run_eval(settings, question_set: Path, limit: int | None = None, xquad: Path | None = None,
             xquad_lang: str | None = None, judge: bool = False, chain=None, progress=True,
             xquad_nth: int = 1) -> dict:
    """The whole run as one JSON-able dict: {"meta", "summary", "by_lang", "results"[, "xquad"]}."""
    from rag.answer import AnswerChain
    from rag.embed import make_embedder
    from rag.llm import make_chat_model
    from rag.retrieve import HybridRetriever
    from rag.store import open_store

    questions = load_question_set(question_set)[:limit]
    if chain is None:
        embedder = make_embedder(settings)
        store = open_store(settings, embedder.name)
        chain = AnswerChain.from_settings(HybridRetriever.from_settings(store, embedder, settings),
                                          make_chat_model(settings), settings)
    grader = None
    if judge:
        from rag.llm import OpenAIChat

        judge_llm = (OpenAIChat(settings.judge_base_url, settings.judge_model, settings.judge_api_key,
                                settings.llm_timeout, settings.llm_max_retries, 60, 0.0)
                     if settings.judge_base_url else chain.llm)
        grader = Judge(judge_llm)

    def show(i, n, row):
        if progress:
            mark = "pass" if row["passed"] else "FAIL"
            print(f"  [{i}/{n}] {mark}  {row['id']}" + (f"  ({row['error']})" if row["error"] else ""),
                  file=sys.stderr)

    k = settings.top_k
    rows = run_questions(chain, questions, k, show, grader)
    run = {"meta": _meta(settings, str(question_set), k, chain, questions), **summarise(rows), "results": rows}
    if grader:
        add_judge_metrics(run, rows)
    if xquad is not None:
        data_dir = Path(xquad).parent if (Path(xquad) / "xquad.ar.json").is_file() else Path(xquad)
        langs = (xquad_lang,) if xquad_lang else ("ar", "en")
        articles, x_questions = xquad_questions(data_dir, limit or 20, langs, xquad_nth)
        with xquad_chain(settings, chain.retriever.embedder, chain.llm, articles) as x_chain:
            x_rows = run_questions(x_chain, x_questions, k, show, grader)
        run["xquad"] = {**summarise(x_rows), "results": x_rows}
    return run
