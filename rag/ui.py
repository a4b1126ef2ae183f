"""Gradio front end. For now: passage search and the article library; chat and briefings build on this."""

from __future__ import annotations

import html
import os

from rag.errors import RagError
from rag.settings import Settings

CSS = """
.passage { border: 1px solid #ddd; border-radius: 8px; padding: 10px 14px; margin: 8px 0; unicode-bidi: plaintext; }
.passage .meta { color: #666; font-size: 0.85em; margin-bottom: 4px; }
body, .passage { font-family: "Noto Naskh Arabic", "Noto Sans Arabic", "Amiri", "Segoe UI", Tahoma, sans-serif; }
"""


class SearchService:
    """Loads the embedder and index once, on first use; reloads the index when it changes on disk."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self._retriever = None
        self._generation = None

    def retriever(self):
        from rag.embed import make_embedder
        from rag.retrieve import HybridRetriever
        from rag.store import FaissStore

        current = (self.settings.index_dir / "CURRENT")
        generation = current.read_text().strip() if current.is_file() else None
        if self._retriever is None or generation != self._generation:
            embedder = self._retriever.embedder if self._retriever else make_embedder(self.settings)
            store = FaissStore.open(self.settings.index_dir, embedder.name)
            self._retriever = HybridRetriever.from_settings(store, embedder, self.settings)
            self._generation = generation
        return self._retriever

    def search_html(self, question: str, k: int = 5) -> str:
        try:
            hits = self.retriever().retrieve(question, k=int(k))
        except RagError as exc:
            return f'<div class="passage" dir="auto">⚠️ {html.escape(str(exc))}</div>'
        if not hits:
            return '<div class="passage" dir="auto">No passages found.</div>'
        blocks = []
        for h in hits:
            meta = " · ".join(html.escape(x) for x in (h.title, h.source, h.date) if x)
            blocks.append(f'<div class="passage" dir="auto"><div class="meta" dir="auto">[{h.rank}] {meta}</div>'
                          f'<div dir="auto">{html.escape(h.text)}</div></div>')
        return "\n".join(blocks)

    def library_rows(self) -> list[list]:
        try:
            store = self.retriever().store
        except RagError:
            return []
        return [[a.id, a.title, a.source, a.date, len(store.chunks_of(a.id))]
                for a in sorted(store.articles(), key=lambda a: (a.date or "", a.id))]


def build_app(settings: Settings | None = None):
    import gradio as gr

    service = SearchService(settings)
    with gr.Blocks(title="Arabic news QA") as app:
        gr.Markdown("## Arabic/English news search")
        with gr.Tab("Search"):
            question = gr.Textbox(label="Question (Arabic or English)", rtl=False, elem_id="question")
            k = gr.Slider(1, 10, value=5, step=1, label="Passages")
            results = gr.HTML()
            gr.Examples(["كم عدد القتلى في القصف الأمريكي؟", "How many people were killed in the US strike?"],
                        inputs=question)
            question.submit(service.search_html, [question, k], results, api_name="retrieve")
        with gr.Tab("Library"):
            table = gr.Dataframe(headers=["id", "title", "source", "date", "chunks"], interactive=False)
            gr.Button("Refresh").click(service.library_rows, None, table, api_name="library")
            app.load(service.library_rows, None, table)
    return app


def serve(host: str = "127.0.0.1", port: int = 7860, settings: Settings | None = None) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network here, and no phoning home
    import gradio as gr

    build_app(settings).queue(default_concurrency_limit=1).launch(server_name=host, server_port=port,
                                                                 css=CSS, theme=gr.themes.Soft())
