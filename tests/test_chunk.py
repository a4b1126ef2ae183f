import pytest

from rag.chunk import ArabicChunker, split_sentences
from rag.records import Article


def _sentences(text):
    return [text[s.start:s.end] for s in split_sentences(text)]


def test_splits_on_arabic_and_latin_marks_and_line_breaks():
    text = "هل انتهى؟ نعم انتهى. قال المتحدث؛ ثم غادر! Then he left.\nسطر جديد"
    assert _sentences(text) == ["هل انتهى؟", "نعم انتهى.", "قال المتحدث؛", "ثم غادر!", "Then he left.", "سطر جديد"]


def test_does_not_split_numbers_or_arabic_comma():
    text = "ارتفع المؤشر 3.5 نقطة، وهو رقم كبير."
    assert _sentences(text) == [text]


def test_closing_quote_stays_with_its_sentence():
    assert _sentences('قال: "انتهى." ثم غادر.') == ['قال: "انتهى."', "ثم غادر."]


def _article(text):
    return Article(id="a1", text=text)


def test_chunks_respect_budget_and_offsets():
    sentences = [f"الجملة رقم {i} تتحدث عن القصف والحدود والفصائل المسلحة." for i in range(40)]
    text = " ".join(sentences)
    chunks = ArabicChunker(max_words=50, max_tokens=500, overlap_sentences=1).split(_article(text))
    assert len(chunks) > 1
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert len(c.text.split()) <= 50
    assert [c.id for c in chunks] == [f"a1#{i}" for i in range(len(chunks))]
    # a sentence of overlap: each chunk starts with the previous chunk's last sentence
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert _sentences(prev.text)[-1] == _sentences(nxt.text)[0]
    assert chunks[-1].end == len(text)


def test_token_budget_is_enforced_with_a_real_counter():
    text = " ".join(["كلمة"] * 30 + ["."] + ["كلمة"] * 30 + ["."])
    chunks = ArabicChunker(max_words=1000, max_tokens=40, overlap_sentences=0,
                           count_tokens=lambda t: len(t.split())).split(_article(text))
    assert all(len(c.text.split()) <= 40 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_overlong_sentence_is_cut_at_words():
    text = " ".join(f"w{i}" for i in range(120))
    chunks = ArabicChunker(max_words=50, overlap_sentences=0).split(_article(text))
    assert [len(c.text.split()) for c in chunks] == [50, 50, 20]


def test_short_article_is_one_chunk():
    chunks = ArabicChunker().split(_article("خبر قصير."))
    assert len(chunks) == 1 and chunks[0].text == "خبر قصير."


@pytest.mark.parametrize("kwargs, bad", [({"max_words": 0}, "max_words"), ({"max_tokens": 600}, "max_tokens"),
                                         ({"overlap_sentences": -1}, "overlap_sentences")])
def test_constructor_names_the_bad_value(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        ArabicChunker(**kwargs)
