from rag.settings import Settings
from rag.ui import SearchService


def test_search_html_sets_direction_and_escapes(tmp_path, fake_models, seeds_dir, monkeypatch):
    from rag.cli import main

    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    assert main(["ingest", str(seeds_dir), "--json"]) == 0
    service = SearchService(Settings())
    page = service.search_html("القصف الأمريكي", 2)
    assert page.count('class="passage" dir="auto"') == 2 and "&quot;" in page
    assert len(service.library_rows()) == 5


def test_missing_index_is_a_message_in_the_page(tmp_path, fake_models):
    service = SearchService(Settings(index_dir=tmp_path / "none"))
    assert "rag ingest seeds/" in service.search_html("سؤال")
    assert service.library_rows() == []


def test_empty_question_is_a_message(tmp_path, fake_models, seeds_dir, monkeypatch):
    from rag.cli import main

    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    main(["ingest", str(seeds_dir), "--json"])
    assert "empty" in SearchService(Settings()).search_html("  ")
