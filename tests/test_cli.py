import json

import pytest

from rag.cli import main


@pytest.fixture
def index_env(tmp_path, monkeypatch, fake_models):
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    return tmp_path / "index"


def _json_lines(text):
    return [json.loads(line) for line in text.strip().splitlines()]


def test_ingest_retrieve_stats_remove(index_env, seeds_dir, capsys):
    assert main(["ingest", str(seeds_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["added"]) == 5 and report["skipped"] == []

    assert main(["retrieve", "كم ساعة أمهلت عصائب أهل الحق الحكومة؟", "--json", "--k", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lang"] == "ar" and len(out["hits"]) == 3
    assert set(out["hits"][0]) >= {"rank", "chunk_id", "article_id", "title", "text", "score"}
    assert out["hits"][0]["article_id"] == "004_11e11d9def2c09fb"

    assert main(["stats", "--json", "--articles"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["articles"] == 5 and stats["undated"] == 1 and len(stats["article_list"]) == 5

    assert main(["remove", "004_11e11d9def2c09fb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == ["004_11e11d9def2c09fb"]
    assert main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["articles"] == 4
    assert main(["remove", "no-such-article"]) == 1
    assert "not in the index" in capsys.readouterr().err


def test_queries_file_gives_one_line_per_query_with_its_id(index_env, seeds_dir, tmp_path, capsys):
    main(["ingest", str(seeds_dir), "--json"])
    capsys.readouterr()
    queries = tmp_path / "q.jsonl"
    queries.write_text("\n".join([json.dumps({"id": "q1", "question": "القصف الأمريكي"}),
                                  json.dumps({"id": "q2", "question": ""}),
                                  "{broken",
                                  json.dumps({"id": "q4", "question": "Pentagon spokesman"})]), encoding="utf-8")
    assert main(["retrieve", "--queries", str(queries), "--json", "--k", "2"]) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert [line["id"] for line in lines] == ["q1", "q2", "line 3", "q4"]
    assert len(lines[0]["hits"]) == 2 and "empty" in lines[1]["error"] and "invalid JSON" in lines[2]["error"]
    assert lines[3]["lang"] == "en"


def test_filters_on_the_command_line(index_env, seeds_dir, capsys):
    main(["ingest", str(seeds_dir), "--json"])
    capsys.readouterr()
    assert main(["retrieve", "الكاظمي", "--json", "--since", "2021-01-01", "--until", "2021-12-31", "--k", "10"]) == 0
    ids = {h["article_id"] for h in json.loads(capsys.readouterr().out)["hits"]}
    assert ids == {"000_ad9f9cb34ae7b81f", "002_5fdd80ab27fa3f04"}
    assert main(["retrieve", "x", "--since", "June 2021"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_missing_index_is_an_actionable_message_not_a_traceback(index_env, capsys):
    assert main(["retrieve", "سؤال"]) == 1
    err = capsys.readouterr().err
    assert "rag ingest seeds/" in err and "Traceback" not in err


def test_nothing_ingestible_exits_non_zero_but_partial_success_is_zero(index_env, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.txt").write_bytes(b"\x00\x00")
    assert main(["ingest", str(bad)]) == 1
    assert "nothing could be ingested" in capsys.readouterr().err
    (bad / "ok.txt").write_text("خبر صالح.", encoding="utf-8")
    assert main(["ingest", str(bad)]) == 0
    captured = capsys.readouterr()
    assert "1 added" in captured.out and "x.txt: binary" in captured.err


def test_rebuild_replaces_the_index(index_env, seeds_dir, tmp_path, capsys):
    main(["ingest", str(seeds_dir), "--json"])
    one = tmp_path / "one.txt"
    one.write_text("خبر وحيد.", encoding="utf-8")
    assert main(["ingest", "--rebuild", str(one), "--json"]) == 0
    capsys.readouterr()
    main(["stats", "--json"])
    assert json.loads(capsys.readouterr().out)["articles"] == 1


def test_bad_input_and_bad_settings(index_env, seeds_dir, monkeypatch, capsys):
    main(["ingest", str(seeds_dir), "--json"])
    capsys.readouterr()
    assert main(["retrieve", "  "]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["retrieve", "س" * 5000]) == 2
    assert "limit" in capsys.readouterr().err
    assert main(["retrieve", "x", "--k", "0"]) == 2
    monkeypatch.setenv("RAG_TOP_K", "zero")
    assert main(["retrieve", "x"]) == 2
    assert "RAG_" in capsys.readouterr().err


def test_mismatched_embedder_is_refused(index_env, seeds_dir, embedder, capsys):
    main(["ingest", str(seeds_dir), "--json"])
    capsys.readouterr()
    embedder.name = "fake:other"
    assert main(["retrieve", "سؤال"]) == 1
    assert "--rebuild" in capsys.readouterr().err


def test_migrate_to_postgres_serves_the_same_passages(index_env, seeds_dir, pg_dsn, monkeypatch, capsys):
    assert main(["ingest", str(seeds_dir)]) == 0
    capsys.readouterr()
    question = "كم ساعة أمهلت عصائب أهل الحق الحكومة؟"
    assert main(["retrieve", question, "--json", "--k", "5"]) == 0
    local_hits = json.loads(capsys.readouterr().out)["hits"]
    monkeypatch.setenv("RAG_PG_DSN", pg_dsn)
    monkeypatch.setenv("RAG_PG_SCHEMA", "cli_migrate")
    assert main(["migrate", "--to", "postgres", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["copied"] == 5
    monkeypatch.setenv("RAG_STORE", "postgres")
    assert main(["retrieve", question, "--json", "--k", "5"]) == 0
    pg_hits = json.loads(capsys.readouterr().out)["hits"]
    assert [h["chunk_id"] for h in pg_hits] == [h["chunk_id"] for h in local_hits]
    assert [h["score"] for h in pg_hits] == pytest.approx([h["score"] for h in local_hits], abs=1e-4)
    assert main(["remove", "004_11e11d9def2c09fb"]) == 0
    capsys.readouterr()
    assert main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["articles"] == 4
    assert main(["index", "compact"]) == 0


def test_postgres_without_a_dsn_says_what_to_set(index_env, monkeypatch, capsys):
    monkeypatch.setenv("RAG_STORE", "postgres")
    monkeypatch.delenv("RAG_PG_DSN", raising=False)
    assert main(["stats"]) != 0
    assert "RAG_PG_DSN" in capsys.readouterr().err
