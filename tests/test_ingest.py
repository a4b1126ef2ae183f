import json

from rag.chunk import ArabicChunker
from rag.ingest import ArticleReader, Ingestor, clean_article_text
from rag.store import LocalStore


def _read(*paths):
    """Articles, then what was skipped and what was kept with a warning (origin → reason)."""
    reader = ArticleReader()
    return list(reader.read(paths)), reader.skipped + reader.warnings


def test_txt_and_md_use_stem_as_id_with_sidecar_metadata(tmp_path):
    (tmp_path / "story.txt").write_text("خبر عن بغداد.\nتفاصيل أخرى.", encoding="utf-8")
    (tmp_path / "story.meta.json").write_text(json.dumps({"title": "عنوان", "date": "2021-06-28", "source": "منفذ"}))
    (tmp_path / "notes.md").write_text("# Heading\nSome *markdown* text.", encoding="utf-8")
    articles, skipped = _read(tmp_path)
    by_id = {a.id: a for a in articles}
    assert set(by_id) == {"story", "notes"} and not skipped
    assert (by_id["story"].title, by_id["story"].date, by_id["story"].source) == ("عنوان", "2021-06-28", "منفذ")
    assert by_id["story"].content_hash


def test_html_drops_scripts_and_navigation(tmp_path):
    (tmp_path / "page.html").write_text(
        "<html><head><title>T</title><script>var x=1;</script></head><body><nav>الرئيسية | سياسة</nav>"
        "<article><h1>عنوان الخبر</h1><p>الفقرة الأولى من الخبر.</p><p>الفقرة الثانية.</p></article>"
        "<footer>حقوق النشر</footer></body></html>", encoding="utf-8")
    [article], _ = _read(tmp_path / "page.html")
    assert article.title == "عنوان الخبر"
    assert "الفقرة الأولى من الخبر." in article.text and "الفقرة الثانية." in article.text
    assert "var x" not in article.text and "الرئيسية" not in article.text and "حقوق" not in article.text


def test_jsonl_records_with_metadata_and_bad_lines_reported(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": "a", "text": "نص أول.", "title": "t", "date": "2024-01-02", "source": "s", "url": "u"}),
        json.dumps({"title": "no text here"}),
        "{not json",
        json.dumps({"text": "نص بلا معرف."}),
        json.dumps({"id": "d", "text": "نص.", "date": "yesterday"}),
    ]), encoding="utf-8")
    articles, skipped = _read(path)
    assert [a.id for a in articles][0] == "a" and len(articles) == 3
    assert articles[0].url == "u" and articles[0].date == "2024-01-02"
    assert len(articles[1].id) == 16  # content-hash id
    assert articles[2].date == ""  # bad date kept out, article kept
    reasons = {s.origin: s.reason for s in skipped}
    assert "no `text`" in reasons[f"{path}:2"]
    assert "invalid JSON" in reasons[f"{path}:3"]
    assert "not ISO" in reasons[f"{path}:5"]


def test_json_array(tmp_path):
    (tmp_path / "list.json").write_text(json.dumps([{"id": "x", "text": "أ."}, {"id": "y", "text": "ب."}]))
    articles, _ = _read(tmp_path / "list.json")
    assert [a.id for a in articles] == ["x", "y"]


def test_bad_files_are_skipped_with_reasons(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "ok.txt").write_text("خبر صالح.", encoding="utf-8")
    articles, skipped = _read(tmp_path, tmp_path / "image.png", tmp_path / "missing.txt")
    assert [a.id for a in articles] == ["ok"]
    reasons = " | ".join(f"{s.origin}: {s.reason}" for s in skipped)
    for expected in ("bin.txt: binary", "latin1.txt: not UTF-8", "empty.txt: empty", "image.png: unsupported",
                     "missing.txt: no such file"):
        assert expected in reasons


def test_cleaning_drops_web_furniture_and_keeps_news():
    raw = "\n".join([
        "خبر مهم عن بغداد.",
        "time reading iconدقائق القراءة - 4",
        "قال المتحدث إن الوضع هادئ pic.twitter.com/BJ0yGyz7Nf",
        "— الزعيم (@uR5n6qPqmflcFtR) December 26, 2020",
        "اقرأ/ي أيضًا:",
        "الحشد يكذّب رواية واشنطن حول القصف",
        "فقرة أخيرة من الخبر تستمر هنا بعد الروابط وتحمل معلومات مفيدة كثيرة جدا للقارئ العربي.",
        "المزيد من سياسة",
        "الأكثر قراءة",
        "عنوان قصة أخرى",
    ])
    text = clean_article_text(raw)
    assert "خبر مهم عن بغداد." in text and "الوضع هادئ" in text and "فقرة أخيرة" in text
    for junk in ("دقائق القراءة", "pic.twitter", "@uR5n6", "اقرأ/ي", "يكذّب", "المزيد من", "الأكثر قراءة", "قصة أخرى"):
        assert junk not in text


