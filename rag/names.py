"""Cross-script name matching: does a Latin-script name render an Arabic one?

Both sides are reduced to consonant skeletons (vowels and the Arabic letters that stand for vowels, hamza or
ʿayn may be skipped; each letter maps to the consonant classes it is transliterated with), and two names match
when one skeleton aligns with the other. "Kirby" matches كيربي, "Kerry" does not; "Kaabi" matches الكعبي,
"Khalbi" does not. The test cannot tell a faithful rendering of the wrong name from a right one: it checks
spelling across scripts, nothing more.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from rag.arabic import normalize_for_search, strip_diacritics, tokenize_for_search

# Arabic letters (after normalize_for_search: أإآ -> ا, ى -> ي, ة -> ه) -> consonant classes.
_ARABIC = {
    "ب": "B", "ت": "T", "ث": "TS", "ج": "JG", "ح": "H", "خ": "KH", "د": "D", "ذ": "DZ", "ر": "R", "ز": "Z",
    "س": "S", "ش": "X", "ص": "S", "ض": "D", "ط": "T", "ظ": "ZD", "غ": "G", "ف": "F", "ق": "KG", "ك": "K",
    "ل": "L", "م": "M", "ن": "N", "ه": "H", "و": "W", "ي": "Y", "پ": "B", "چ": "X", "گ": "G", "ڤ": "F",
}
# Letters a transliteration may leave out: long vowels, hamza, ʿayn, final ta marbuta (normalised to ه).
_ARABIC_SKIPPABLE = set("اويءئؤعه")

# Latin digraphs first, then single letters -> consonant classes; vowels (and y, w) are dropped.
_LATIN_DIGRAPHS = {"sh": "X", "ch": "X", "kh": "K", "gh": "G", "th": "T", "dh": "D", "ph": "F", "ck": "K",
                   "ng": "N", "ou": "", "ee": "", "oo": ""}
_LATIN = {"b": "B", "p": "B", "t": "T", "j": "J", "g": "GJ", "h": "H", "d": "D", "r": "R", "z": "Z", "s": "S",
          "f": "F", "v": "FW", "q": "K", "k": "K", "c": "KS", "x": "K", "l": "L", "m": "M", "n": "N"}
_LATIN_VOWELS = set("aeiouyw'`ʿʾ’-")
_ARTICLE = re.compile(r"^(?:al|el|ad|an|ar|as|ash|at|az|ul)[-‐ ]", re.I)
_ARABIC_WORD = re.compile("[\u0621-\u064a\u0671-\u06d3]+")
# Clitics that may precede a name, with the letters that must remain after them.
_ARABIC_PREFIXES = (("وال", 2), ("بال", 2), ("فال", 2), ("كال", 2), ("لل", 2), ("ال", 2), ("و", 3), ("ب", 3), ("ل", 3))
# Latin runs that look like names: capitalised words, joined by al-/bin/abu particles and hyphens.
_LATIN_NAME = re.compile(r"\b(?:[A-Z][\w'’ʿ]*(?:-[A-Za-z][\w'’ʿ]*)*)(?:\s+(?:(?:al|el|bin|ibn|abu|abo|abi|Abu|Al|El)[- ])?"
                         r"[A-Z][\w'’ʿ]*(?:-[A-Za-z][\w'’ʿ]*)*)*")


def latin_skeleton(name: str) -> list[str]:
    """Consonant classes of a Latin-script name, doubled letters collapsed: "Tueller" -> [T, L, R]."""
    text = _ARTICLE.sub("", name.strip()).lower()
    text = re.sub(r"\b(?:al|el)-", "", text)
    out: list[str] = []
    last = ""  # the previous consonant class, reset by a vowel: "tt" is one t, "dad" is two d
    i = 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair in _LATIN_DIGRAPHS:
            cls = _LATIN_DIGRAPHS[pair]
            i += 2
        else:
            ch = text[i]
            i += 1
            cls = "" if ch in _LATIN_VOWELS or not ch.isalpha() else _LATIN.get(ch, "")
        if not cls:
            last = ""
            continue
        if cls != last:
            out.append(cls)
        last = cls
    return out


def _prefix_length(word: str) -> int:
    for prefix, rest in _ARABIC_PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= rest:
            return len(prefix)
    return 0


def arabic_skeleton(text: str) -> list[tuple[str, bool]]:
    """(classes, skippable) per letter of an Arabic name. The letters of a possible article or clitic
    (ال, و, ب, ل) may be skipped rather than removed: بغداد starts with a real ب."""
    out: list[tuple[str, bool]] = []
    for word in _ARABIC_WORD.findall(normalize_for_search(text)):
        clitic = _prefix_length(word)
        previous = ""
        for i, ch in enumerate(word):
            if ch == previous:  # shadda is stripped; a written double letter reads as one
                continue
            previous = ch
            cls = _ARABIC.get(ch, "")
            if ch in _ARABIC_SKIPPABLE or i < clitic:
                out.append((cls, True))
            elif cls:
                out.append((cls, False))
    return out


@lru_cache(maxsize=4096)
def _match(latin: tuple[str, ...], arabic: tuple[tuple[str, bool], ...]) -> bool:
    """Every Latin consonant is read from an Arabic letter of its class, in order; every Arabic consonant
    that is not skippable is read by a Latin one."""
    n, m = len(latin), len(arabic)
    # reach[i][j]: latin[:i] aligned with arabic[:j]
    reach = [[False] * (m + 1) for _ in range(n + 1)]
    reach[0][0] = True
    for i in range(n + 1):
        for j in range(m + 1):
            if not reach[i][j]:
                continue
            if j < m and arabic[j][1]:
                reach[i][j + 1] = True  # the Arabic letter is not written in Latin
            if i < n and j < m and set(latin[i]) & set(arabic[j][0] or "-"):
                reach[i + 1][j + 1] = True
            if i < n and latin[i] == "H":
                reach[i + 1][j] = True  # a Latin h is often silent or a vowel sign: "John", "Nineveh"
    return reach[n][m]


def names_match(latin: str, arabic: str) -> bool:
    """True when the Latin name is a plausible rendering of the Arabic one (both may be several words)."""
    lat = latin_skeleton(latin)
    ara = arabic_skeleton(arabic)
    if len(lat) < 2 or not any(not skip for _, skip in ara):
        return False  # one consonant matches too much to mean anything
    return _match(tuple(lat), tuple(ara))


def arabic_words(text: str) -> list[tuple[str, int, int]]:
    """Arabic words of a display text with their offsets."""
    return [(m.group(), m.start(), m.end()) for m in _ARABIC_WORD.finditer(text)]


def find_in_arabic(latin: str, text: str, max_words: int = 4) -> tuple[int, int] | None:
    """The offsets of the shortest run of Arabic words in `text` that `latin` renders, or None."""
    words = arabic_words(text)
    n_latin = max(1, len(latin.split()))
    for size in range(1, min(max_words, n_latin + 2) + 1):
        for i in range(len(words) - size + 1):
            start, end = words[i][1], words[i + size - 1][2]
            # A name never renders only function words ("WILZ" for الذي, English XQuAD).
            if tokenize_for_search(text[start:end]) and names_match(latin, text[start:end]):
                return start, end
    return None


# Latin letters as Arabic spells them out in an acronym ("بي بي سي", "أم بي إي جي 4"), normalised. Some are
# everyday words as well (في, إن, أو, أي, أم), and join a run only beside a letter that is nothing else.
_LETTER_NAMES = frozenset("بي سي دي جي تي اتش اكس كيو دبليو زد جاي جيه كيه كاي اف ار اس يو واي ايه".split())
_LETTER_WORDS = _LETTER_NAMES | {"ام", "ان", "او", "اي", "في", "ال"}
_PUNCTUATION = ".,،؛:\"'«»()"  # what clings to a word and ends a run of letters


def spelt_letters(text: str, start: int, end: int) -> tuple[int, int]:
    """The whole acronym spelt out in Arabic letters that the run `text[start:end]` is part of, with a figure
    that follows it ("أم بي إي جي 4" for "أم بي": English XQuAD's "Ambeya (أم بي)" for MPEG-4); (start, end)
    itself when it is not part of one. A run holds at least one letter that is no everyday word."""
    tokens = [(normalize_for_search(m.group()).strip(_PUNCTUATION), m.start(), m.end(), m.group())
              for m in re.finditer(r"\S+", text)]
    inside = [i for i, (_, s, e, _) in enumerate(tokens) if s < end and e > start]
    if not inside or not all(tokens[i][0] in _LETTER_WORDS for i in inside):
        return start, end

    def closed(i: int) -> bool:  # punctuation after a word ends the run there
        return tokens[i][3] != tokens[i][3].rstrip(_PUNCTUATION)

    def letter(i: int, beside: int) -> bool:
        word = tokens[i][0] if 0 <= i < len(tokens) else ""
        return word in _LETTER_NAMES or (word in _LETTER_WORDS and 0 <= beside < len(tokens)
                                         and tokens[beside][0] in _LETTER_NAMES)
    first, last = inside[0], inside[-1]
    while not closed(last) and letter(last + 1, last + 2):
        last += 1
    while first > 0 and not closed(first - 1) and letter(first - 1, first - 2):
        first -= 1
    if last + 1 < len(tokens) and not closed(last) and re.fullmatch(r"\d+", tokens[last + 1][0]) and last > first:
        last += 1
    if (first, last) == (inside[0], inside[-1]) \
            or not any(tokens[i][0] in _LETTER_NAMES for i in range(first, last + 1)):
        return start, end
    return min(start, tokens[first][1]), max(end, tokens[last][1] + len(tokens[last][3].rstrip(_PUNCTUATION)))


def same_spelling(a: str, b: str) -> bool:
    """Two Latin spellings of a name that differ only in case, the article and hyphens ("Qais al-Khazali",
    "Qais Khazali")."""
    def letters(name: str) -> str:
        return "".join(re.sub(r"[^a-z]", "", _ARTICLE.sub("", word)) for word in name.lower().split())
    return letters(a) == letters(b)


def latin_names(text: str) -> list[str]:
    """Runs of capitalised Latin words ("John Kirby", "Asaib Ahl al-Haq")."""
    return [m.group().strip() for m in _LATIN_NAME.finditer(text)]


def question_names(question: str) -> list[str]:
    """Name-like words of an English question: capitalised runs, less a sentence-initial question word."""
    out = []
    for name in latin_names(question):
        words = name.split()
        while words and words[0].lower() in _QUESTION_WORDS:
            words = words[1:]
        if words:
            out.append(" ".join(words))
    return out


_QUESTION_WORDS = {"who", "what", "which", "when", "where", "why", "how", "whom", "whose", "did", "does", "do",
                   "is", "are", "was", "were", "in", "on", "at", "according", "the", "a", "an"}


# ---- common news terms -------------------------------------------------------------------------------------
# English question words -> Arabic stems (in normalize_for_search form, article stripped) that say the same.
# An English question shares no words with Arabic text; these let its terms vote for the Arabic sentence that
# answers it, beside the embedder. Stems match a word's start after its clitics (و، ب، ال …) are removed.
TERMS = {
    "kill": ["قتل", "مقتل", "قتلي", "مصرع"], "dead": ["قتل", "قتلي", "مصرع"], "die": ["قتل", "مصرع"],
    "wound": ["اصيب", "اصاب", "جرح", "جريح"], "injur": ["اصيب", "اصاب", "جرح"],
    "rocket": ["صاروخ", "صواريخ", "كاتيوشا"], "missile": ["صاروخ", "صواريخ"], "drone": ["مسير", "طائر"],
    "strike": ["ضرب", "قصف", "غار"], "bomb": ["قصف", "تفجير", "عبو"], "attack": ["هجوم", "هجم", "استهداف", "استهدف"],
    "explos": ["انفجار", "تفجير"], "shot": ["اسقط", "اطلق"], "fire": ["اطلق", "حريق"], "launch": ["اطلق", "انطلق"],
    "base": ["قاعد"], "island": ["جزر", "جزير"], "coast": ["ساحل", "سواحل", "شاطئ"], "airport": ["مطار"], "embassy": ["سفار"], "ambassador": ["سفير"], "border": ["حدود"],
    "spokes": ["متحدث", "ناطق"], "leader": ["زعيم", "قائد", "امين", "يقود"], "lead": ["يقود", "قائد", "زعيم"],
    "command": ["قائد", "قياد"], "secretary": ["امين"], "general": ["عام", "لواء"], "minister": ["وزير", "وزراء"],
    "prime": ["رئيس"], "president": ["رئيس"], "government": ["حكوم"], "parliament": ["برلمان", "نواب"],
    "council": ["مجلس"], "ministry": ["وزار"], "defense": ["دفاع"], "defence": ["دفاع"], "interior": ["داخلي"],
    "militia": ["ميليشيا", "مليشيا", "فصيل", "فصائل"], "faction": ["فصيل", "فصائل"], "group": ["جماع", "فصيل"],
    "movement": ["حرك"], "force": ["قوات", "قو"], "troop": ["قوات", "جنود"], "soldier": ["جنود", "عسكري"],
    "military": ["عسكري", "جيش"], "army": ["جيش"], "security": ["امن"], "coalition": ["تحالف"],
    "hour": ["ساع"], "day": ["يوم", "ايام"], "week": ["اسبوع"], "month": ["شهر", "اشهر"], "year": ["عام", "سن"],
    "deadline": ["امهل", "مهل"], "gave": ["امهل", "منح"], "give": ["امهل", "منح"], "grant": ["منح"],
    "release": ["افراج", "اطلاق"], "arrest": ["اعتقل", "اعتقال", "قبض"], "detain": ["اعتقل"],
    "vote": ["صوت", "تصويت"], "decision": ["قرار"], "withdraw": ["انسحاب", "اخراج", "خروج"], "expel": ["اخراج"],
    "foreign": ["اجنبي"], "negotiat": ["تفاوض", "مفاوض"], "talk": ["محادث", "حوار"], "truce": ["هدن"],
    "ceasefire": ["هدن", "وقف"], "statement": ["بيان"], "said": ["قال"], "say": ["قال"], "told": ["قال"],
    "tweet": ["تغريد"], "speech": ["كلم", "خطاب"], "describ": ["وصف"], "call": ["دعا", "وصف"],
    "denied": ["نفي", "نفت"], "deny": ["نفي", "نفت"], "fabricat": ["مفبرك"], "claim": ["تبني", "زعم"],
    "city": ["مدين"], "town": ["بلد"], "province": ["محافظ"], "district": ["قضاء"], "capital": ["عاصم"],
    "meeting": ["اجتماع"], "emergency": ["طارئ"], "chair": ["برئاس", "رئاس"],
    "threat": ["هدد", "تهديد", "توعد"], "revenge": ["ثار"], "escalat": ["تصعيد"], "mediat": ["وساط"],
    "close": ["اغلاق", "غلق"], "move": ["نقل"], "moved": ["نقل"], "visit": ["زيار", "زار"], "convoy": ["رتل"],
    "weapon": ["سلاح", "اسلح"], "depot": ["مخازن"], "agency": ["وكال"], "anniversary": ["ذكري"],
    "green": ["خضراء"], "zone": ["منطق"], "explosion": ["انفجار"], "victim": ["ضحايا"], "damage": ["اضرار"],
    "pentagon": ["بنتاغون", "دفاع"],
}


def arabic_terms(question: str) -> list[str]:
    """Arabic stems for the common news terms of an English question."""
    words = re.findall(r"[a-z]+", question.lower())
    # A key of three letters or fewer matches a whole word ("us" is not "used").
    return sorted({stem for word in words for key, stems in TERMS.items()
                   if (word == key if len(key) <= 3 else word.startswith(key)) for stem in stems})


# ---- the continents: a closed class code renders in both scripts --------------------------------------------------
# English name -> its Arabic spellings (normalised for search, each word without its clitics or article); a two-word
# spelling needs both words. Bare أمريكا is not here: in the news it is the United States.
CONTINENTS = {
    "Africa": ["افريقيا"], "Asia": ["اسيا"], "Europe": ["اوروبا", "اوربا"],
    "North America": ["امريكا شماليه", "اميركا شماليه"], "South America": ["امريكا جنوبيه", "اميركا جنوبيه"],
    "Australia": ["استراليا"], "Oceania": ["اوقيانوسيا"], "Antarctica": ["انتاركتيكا", "قطبيه جنوبيه"],
}
_CONTINENT_QUESTION = re.compile(r"\bcontinents?\b|(?:^|\s)(?:[وفبل]?ال|[وفبل])?قار[ةه](?:\s|$|[؟?])", re.I)


def asks_for_continent(question: str) -> bool:
    """"Which continent …", "ما هي القارة …"."""
    return bool(_CONTINENT_QUESTION.search(question))


def continents_in(text: str) -> list[str]:
    """The continents a text names, as English names in the order of CONTINENTS, from Latin or Arabic script."""
    lowered = text.lower()
    words = []
    for word in re.findall(r"\w+", normalize_for_search(text)):
        cut = next((len(p) for p, _ in _ARABIC_PREFIXES if word.startswith(p) and len(word) - len(p) >= 4), 0)
        words.append(word[cut:])
    arabic = " " + " ".join(words) + " "
    return [english for english, spellings in CONTINENTS.items()
            if re.search(rf"\b{english.lower()}\b", lowered) or any(f" {s} " in arabic for s in spellings)]


# The glossary's stems long enough to name a common noun and nothing else (ميليشي, قاعد, محافظ; not سن or عام,
# which open names: سنتكوم, عامر).
_NOUN_STEMS = sorted({stem for key, stems in TERMS.items() if key != "pentagon"  # the one proper noun there
                       for stem in stems if len(stem) >= 4})


def common_nouns_only(arabic: str) -> bool:
    """Whether every word of an Arabic run is a common news noun of the glossary (ميليشيا, قاعدة): a Latin "name"
    that renders only such words spells out a noun ("Mellisha" for ميليشيا), it names no one."""
    words = re.findall(r"\w+", normalize_for_search(arabic))
    return bool(words) and all(any(has_term(stem, [word]) for stem in _NOUN_STEMS) for word in words)


# The clitics above that carry the definite article (ال, وال, بال …, and لل for ل + ال).
_DEFINITE_PREFIXES = tuple(p for p, _ in _ARABIC_PREFIXES if p.endswith("ال") or p == "لل")


def is_definite(word: str) -> bool:
    """Whether an Arabic word (normalised) carries the definite article, alone or after a clitic."""
    return word.startswith(_DEFINITE_PREFIXES)


def has_term(stem: str, arabic_text_norm_words: list[str]) -> bool:
    """A stem matches a word that starts with it once a clitic or the article is removed."""
    for word in arabic_text_norm_words:
        for cut in (0, *(len(p) for p, _ in _ARABIC_PREFIXES if word.startswith(p))):
            if word[cut:].startswith(stem):
                return True
    return False


# ---- attested spellings of Arabic personal names ----------------------------------------------------------------
# A given name borne by at least this many people in the romanizer's index opens a name ("أكرم": 100, "قيس": 30,
# "جون": 16); words the index spells but few bear are common words ("بيان": 11 is the exception seen, "زيارة": 1).
GIVEN_NAME_PEOPLE = 12
# What parts clauses in Arabic text: anything but Arabic letters and spaces (punctuation, digits, Latin, a line break).
_CLAUSES = re.compile(r"[^\u0621-\u065f\u0670-\u06d3 ]+")  # diacritics are a word's own: التركّز is one word


class NameRomanizer:
    """The Latin spelling of an Arabic personal name as the world writes it ("أكرم الكعبي" -> "Akram al-Kaabi"),
    from arabic-name-romanizer's index of spellings attested in Wikidata, or None. Its neural and rule-based
    fallbacks are off: a name any of whose words nobody has spelled ("كيربي" -> "Kerbi", not Kirby) is not
    rendered, and neither is a common noun ("الأمين العام"). The index loads on first use."""

    def __init__(self, country: str | None = None):
        self.country = country or None  # an ISO code that ranks that country's spellings first ("IQ": Kadhimi)
        self._transliterator = None
        self._lock = threading.Lock()

    def names_in(self, text: str) -> list[tuple[str, str]]:
        """Personal names an Arabic text spells out, as (Arabic, attested Latin spelling), in order: runs of 2-4
        words inside a clause that open on a given name many people bear (GIVEN_NAME_PEOPLE; "أبو" too) and end
        on a family name with the article (الكعبي, المهندس), or that the index holds as one person's whole name
        (مقتدى الصدر), and are spelt whole by `romanize`; no word a particle. Foreign names written in Arabic are
        left to the checks of the model's rendering: spelt back they drift ("ماريو أديسون" as Mario Edison). The
        index also spells words that are not names ("في" as Faye, "زيارة" as Ziyara), hence the common given name;
        and some phrases still pass ("أمام الحوار" as Emam Hawwar): a caller confirms a name from another reading."""
        found: list[tuple[str, str]] = []
        for clause in _CLAUSES.split(text):
            words = clause.split()
            i = 0
            while i < len(words):
                opens = self._opens_a_name(words[i])  # one lookup for the runs of every length from here
                for size in range(min(4, len(words) - i), 1, -1):
                    run = words[i:i + size]
                    if not all(tokenize_for_search(w) for w in run):
                        continue
                    text_run = " ".join(run)
                    if (opens and is_definite(normalize_for_search(run[-1])) or self._known_whole(text_run)) \
                            and (latin := self.romanize(text_run)):
                        found.append((text_run, latin))
                        i += size
                        break
                else:
                    i += 1
        return found

    def _opens_a_name(self, word: str) -> bool:
        norm = normalize_for_search(word)
        if norm == "ابو":
            return True
        if _prefix_length(norm):  # a clitic or the article: not how a given name is written
            return False
        found = self._attested(word)
        return found is not None and max((u.count for u in found.units), default=0) >= GIVEN_NAME_PEOPLE

    def _known_whole(self, run: str) -> bool:
        """Whether the index holds these words as one person's whole name ("مقتدى الصدر": Moqtada al-Sadr), not
        only word by word."""
        found = self._attested(run)
        return found is not None and len(found.units) <= 1

    def _attested(self, text: str):
        """The index's best spelling of `text` when it comes from the dictionary (a Candidate: text, units with
        their counts), else None. Loaded on first use; one lookup at a time (answers run on several threads)."""
        with self._lock:
            if self._transliterator is None:
                from arabic_name_romanizer.api import Transliterator

                self._transliterator = Transliterator(auto_load_model=False, use_rules_fallback=False)
            # top_k=1 returns bare strings; two return candidates with their sources
            found = self._transliterator.transliterate(text, top_k=2, country=self.country)
        return found[0] if found and found[0].source == "dictionary" else None

    def romanize(self, arabic: str) -> str | None:
        words = _ARABIC_WORD.findall(strip_diacritics(arabic))
        if not 1 <= len(words) <= 5:
            return None
        found = self._attested(" ".join(words))
        if found is None or any(u.source != "dictionary" for u in found.units):
            return None
        latin = found.text
        # The spelling must still read as the Arabic letter by letter (rag.names skeletons): a guard against a
        # dictionary row for another name.
        return latin if names_match(latin, arabic) else None
