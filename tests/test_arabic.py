from rag.arabic import detect_language, normalize_for_search, tokenize_for_search


def test_strips_diacritics_and_tatweel():
    assert normalize_for_search("مُحَمَّدٌ") == "محمد"
    assert normalize_for_search("العـــراق") == "العراق"


def test_folds_letter_variants():
    assert normalize_for_search("أحمد إلى آخر") == "احمد الي اخر"
    assert normalize_for_search("مدرسة") == "مدرسه"
    assert normalize_for_search("مستشفى") == "مستشفي"


def test_arabic_indic_digits_become_ascii_and_case_folds():
    assert normalize_for_search("٤٨ ساعة") == "48 ساعه"
    assert normalize_for_search("۱۲ Pentagon") == "12 pentagon"


def test_vowelled_word_stays_one_token():
    # \w does not match harakat: without normalising first, this word would split in pieces
    assert tokenize_for_search("القَصْف") == ["قصف"]


def test_tokens_drop_stopwords_and_light_prefixes():
    toks = tokenize_for_search("وقتل 5 من عناصر الفصائل في القصف الأمريكي")
    assert "من" not in toks and "في" not in toks
    assert "قصف" in toks and "5" in toks and "فصائل" in toks


def test_same_word_with_and_without_article_match():
    assert tokenize_for_search("بالقصف") == tokenize_for_search("القصف") == tokenize_for_search("قصف")


def test_language_detection():
    assert detect_language("كم عدد القتلى؟") == "ar"
    assert detect_language("How many were killed?") == "en"
    assert detect_language("ما هو دور Pentagon؟") == "ar"
    assert detect_language("12345") == "en"


def test_dates_and_ids_in_arabic_text_are_isolated_left_to_right():
    from rag.arabic import isolate_ltr_runs

    assert isolate_ltr_runs("نشر في 2021-06-28 الساعة 12:30") == "نشر في \u20662021-06-28\u2069 الساعة \u206612:30\u2069"
    assert isolate_ltr_runs("المقال 002_5fdd80ab", html=True) == 'المقال <bdi dir="ltr">002_5fdd80ab</bdi>'
    assert isolate_ltr_runs("قتل 5 أشخاص [1]") == "قتل 5 أشخاص [1]"  # lone numbers and citations need nothing
