"""Gradio front end: chat with cited, streamed answers; briefings; the article library; named API endpoints.

Layout and rendering only: everything it shows comes from `rag.service.Service` (tests pass one built with
fakes). `rag.api` serves this app at `/` beside the HTTP API.
"""

from __future__ import annotations

import html
import json
import re
import tempfile
from pathlib import Path

from rag.arabic import isolate_ltr_runs
from rag.errors import BadInput, RagError
from rag.service import UPLOAD_TYPES, Service
from rag.settings import Settings

EXAMPLES = ["كم ساعة أمهلت عصائب أهل الحق الحكومة؟", "ما هو موقف الكاظمي من قصف المعسكرات العراقية؟",
            "Who is the Pentagon spokesman quoted about US forces in Iraq?",
            "How many people were killed in the US strike on the Iraqi border?"]

CSS = """
.passage, .source { border: 1px solid #ddd; border-radius: 8px; padding: 8px 12px; margin: 6px 0; }
.passage .meta, .source summary { color: #555; font-size: 0.88em; cursor: pointer; }
[dir=auto] { unicode-bidi: plaintext; text-align: start; }
.source[open] { border-color: #e0a800; }
.source.flash { box-shadow: 0 0 0 3px #ffd54f; }
.source mark { background: #fff0a0; padding: 0 2px; }
.evidence { color: #555; border-inline-start: 3px solid #ddd; padding-inline-start: 8px; margin: 4px 0; }
.flags { color: #8a6d3b; font-size: 0.88em; margin-top: 6px; }
a.cite { text-decoration: none; font-weight: 600; }
body, .passage, .source, .message { font-family: "Noto Naskh Arabic", "Noto Sans Arabic", "Amiri", "Segoe UI",
  Tahoma, "Noto Sans", sans-serif; }
"""

# A citation link opens its passage in the sources panel and scrolls to it (the chat's HTML is sanitised, so
# the behaviour lives here, on the page, not in the message).
HEAD = """<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a[href^='#src-']");
  if (!link) return;
  const target = document.getElementById(link.getAttribute("href").slice(1));
  if (!target) return;
  event.preventDefault();
  target.open = true;
  target.scrollIntoView({behavior: "smooth", block: "center"});
  target.classList.add("flash");
  setTimeout(() => target.classList.remove("flash"), 1500);
}, true);
</script>"""


def _ask_record(service: Service, question: str) -> dict:
    """The /ask endpoint: the same `Answer` record the CLI prints and the HTTP API returns."""
    try:
        return service.ask(question).model_dump()
    except RagError as exc:
        return {"error": str(exc)}


def _brief_markdown(service: Service, date: str = "", until: str = "", lang: str = "ar") -> str:
    """The /brief endpoint: a day (or a range, or the latest day when empty) in Markdown."""
    from rag.brief import render_markdown

    try:
        return render_markdown(_briefing(service, date, until, lang if lang in ("ar", "en") else "ar"))
    except RagError as exc:
        return f"⚠️ {exc}"


def _briefing(service: Service, date: str = "", until: str = "", lang: str = "ar", all_articles: bool = False):
    """The form's fields: a date alone is that day; a date and an until are a range; neither is the latest day."""
    date, until = (date or "").strip(), (until or "").strip()
    if all_articles:
        return service.briefing(all_articles=True, lang=lang)
    if date and until:
        return service.briefing(since=date, until=until, lang=lang)
    return service.briefing(date=date or None, lang=lang)


def passage_html(service: Service, citation, anchor: str) -> str:
    """The cited passage in its chunk, the excerpt the model read highlighted, with title, outlet, date."""
    store = service.store()
    article = store.article(citation.article_id)
    meta = " · ".join(html.escape(x) for x in (citation.title or citation.article_id, citation.source,
                                               citation.date) if x)
    if article is None:  # removed since the answer was given
        body = html.escape(citation.text)
    else:
        try:
            chunk = store.chunk(citation.chunk_id)
            lo, hi = chunk.start, chunk.end
        except KeyError:
            lo, hi = citation.start, citation.end
        body = _highlight(article.text[lo:hi], citation.text.split(" … "))
    return (f'<details class="source" id="{anchor}" dir="auto"><summary dir="auto">[{citation.n}] {meta}'
            f'</summary><div class="passage-text" dir="auto">{body}</div></details>')


