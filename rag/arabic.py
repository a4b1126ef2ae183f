"""Arabic-aware text normalisation, tokenisation and language detection.

Display text is never altered by these functions' search forms: offsets and quotes refer to the
original, while matching (BM25, grounding checks) works on `normalize_for_search`.
"""

from __future__ import annotations

import re
import unicodedata

# Harakat, Quranic marks, superscript alef; Python's \w does not match these, so they split words.
_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed]")
_TATWEEL = "\u0640"
_LETTER_FOLDS = str.maketrans({
    "\u0623": "\u0627", "\u0625": "\u0627", "\u0622": "\u0627", "\u0671": "\u0627",  # أ إ آ ٱ -> ا
    "\u0649": "\u064a", "\u06cc": "\u064a",  # ى and Persian yeh ی -> ي (web text mixes them)
    "\u06a9": "\u0643",  # Persian kaf ک -> ك
    "\u0629": "\u0647",  # ة -> ه
})
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_ARABIC_LETTER = re.compile("[\u0621-\u064a\u0671-\u06d3]")
_LATIN_LETTER = re.compile("[A-Za-z]")
_TOKEN = re.compile(r"\w+")
# Light prefix stripping: the conjunction/preposition + article clusters that glue onto Arabic nouns.
_PREFIXES = ("وبال", "وال", "فال", "بال", "كال", "لل", "ال")
_ARABIC_STOPWORDS_AS_WRITTEN = (
    "في من على الى عن ان او ما لا مع هذا هذه ذلك التي الذي الذين كان كانت قد لم لن ثم حيث كما بعد قبل "
    "عند بين كل اي هو هي هم وقد وان وفي ومن وعلى انه انها الا غير حتى اذا منذ عليه عليها فيه فيها لها له "
    "كم ماذا متى اين كيف لماذا هل"
)
_ENGLISH_STOPWORDS = frozenset(
    "a an the of in on at to for from by with and or is are was were be been what which who whom whose "
    "when where why how did does do that this these those it its as into than then".split()
)


# Invisible characters that only ever hide or reorder what a reader sees: zero-width space and joiners' cousins,
# direction marks and overrides (a bidi override can make a quote read backwards), BOMs, C0/C1 controls except
# tab and line breaks. ZWNJ/ZWJ stay: they shape Persian and Urdu words.
_INVISIBLE = re.compile("[\u200b\u200e\u200f\u061c\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
                        "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", text)


def clean_unicode(text: str) -> str:
    """Display-safe normalisation: NFKC (folds Arabic presentation forms), unified line breaks, no invisible or
    direction-overriding characters."""
    text = unicodedata.normalize("NFKC", text)
    return strip_invisible(text.replace("\r\n", "\n").replace("\r", "\n"))


def strip_diacritics(text: str) -> str:
    """The text without harakat, Quranic marks or tatweel, its letters as written (التركّز -> التركز)."""
    return _DIACRITICS.sub("", text).replace(_TATWEEL, "")


def normalize_for_search(text: str) -> str:
    """Fold the variation that should not stop a match: diacritics, tatweel, letter forms, digits, case."""
    text = strip_diacritics(unicodedata.normalize("NFKC", text))
    return text.translate(_LETTER_FOLDS).translate(_DIGITS).lower()


# Compared with tokens after normalize_for_search, so folded the same way (على -> علي).
_ARABIC_STOPWORDS = frozenset(normalize_for_search(w) for w in _ARABIC_STOPWORDS_AS_WRITTEN.split())


def _light_stem(token: str) -> str:
    for prefix in _PREFIXES:
        if token.startswith(prefix) and len(token) - len(prefix) >= 3:
            return token[len(prefix):]
    if token.startswith("و") and len(token) >= 5:  # leading conjunction on a long word
        return token[1:]
    return token


def tokenize_for_search(text: str) -> list[str]:
    """Tokens for lexical search: normalised, stopwords dropped, Arabic prefixes lightly stripped."""
    tokens = []
    for tok in _TOKEN.findall(normalize_for_search(text)):
        if tok in _ARABIC_STOPWORDS or tok in _ENGLISH_STOPWORDS:
            continue
        tokens.append(_light_stem(tok) if _ARABIC_LETTER.match(tok) else tok)
    return tokens


def detect_language(text: str) -> str:
    """'ar' when at least as many words are in Arabic script as in Latin, else 'en'. Counting words, not
    letters, keeps an Arabic question that names "Pentagon" Arabic."""
    arabic = latin = 0
    for word in text.split():
        if _ARABIC_LETTER.search(word):
            arabic += 1
        elif _LATIN_LETTER.search(word):
            latin += 1
    return "ar" if arabic > 0 and arabic >= latin else "en"


# A run like 2021-06-28, 12:30 or 002_5fdd80 inside Arabic text: after an Arabic letter its digits become Arabic
# numbers (bidi rule W2), which a hyphen does not join, so the browser shows 28-06-2021. Isolating the run as
# left-to-right keeps it as written.
_LTR_RUN = re.compile(r"(?<![\w\u2066])(\d[0-9A-Za-z]*(?:[-/:._][0-9A-Za-z]+)+)")


def isolate_ltr_runs(text: str, html: bool = False) -> str:
    """Wrap date-like and id-like runs in <bdi> (HTML) or Unicode isolates (plain text)."""
    if html:
        return _LTR_RUN.sub(r'<bdi dir="ltr">\1</bdi>', text)
    return _LTR_RUN.sub("\u2066\\1\u2069", text)
