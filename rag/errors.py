"""Errors a user can act on. Each message says what went wrong and what to do next."""

from __future__ import annotations


class RagError(Exception):
    """Base class: the CLI and the app print `str(error)` and exit non-zero, never a traceback."""

    exit_code = 1


class SetupError(RagError):
    pass


class ConfigError(RagError):
    pass


class IndexNotFound(RagError):
    def __init__(self, index_dir):
        super().__init__(f"index not found at {index_dir}/: run `rag ingest seeds/` (or set RAG_INDEX_DIR)")


class IndexMismatch(RagError):
    def __init__(self, index_dir, built_with: str, current: str):
        back = {"st": "RAG_EMBED_RUNTIME=torch", "onnx-q8": "RAG_EMBED_RUNTIME=onnx"}.get(
            built_with.split(":", 1)[0], "RAG_EMBED_BACKEND / RAG_EMBED_MODEL to what built it")
        super().__init__(
            f"the index at {index_dir}/ was built with embedder {built_with!r} but the current embedder is "
            f"{current!r}: rebuild it with `rag ingest --rebuild seeds/` (and your other sources), or set {back}"
        )


class IndexCorrupt(RagError):
    def __init__(self, index_dir, detail: str):
        super().__init__(f"the index at {index_dir}/ is unreadable ({detail}): see `rag index check`, then "
                         "`rag index repair` or rebuild it with `rag ingest --rebuild seeds/`")
        self.detail = detail


class IndexWriteFailed(RagError):
    def __init__(self, index_dir, cause: OSError):
        super().__init__(f"could not write the index at {index_dir}/ ({cause.strerror or cause}): nothing was lost, "
                         "the previous generation is still the one served; free disk space or fix the folder's "
                         "permissions, then run the ingest again (committed articles are skipped)")


class IndexBusy(RagError):
    def __init__(self, index_dir):
        super().__init__(f"another writer (an ingest or a removal) is changing {index_dir}/: wait for it to finish, "
                         "or set RAG_INGEST_WAIT_FOR_LOCK=true to queue behind it")


class EmbedderUnavailable(RagError):
    pass


class BadInput(RagError):
    exit_code = 2


class QuestionTooLong(BadInput):
    def __init__(self, length: int, limit: int):
        super().__init__(f"the question is {length} characters long; the limit is {limit} (RAG_MAX_QUESTION_CHARS). "
                         "Ask a shorter question.")


class NothingIngested(RagError):
    pass


class LLMUnavailable(RagError):
    pass


class NotFound(RagError):
    exit_code = 1


class Conflict(RagError):
    """The request clashes with work in progress (a briefing run already running)."""


class Busy(RagError):
    """Every generation slot stayed taken for longer than the caller may wait, or too many already wait."""

    def __init__(self, waited_s: float, retry_after_s: int):
        super().__init__(f"the service is busy answering other questions (waited {waited_s:.0f}s): try again in "
                         f"{retry_after_s}s, or raise RAG_LLM_QUEUE_WAIT_S / RAG_LLM_QUEUE_MAX / "
                         "RAG_UI_LLM_CONCURRENCY")
        self.retry_after_s = retry_after_s
