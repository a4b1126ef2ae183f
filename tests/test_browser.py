"""The app in a real browser: Playwright for Python driving Debian's chromium, headless (installed by
`make test`). The app runs in this process on a free port, with the fake models, so the test is quick."""

import os
import shutil
from pathlib import Path

import pytest

from tests.test_ui import QUESTION, running_app, service  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def page():
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (`make test` installs it: apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page
        browser.close()


def test_chat_cites_opens_passages_reads_right_to_left_and_library_uploads(page, running_app, tmp_path):  # noqa: F811
    page.goto(running_app)
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#ask").click()
    citation = page.locator("#chat a.cite").first
    citation.wait_for(timeout=20_000)  # the streamed answer is finished when its citations are linked
    answer = page.locator("#chat .answer").last
    assert "48" in answer.inner_text()
    # Each message has its own direction: the Arabic answer reads right to left.
    assert answer.get_attribute("dir") == "auto" and answer.evaluate("el => el.matches(':dir(rtl)')")
    citation.click()
    passage = page.locator("#sources details#src-1-1")
    passage.wait_for()
    assert passage.evaluate("el => el.open") and "48" in " ".join(passage.locator("mark").all_inner_texts())
    shots = Path(os.environ.get("RAG_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "browser-chat.png"), full_page=True)

    # An English follow-up in the same conversation reads left to right.
    page.locator("#question textarea").fill("How long did Asaib Ahl al-Haq give the government?")
    page.locator("#ask").click()
    page.locator("#chat .message").nth(3).wait_for(timeout=20_000)
    english_question = page.locator("#chat [dir=auto]", has_text="How long did Asaib").first
    assert english_question.evaluate("el => el.matches(':dir(ltr)')")

    page.get_by_role("tab", name="Library").click()
    article = tmp_path / "bridge.txt"
    article.write_text("افتتح جسر جديد في مدينة الموصل بطول 300 متر.", encoding="utf-8")
    page.locator("#upload input[type=file]").set_input_files(str(article))
    page.locator("#ingest-report").get_by_text('"bridge"').first.wait_for(timeout=20_000)
    page.locator("#library").get_by_text("bridge").first.wait_for(timeout=10_000)
    page.screenshot(path=str(shots / "browser-library.png"), full_page=True)
