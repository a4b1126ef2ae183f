"""End to end on the real embedded model: `make test-integration`."""

import json

import pytest

from rag.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def seeded_index(tmp_path_factory, seeds_dir_module):
    index = tmp_path_factory.mktemp("idx") / "index"
    mp = pytest.MonkeyPatch()
    mp.setenv("RAG_INDEX_DIR", str(index))
    assert main(["ingest", str(seeds_dir_module), "--json"]) == 0
    yield index
    mp.undo()


@pytest.fixture(scope="module")
def seeds_dir_module():
    from tests.conftest import ROOT

    return ROOT / "seeds"


@pytest.mark.parametrize("question", ["كم عدد القتلى في القصف الأمريكي؟",
                                      "How many people were killed in the US strike?"])
def test_seed_questions_find_the_strike_article_first(seeded_index, question, capsys, monkeypatch):
    monkeypatch.setenv("RAG_INDEX_DIR", str(seeded_index))
    capsys.readouterr()
    assert main(["retrieve", question, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits[0]["article_id"] == "000_ad9f9cb34ae7b81f"


def test_ultimatum_question_finds_its_article(seeded_index, capsys, monkeypatch):
    monkeypatch.setenv("RAG_INDEX_DIR", str(seeded_index))
    capsys.readouterr()
    assert main(["retrieve", "كم ساعة أمهلت عصائب أهل الحق الحكومة؟", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits[0]["article_id"] == "004_11e11d9def2c09fb"
