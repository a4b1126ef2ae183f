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


def test_the_installed_llm_runtime_serves_a_prompt():
    """A runtime built for this CPU can import and still crash on its first prompt (the AMX build of issue 15's
    runtime did): serve one, in a child process, with whatever `make setup` installed."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "rag.native", "--smoke"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "smoke: ok" in proc.stdout, (proc.returncode, proc.stdout[-300:])
