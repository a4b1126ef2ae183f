"""Bulk ingestion on Ray (`rag ingest --ray [--address ADDR]`, extra `rag[scale]`): the same ingest as
`Ingestor`, with reading and cleaning as Ray Data tasks over the files and chunking and embedding in
`map_batches` on an actor class that loads the embedder once per worker, so the work spreads over every core of a
Ray cluster. This process stays the only writer: it stores what the workers return and commits every
`commit_every` articles, so an ingest that dies keeps what it committed and a rerun skips it (unchanged articles
are filtered out before any embedding). The plain path needs no Ray and stays the default.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from rag.ingest import ArticleReader, Ingestor, embed_once, expand_paths
from rag.records import Article, Chunk, IngestReport, SkippedInput


def read_file(row: dict, max_chars: int, known: dict[str, str]) -> list[dict]:
    """One file's articles as rows (a Ray Data task); unchanged ones, and what was skipped, as markers."""
    reader = ArticleReader(max_chars)
    rows = []
    for article in reader.read([row["path"]]):
        kind = "unchanged" if known.get(article.id) == article.content_hash else "article"
        rows.append({"kind": kind, "payload": article.model_dump_json() if kind == "article" else article.id})
    rows += [{"kind": "skipped", "payload": s.model_dump_json()} for s in reader.skipped]
    rows += [{"kind": "warning", "payload": s.model_dump_json()} for s in reader.warnings]
    return rows


class ChunkAndEmbed:
    """A Ray Data actor: loads the embedder once, then chunks and embeds batches of articles."""

    def __init__(self, settings_json: str):
        from rag.embed import make_embedder
        from rag.settings import Settings

        settings = Settings.model_validate_json(settings_json)
        self.embedder = make_embedder(settings)
        self.ingestor = Ingestor.from_settings(None, self.embedder, settings)

    def __call__(self, batch: dict) -> dict:
        kinds, payloads = list(batch["kind"]), list(batch["payload"])
        plans = {i: self.ingestor.plan(Article.model_validate_json(p))
                 for i, (k, p) in enumerate(zip(kinds, payloads, strict=True)) if k == "article"}
        texts = [t for _, _, its_texts in plans.values() for t in its_texts]
        vectors = embed_once(self.embedder, texts)
        out_payloads, out_vectors, at = [], [], 0
        for i, payload in enumerate(payloads):
            if i not in plans:
                out_payloads.append(payload)
                out_vectors.append(b"")
                continue
            article, parts, its_texts = plans[i]
            out_payloads.append(json.dumps({
                "article": json.loads(payload),
                "parts": [[chunk.model_dump(), [[s.start, s.end] for s in sentences]] for chunk, sentences in parts]},
                ensure_ascii=False))
            out_vectors.append(np.ascontiguousarray(vectors[at:at + len(its_texts)], dtype=np.float32).tobytes())
            at += len(its_texts)
        return {"kind": np.asarray(kinds, dtype=object), "payload": np.asarray(out_payloads, dtype=object),
                "vectors": np.asarray(out_vectors, dtype=object)}


class _Span:
    def __init__(self, start: int, end: int):
        self.start, self.end = start, end


def ray_ingest(ingestor: Ingestor, settings, paths: Iterable[str | Path], address: str | None = None,
               batch_size: int = 8) -> IngestReport:
    """Run the ingest on Ray (a local one-node cluster unless `address` names one) and store what it returns."""
    import ray

    started = time.perf_counter()
    report = IngestReport(index_dir=str(ingestor.store.index_dir))
    skipped: list[SkippedInput] = []
    files = [{"path": str(p)} for p in expand_paths(paths, skipped)]
    known = {a.id: a.content_hash for a in ingestor.store.articles()}
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=None if address else settings.threads, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the same id twice: the later file wins, as without Ray
    context.enable_progress_bars = False
    workers = 1 if address is None else None
    per_worker = settings.model_copy(update={"threads": max(1, settings.threads // (workers or 1))})
    status: dict[str, str] = {}
    seen: dict[str, int] = {}
    dataset = (ray.data.from_items(files or [{"path": ""}])
               .flat_map(read_file, fn_kwargs={"max_chars": ingestor.max_chars, "known": known})
               .map_batches(ChunkAndEmbed, fn_constructor_kwargs={"settings_json": per_worker.model_dump_json()},
                            batch_size=batch_size, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=workers) if workers else
                            ray.data.ActorPoolStrategy(min_size=1, max_size=64)))
    since_commit = 0
    for row in (dataset.iter_rows() if files else []):
        kind, payload = row["kind"], row["payload"]
        if kind == "skipped":
            skipped.append(SkippedInput.model_validate_json(payload))
        elif kind == "warning":
            report.warnings.append(SkippedInput.model_validate_json(payload))
        elif kind == "unchanged":
            status.setdefault(payload, "unchanged")
        else:
            data = json.loads(payload)
            article = Article.model_validate(data["article"])
            if article.id in seen:
                report.warnings.append(SkippedInput(origin=article.origin, reason=(
                    f"duplicate article id {article.id!r}: this later one is kept")))
            seen[article.id] = 1
            parts = [(Chunk.model_validate(chunk), [_Span(*span) for span in spans]) for chunk, spans in data["parts"]]
            vectors = np.frombuffer(row["vectors"], dtype=np.float32)
            count = sum(1 + len(spans) for _, spans in parts)
            ingestor.put(article, parts, iter(vectors.reshape(count, -1) if count else []), status, report)
            since_commit += 1
            if since_commit >= ingestor.commit_every:
                ingestor.store.save()
                report.commits += 1
                since_commit = 0
    if since_commit:
        ingestor.store.save()
        report.commits += 1
    for article_id, kind in status.items():
        getattr(report, kind).append(article_id)
    report.skipped = skipped
    report.seconds = round(time.perf_counter() - started, 3)
    return report
