"""Screenshots of the app on the real models for the README: `.venv/bin/python -m tests.screenshots`.
Starts the app on a free port (index from RAG_INDEX_DIR), drives Debian's chromium, writes docs/*.png."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from rag.api import RunningServer, create_app
from rag.service import Service
from rag.settings import Settings
from tests.test_ui import free_port

DOCS = Path(__file__).resolve().parent.parent / "docs"


def ask_and_open_citation(page, question: str, shot: Path) -> None:
    before = page.locator("#chat a.cite, #chat .answer").count()
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    page.wait_for_function(f"document.querySelectorAll('#chat a.cite, #chat .answer').length > {before}",
                           timeout=120_000)
    cite = page.locator("#chat a.cite").last
    if cite.count():
        cite.click()
    page.wait_for_timeout(800)
    page.screenshot(path=str(shot))


def main() -> int:
    settings = Settings()
    port = free_port()
    server = RunningServer(create_app(service=Service(settings)), "127.0.0.1", port).start()
    DOCS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"http://127.0.0.1:{port}/")
        ask_and_open_citation(page, "كم ساعة أمهلت عصائب أهل الحق الحكومة؟", DOCS / "chat-ar.png")
        page.locator("#clear").click()
        page.wait_for_function("document.querySelectorAll('#chat .answer').length == 0")
        ask_and_open_citation(page, "How many people were killed in the US strike on the Iraqi border?",
                              DOCS / "chat-en.png")
        page.get_by_role("tab", name="Briefing").click()
        page.locator("#brief-date textarea, #brief-date input").first.fill("2021-07-10")
        page.locator("#brief-go").click()
        page.locator("#briefing h2").first.wait_for(timeout=180_000)
        page.wait_for_timeout(3000)  # the download link comes last; let the page settle
        page.screenshot(path=str(DOCS / "briefing.png"))
        browser.close()
    server.close()
    print(f"wrote {DOCS}/chat-ar.png, chat-en.png, briefing.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