def library_rows(service: Service) -> list[list]:
    try:
        return [[a.id, a.title, a.source, a.date, a.chunks] for a in service.articles()]
    except RagError:
        return []


def search_html(service: Service, question: str, k: int = 5) -> str:
    try:
        hits = service.retrieve(question, k=int(k)).hits
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


def _remove_message(service: Service, article_id: str) -> str:
    try:
        service.remove(article_id)
    except RagError as exc:
        return f"⚠️ {exc}"
    return f"Removed {article_id.strip()}."


def _highlight(context: str, parts: list[str]) -> str:
    """The context with each excerpt sentence the model read marked (the excerpt skips sentences between)."""
    marks = []
    for part in (p.strip(" …") for p in parts):
        if not part:
            continue
        # Excerpts are whitespace-normalised: match word by word across any run of spaces or newlines.
        found = re.search(r"\s+".join(re.escape(w) for w in part.split()), context)
        if found:
            marks.append(found.span())
    out, pos = [], 0
    for start, end in sorted(marks):
        if start < pos:
            continue
        out += [html.escape(context[pos:start]), "<mark>", html.escape(context[start:end]), "</mark>"]
        pos = end
    return isolate_ltr_runs("".join(out) + html.escape(context[pos:]), html=True)


# ---- chat rendering ------------------------------------------------------------------------------------------
def _evidence_html(citations, label: str = "") -> str:
    """The sentence an answer is taken from, quoted with its outlet and date."""
    out = []
    for c in citations:
        meta = " · ".join(html.escape(x) for x in (c.source or c.title, c.date) if x)
        quote = isolate_ltr_runs(html.escape(" ".join(c.text.split())), html=True)
        out.append(f'<div class="evidence" dir="auto">{html.escape(label)}«{quote}» [{c.n}]'
                   f'{f" <small>({meta})</small>" if meta else ""}</div>')
    return "".join(out)


def _answer_html(answer, turn: int) -> str:
    text = isolate_ltr_runs(html.escape(answer.answer), html=True)
    text = re.sub(r"\[(\d+)\]", lambda m: f'<a class="cite" href="#src-{turn}-{m.group(1)}">[{m.group(1)}]</a>', text)
    flags = "".join(f'<div class="flags" dir="auto">⚠ {html.escape(f.kind)}: {html.escape(f.detail)}</div>'
                    for f in answer.flags)
    evidence = "" if answer.quoted or answer.refused else _evidence_html(answer.evidence)
    return f'<div dir="auto" class="answer">{text}</div>{evidence}{flags}'


def _user_html(question: str) -> str:
    return f'<div dir="auto">{html.escape(question)}</div>'