def test_seed_articles_are_cleaned(seeds_dir):
    articles, skipped = _read(seeds_dir)
    assert len(articles) == 5 and not skipped
    joined = "\n".join(a.text for a in articles)
    for junk in ("اقرأ/ي أيضًا", "المزيد من سياسة", "الأكثر قراءة", "قصص قد تهمك", "اضف تعليقا", "pic.twitter.com",
                 "دقائق القراءة", "Published On"):
        assert junk not in joined
    assert "قتل 5 من عناصر" in joined and "48 ساعة" in joined


def _ingestor(tmp_path, embedder):
    store = LocalStore.open(tmp_path / "index", embedder.name, create=True)
    return Ingestor(store, embedder, ArabicChunker(max_words=40, max_tokens=200))


def test_reingest_unchanged_does_nothing_and_changed_replaces(tmp_path, embedder):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("الجملة الأولى عن بغداد. الجملة الثانية عن البصرة.", encoding="utf-8")
    (src / "b.txt").write_text("خبر آخر عن الموصل.", encoding="utf-8")
    first = _ingestor(tmp_path, embedder).ingest([src])
    assert sorted(first.added) == ["a", "b"] and first.chunks_embedded == 2
    calls = embedder.passage_calls
    again = _ingestor(tmp_path, embedder).ingest([src])
    assert sorted(again.unchanged) == ["a", "b"] and again.chunks_embedded == 0
    assert embedder.passage_calls == calls  # nothing embedded
    (src / "a.txt").write_text("نص جديد تماما عن كربلاء.", encoding="utf-8")
    changed = _ingestor(tmp_path, embedder).ingest([src])
    assert changed.updated == ["a"] and changed.unchanged == ["b"]
    store = LocalStore.open(tmp_path / "index", embedder.name)
    assert [c.text for c in store.chunks_of("a")] == ["نص جديد تماما عن كربلاء."]
    assert len(store) == 2


def test_metadata_change_alone_updates_the_article(tmp_path, embedder):
    (tmp_path / "a.txt").write_text("خبر.", encoding="utf-8")
    _ingestor(tmp_path, embedder).ingest([tmp_path / "a.txt"])
    (tmp_path / "a.meta.json").write_text(json.dumps({"date": "2022-01-05"}))
    report = _ingestor(tmp_path, embedder).ingest([tmp_path / "a.txt"])
    assert report.updated == ["a"]
    assert LocalStore.open(tmp_path / "index", embedder.name).article("a").date == "2022-01-05"


def test_sentence_vectors_are_stored_for_multi_sentence_chunks(tmp_path, embedder):
    (tmp_path / "a.txt").write_text("الجملة الأولى عن بغداد. الجملة الثانية عن البصرة. قصير.", encoding="utf-8")
    _ingestor(tmp_path, embedder).ingest([tmp_path / "a.txt"])
    store = LocalStore.open(tmp_path / "index", embedder.name)
    assert store.stats()["sentences"] == 2  # "قصير." is under min_sentence_words


def test_the_ray_read_stage_marks_unchanged_articles_and_reports_skips(tmp_path):
    from rag.ingest_ray import read_file
    from rag.records import Article

    (tmp_path / "a.txt").write_text("خبر عن بغداد.", encoding="utf-8")
    [row] = read_file({"path": str(tmp_path / "a.txt")}, 200_000, {})
    assert row["kind"] == "article"
    article = Article.model_validate_json(row["payload"])
    assert read_file({"path": str(tmp_path / "a.txt")}, 200_000, {article.id: article.content_hash}) == [
        {"kind": "unchanged", "payload": article.id}]
    (tmp_path / "empty.txt").write_text("  ", encoding="utf-8")
    [skip] = read_file({"path": str(tmp_path / "empty.txt")}, 200_000, {})
    assert skip["kind"] == "skipped" and "empty" in skip["payload"]


def test_a_sentence_two_chunks_share_is_embedded_once(tmp_path, embedder):
    sentences = [f"الجملة رقم {n} عن خبر من بغداد والبصرة والموصل وكربلاء والنجف." for n in range(12)]
    (tmp_path / "a.txt").write_text(" ".join(sentences), encoding="utf-8")
    ingestor = _ingestor(tmp_path, embedder)
    [planned] = [ingestor.plan(a) for a in ArticleReader().read([tmp_path / "a.txt"])]
    texts = planned[2]
    assert len(set(texts)) < len(texts)  # chunks overlap by a sentence: the plan names it twice
    report = ingestor.ingest([tmp_path / "a.txt"])
    assert embedder.passages_embedded == len(set(texts)) and report.chunks_embedded >= 2
    store = LocalStore.open(tmp_path / "index", embedder.name)
    for chunk in store.chunks_of("a"):  # every chunk still has its own vector for each of its sentences
        rows = store.sentences_of(chunk.id)
        assert rows and all(abs(float(v @ embedder.embed_queries([chunk.text[s:e]])[0]) - 1) < 1e-5
                            for s, e, v in rows)