def build_app(settings: Settings | None = None, service: Service | None = None):
    import gradio as gr

    service = service or Service(settings)
    settings = service.settings
    llm_limit = settings.ui_llm_concurrency

    def respond(message, chat, state):
        """Streams the answer into the chat; the final message links each [n] to its passage."""
        state = state or {"pairs": [], "sources": []}
        message = (message or "").strip()
        if not message:
            yield chat, "".join(state["sources"]), state, ""
            return
        chat = list(chat or []) + [{"role": "user", "content": _user_html(message)},
                                   {"role": "assistant", "content": ""}]
        turn = len(state["pairs"]) + 1
        streamed = ""
        try:
            for event in service.stream(message, history=state["pairs"] or None):
                if event["type"] == "queued":  # every generation slot is taken: say where the reader stands
                    chat[-1] = {"role": "assistant", "content": f'<div dir="auto">⏳ #{event["position"]} in the '
                                f'queue (about {event["estimate_s"]} s)</div>'}
                    yield chat, "".join(state["sources"]), state, ""
                elif event["type"] == "evidence":  # shown while the model reads
                    chat[-1] = {"role": "assistant", "content": _evidence_html(event["evidence"])}
                    yield chat, "".join(state["sources"]), state, ""
                elif event["type"] == "token":
                    streamed += event["text"]
                    chat[-1] = {"role": "assistant", "content": f'<div dir="auto">{html.escape(streamed)}</div>'}
                    yield chat, "".join(state["sources"]), state, ""
                else:
                    answer = event["answer"]
                    chat[-1] = {"role": "assistant", "content": _answer_html(answer, turn)}
                    block = "".join(passage_html(service, c, f"src-{turn}-{c.n}") for c in answer.citations)
                    if block:
                        question = html.escape(message[:80])
                        state["sources"].insert(0, f'<div class="turn" dir="auto"><b dir="auto">{question}</b>'
                                                   f'{block}</div>')
                    state["pairs"].append((message, answer.answer))
        except RagError as exc:
            chat[-1] = {"role": "assistant", "content": f'<div dir="auto">⚠️ {html.escape(str(exc))}</div>'}
        yield chat, "".join(state["sources"]), state, ""

    def make_brief(date, until, lang, all_articles):
        from rag.brief import render_markdown

        try:
            briefing = _briefing(service, date, until, lang, all_articles)
        except RagError as exc:
            return gr.update(value=f"⚠️ {exc}", rtl=False), None
        text = render_markdown(briefing)
        name = f"briefing-{briefing.date_from or 'all'}-{lang}.md"
        path = Path(tempfile.mkdtemp(prefix="rag-brief-")) / name
        path.write_text(text, encoding="utf-8")
        return gr.update(value=text, rtl=lang == "ar"), str(path)

    def history():
        """The runs table and the choice of runs to open, newest first."""
        runs = service.brief_runner().history.runs()
        table = [[r.id, r.started, r.status, r.trigger, ",".join(r.langs), r.stories, r.flags, r.seconds,
                  r.error or r.webhook] for r in runs]
        return table, gr.update(choices=[r.id for r in runs], value=runs[0].id if runs else None)

    def run_now():
        try:
            service.brief_runner().run_in_background("manual")
            note = "Run started: it appears below as *running*; press Refresh to follow it."
        except RagError as exc:
            note = f"⚠️ {exc}"
        return (note, *history())

    def open_run(run_id, lang):
        if not run_id:
            return gr.update(value="", rtl=False), None
        history = service.brief_runner().history
        try:
            run = history.get(run_id)
            files = [str(history.file(run_id, name)) for name in run.files]
            md = f"briefing-{lang}.md"
            text = (history.file(run_id, md).read_text(encoding="utf-8") if md in run.files
                    else f"Run {run_id} ({run.status}) has no {md}" + (f": {run.error}" if run.error else "."))
        except RagError as exc:
            return gr.update(value=f"⚠️ {exc}", rtl=False), None
        return gr.update(value=text, rtl=lang == "ar" and md in run.files), files or None

    def upload(files, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio's way to show progress
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        try:
            report = service.ingest(paths, progress=True).model_dump(exclude={"index_dir"})
        except RagError as exc:
            report = {"error": str(exc)}
        return json.dumps(report, ensure_ascii=False, indent=1), library_rows(service)

    def remove(article_id):
        return _remove_message(service, article_id), library_rows(service)

    def pick(current: str, event: gr.SelectData):
        """A click on a library row adds its id to the picked ids."""
        row = getattr(event, "row_value", None) or []
        ids = current.split()
        if row and str(row[0]) not in ids:
            ids.append(str(row[0]))
        return " ".join(ids)

    pick.__annotations__["event"] = gr.SelectData  # a class, not a string: how Gradio finds the event argument

    def open_article(ids: str) -> str:
        first = (ids or "").split()[:1]
        if not first:
            return "<p>Click a row of the table (or type an id) first.</p>"
        try:
            return article_html(service.article(first[0]))
        except RagError as exc:
            return f'<p dir="auto">⚠️ {html.escape(str(exc))}</p>'

    def summarise(ids: str, lang: str):
        from rag.brief import render_markdown

        picked_ids = (ids or "").split()
        if not picked_ids:
            return gr.update(value="Click rows of the table (or type ids) to pick the articles first.", rtl=False)
        try:
            briefing = service.briefing(article_ids=picked_ids, lang=lang)
        except RagError as exc:
            return gr.update(value=f"⚠️ {exc}", rtl=False)
        return gr.update(value=render_markdown(briefing), rtl=lang == "ar")

    def rows():
        return library_rows(service)

    def search(question, k):
        return search_html(service, question, k)

    def ask(question: str) -> dict:
        return _ask_record(service, question)

    def brief(date: str = "", until: str = "", lang: str = "ar") -> str:
        return _brief_markdown(service, date, until, lang)

    with gr.Blocks(title="Arabic news QA") as app:
        gr.Markdown("## Arabic/English news: ask, brief, search")
        with gr.Tab("Chat"):
            state = gr.State(None)
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(elem_id="chat", height=480, label="Answers cite the articles: click [n]",
                                      buttons=["copy"])
                    question = gr.Textbox(label="Question (Arabic or English)", elem_id="question",
                                          placeholder="اكتب سؤالك… / Ask a question…")
                    with gr.Row():
                        send = gr.Button("Ask", variant="primary", elem_id="ask")
                        clear = gr.Button("New conversation", elem_id="clear")
                    gr.Examples(EXAMPLES, inputs=question)
                with gr.Column(scale=2):
                    gr.Markdown("### Sources")
                    sources = gr.HTML(elem_id="sources")
            for trigger in (question.submit, send.click):
                trigger(respond, [question, chat, state], [chat, sources, state, question],
                        concurrency_limit=llm_limit, concurrency_id="llm", api_visibility="undocumented")
            clear.click(lambda: ([], "", None, ""), None, [chat, sources, state, question],
                        api_visibility="undocumented")
        with gr.Tab("Briefing"):
            with gr.Row():
                date = gr.Textbox(label="Date (YYYY-MM-DD; empty = latest day)", elem_id="brief-date")
                until = gr.Textbox(label="Until (optional, for a range)", elem_id="brief-until")
                lang = gr.Radio(["ar", "en"], value="ar", label="Language")
                everything = gr.Checkbox(label="All articles")
            generate = gr.Button("Generate briefing", variant="primary", elem_id="brief-go")
            briefing = gr.Markdown(elem_id="briefing")
            download = gr.File(label="Download (Markdown)")
            generate.click(make_brief, [date, until, lang, everything], [briefing, download],
                           concurrency_limit=llm_limit, concurrency_id="llm", api_visibility="undocumented")
            schedule = service.settings.brief_schedule
            gr.Markdown("### Past briefings" + (f" (schedule `{schedule}` UTC)" if schedule else
                                                " (no schedule: set RAG_BRIEF_SCHEDULE, or run one now)"))
            with gr.Row():
                run_btn = gr.Button("Run now", elem_id="brief-run-now")
                refresh_runs = gr.Button("Refresh", elem_id="brief-refresh")
            run_note = gr.Markdown(elem_id="brief-run-note")
            runs = gr.Dataframe(headers=["id", "started", "status", "trigger", "langs", "stories", "flags", "seconds",
                                         "error / webhook"], interactive=False, elem_id="brief-runs")
            with gr.Row():
                run_choice = gr.Dropdown(label="Open run", choices=[], elem_id="brief-run-choice")
                run_lang = gr.Radio(["ar", "en"], value="ar", label="Language")
            past = gr.Markdown(elem_id="brief-past")
            past_files = gr.File(label="Download the run's files", file_count="multiple")
            # A refresh re-opens the chosen run too: its status may have changed while the choice did not.
            run_btn.click(run_now, None, [run_note, runs, run_choice], api_visibility="undocumented").then(
                open_run, [run_choice, run_lang], [past, past_files], api_visibility="undocumented")
            refresh_runs.click(history, None, [runs, run_choice], api_visibility="undocumented").then(
                open_run, [run_choice, run_lang], [past, past_files], api_visibility="undocumented")
            for trigger in (run_choice.change, run_lang.change):
                trigger(open_run, [run_choice, run_lang], [past, past_files], api_visibility="undocumented")
            app.load(history, None, [runs, run_choice], api_visibility="undocumented")
        with gr.Tab("Search"):
            query = gr.Textbox(label="Find passages (Arabic or English)", elem_id="search")
            k = gr.Slider(1, 10, value=5, step=1, label="Passages")
            results = gr.HTML()
            query.submit(search, [query, k], results, api_name="retrieve")
        with gr.Tab("Library"):
            table = gr.Dataframe(headers=["id", "title", "source", "date", "chunks"], interactive=False,
                                 elem_id="library")
            with gr.Row():
                files = gr.File(label="Add articles (.txt .md .html .json .jsonl)", file_count="multiple",
                                file_types=list(UPLOAD_TYPES), elem_id="upload")
                report = gr.Code(label="Ingest report", language="json", elem_id="ingest-report")
            with gr.Row():
                article_id = gr.Textbox(label="Article id to remove", elem_id="remove-id")
                remove_btn = gr.Button("Remove", variant="stop")
                removed = gr.Markdown()
            files.upload(upload, files, [report, table], api_name="ingest", concurrency_limit=1,
                         concurrency_id="index")
            remove_btn.click(remove, article_id, [removed, table], concurrency_limit=1, concurrency_id="index",
                             api_visibility="undocumented")
            with gr.Row():
                picked = gr.Textbox(label="Picked article ids (click rows of the table; space-separated)",
                                    elem_id="picked-ids", scale=3)
                pick_lang = gr.Radio(["ar", "en"], value="ar", label="Summary language")
                open_btn = gr.Button("Open", elem_id="open-article")
                summarise_btn = gr.Button("Summarise", variant="primary", elem_id="summarise")
            article_view = gr.HTML(elem_id="article-view")
            summary_view = gr.Markdown(elem_id="article-summary")
            table.select(pick, picked, picked, api_visibility="undocumented")
            open_btn.click(open_article, picked, article_view, api_visibility="undocumented")
            summarise_btn.click(summarise, [picked, pick_lang], summary_view, concurrency_limit=llm_limit,
                                concurrency_id="llm", api_visibility="undocumented")
            gr.Button("Refresh", elem_id="library-refresh").click(rows, None, table, api_name="library")
            app.load(rows, None, table, api_visibility="undocumented")
        gr.api(ask, api_name="ask", concurrency_limit=llm_limit, concurrency_id="llm")
        gr.api(brief, api_name="brief", concurrency_limit=llm_limit, concurrency_id="llm")
    return app


def article_html(article) -> str:
    """An article as the library shows it: its metadata, then its full text as indexed (escaped)."""
    meta = " — ".join(html.escape(x) for x in (article.source, article.date, article.id) if x)
    link = f' <a href="{html.escape(article.url)}" rel="noopener noreferrer">link</a>' if article.url.startswith(
        ("http://", "https://")) else ""
    paragraphs = "".join(f'<p dir="auto">{html.escape(p)}</p>' for p in article.text.splitlines() if p.strip())
    return (f'<article class="article"><h3 dir="auto">{html.escape(article.title or article.id)}</h3>'
            f'<p class="meta" dir="auto">{meta}{link}</p>{paragraphs}</article>')


def parse_auth(value: str) -> list[tuple[str, str]] | None:
    """RAG_AUTH: `user:password`, several separated by commas, or the path of a file of such lines."""
    value = (value or "").strip()
    if not value:
        return None
    lines = Path(value).read_text(encoding="utf-8").splitlines() if Path(value).is_file() else value.split(",")
    pairs = []
    for line in (x.strip() for x in lines):
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise BadInput("RAG_AUTH must be user:password (or a file of such lines); got an entry without ':'")
        pairs.append((user, password))
    return pairs or None
