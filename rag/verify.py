"""Verification shared by answers and briefings: citation mapping, grounding of figures and names, figures and
dates rendered in code, refusal detection. Everything here is deterministic: what the model wrote is checked
against the passages it was shown, never trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.arabic import normalize_for_search, tokenize_for_search
from rag.chunk import split_sentences
from rag.names import arabic_words, find_in_arabic, latin_names
from rag.records import Flag, Hit

REFUSAL = {"ar": "لا تذكر المقالات ذلك.", "en": "The articles don't say."}
_REFUSAL_MARKERS = [normalize_for_search(m) for m in (
    "لا تذكر المقالات", "لم تذكر المقالات", "لا تذكر المقاطع", "لم تذكر المقاطع", "لا تحتوي المقاطع",
    "لا تتضمن المقاطع", "لا توجد معلومات", "the articles don't say", "the articles do not say",
    "the passages don't", "the passages do not", "not mentioned in the", "no information",
)]
# Capitalised English words that translate Arabic common nouns (titles, institutions, places' kinds): they
# cannot be checked across scripts, and are not the names a small model gets wrong.
COMMON_CAPITALISED = frozenset("""
a an the in on at of and or to for by with from he she it they his her its their this that these those
according us u.s usa uk un eu nato american americans america iraqi iraqis iranian iranians syrian arab arabic
islamic shiite shia sunni kurdish western eastern northern southern north south east west prime minister
ministry president presidency general secretary secretary-general spokesman spokesperson commander leader chief
defense defence interior foreign army forces force government parliament council security national popular
mobilization units brigades brigade movement resistance revolutionary guard guards embassy coalition
international central command green zone base airport air province governorate city town district street
bridge office agency news media cell house white state states united department committee party front
monday tuesday wednesday thursday friday saturday sunday katyusha katyushas january february march april may
june july august september october november december
""".split())
ARABIC_LETTERS = re.compile(r"[\u0600-\u06ff]")
CITATION = re.compile(r"\[\s*(\d+(?:\s*[,،]\s*\d+)*)\s*\]")
# Chat-template control tokens inside an article must never reach the model as tokens.
CONTROL_TOKENS = re.compile(r"<\|[^|>]{1,40}\|>")

# A sentence that talks to the model instead of reporting news: an injected instruction. News quotes officials'
# orders ("ordered the forces to withdraw"), never "ignore your instructions" or "print the word": these
# patterns name the model, its prompt or its output, so a reported order does not match them.
_INSTRUCTION = re.compile("|".join([
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|prompts?)\b",
    r"\b(your|previous|prior|above)\s+(rules|instructions)\b", r"\brules\s+you\s+(were\s+|have\s+been\s+)?given\b",
    r"\bdear\s+(ai|assistant|model|chatbot)\b",
    r"\bsystem\s+(prompt|message|instructions?)\b", r"\bnew\s+instructions?\b", r"\bdeveloper\s+mode\b",
    r"\byou\s+are\s+(now\s+)?(an?\s+|the\s+)?(ai|assistant|language\s+model|chatbot|model|llm)\b",
    r"\b(as\s+an\s+ai|the\s+ai\s+(assistant|model))\b", r"\b(reply|respond|answer)\s+(only\s+)?with\b",
    r"\b(note|message|instructions?)\s+(to|for)\s+(the\s+)?(ai|assistant|model|llm|chatbot)\b",
    r"\b(print|output|write|say|reply|respond|answer)\b.{0,30}\b(the\s+)?(word|phrase|code\s*word|exactly)\b",
    r"\b(do\s+not|don'?t|never)\s+(cite|include|use|add)\b.{0,20}\b(citations?|sources?|references?|\[\d)",
    r"\b(without|drop|remove|omit)\b.{0,15}\b(citations?|sources|references)\b",
    r"\[/?(inst|system)\]|###\s*(instruction|system)|</?s>|<\|",
    r"تجاهل.{0,30}(التعليمات|تعليمات|الأوامر|الاوامر|التوجيهات|القواعد)",
    r"(التعليمات|الأوامر|الاوامر|التوجيهات)\s+(السابقة|الأصلية|السابقه)",
    r"(موجه|تعليمات|رسالة)\s+النظام", r"أيها\s+(النموذج|المساعد|الذكاء)",
    r"(رسالة|ملاحظة|تعليمات)\s+(إلى\s+ال|الى\s+ال|لل|ل)(مساعد|نموذج|ذكاء\s+الاصطناعي|روبوت)(?!\w)",
    r"أنت\s+(الآن\s+)?(مساعد|نموذج|ذكاء\s+اصطناعي|روبوت)",
    r"(اكتب|اطبع|قل|أجب|اجب|ردد)\s+.{0,20}(كلمة|عبارة|الكلمة|العبارة|حرفيا|حرفيًا)",
    r"(لا\s+تذكر|احذف|بدون|دون)\s+.{0,15}(المصادر|الاستشهادات|المراجع|أرقام\s+المصادر)",
]), re.IGNORECASE)


def is_instruction(sentence: str) -> bool:
    """True for a sentence addressed to the model (an injection), never to be shown to it as evidence."""
    return bool(_INSTRUCTION.search(sentence))
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")

# Number words (in normalize_for_search form: ة -> ه, أ -> ا), cardinal and ordinal, Arabic and English.
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000, "dozen": 12,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "twice": 2, "both": 2, "pair": 2,
    "واحد": 1, "واحده": 1, "احدي": 1, "اثنان": 2, "اثنين": 2, "اثنتان": 2, "اثنتين": 2, "ثلاث": 3, "ثلاثه": 3,
    "اربع": 4, "اربعه": 4, "خمس": 5, "خمسه": 5, "ست": 6, "سته": 6, "سبع": 7, "سبعه": 7, "ثمان": 8, "ثماني": 8,
    "ثمانيه": 8, "تسع": 9, "تسعه": 9, "عشر": 10, "عشره": 10, "عشرون": 20, "عشرين": 20, "ثلاثون": 30,
    "ثلاثين": 30, "اربعون": 40, "اربعين": 40, "خمسون": 50, "خمسين": 50, "ستون": 60, "ستين": 60, "سبعون": 70,
    "سبعين": 70, "ثمانون": 80, "ثمانين": 80, "تسعون": 90, "تسعين": 90, "مائه": 100, "مئه": 100, "الف": 1000,
    "اول": 1, "اولي": 1, "ثاني": 2, "ثانيه": 2, "ثالث": 3, "ثالثه": 3, "رابع": 4, "رابعه": 4, "خامس": 5,
    "خامسه": 5, "سادس": 6, "سادسه": 6, "سابع": 7, "سابعه": 7, "ثامن": 8, "ثامنه": 8, "تاسع": 9, "تاسعه": 9,
    "عاشر": 10, "عاشره": 10, "شهرين": 2, "يومين": 2, "ساعتين": 2, "عامين": 2, "سنتين": 2,
}
_WORD_PREFIXES = ("وال", "بال", "لل", "ال", "و", "ب", "ل", "ف")

# Months as written in Arabic news: Egyptian/Gulf names and the Levantine/Iraqi ones ("28 حزيران/يونيو").
MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December"]
_MONTHS_AR = {
    1: ["يناير", "كانون الثاني"], 2: ["فبراير", "شباط"], 3: ["مارس", "اذار"], 4: ["ابريل", "نيسان"],
    5: ["مايو", "ايار"], 6: ["يونيو", "يونيه", "حزيران"], 7: ["يوليو", "يوليه", "تموز"], 8: ["اغسطس", "اب"],
    9: ["سبتمبر", "ايلول"], 10: ["اكتوبر", "تشرين الاول"], 11: ["نوفمبر", "تشرين الثاني"],
    12: ["ديسمبر", "كانون الاول"],
}
_DAYS = {"الاثنين": "Monday", "الثلاثاء": "Tuesday", "الاربعاء": "Wednesday", "الخميس": "Thursday",
         "الجمعه": "Friday", "السبت": "Saturday", "الاحد": "Sunday"}
_MONTH_NAME = "|".join(sorted((re.escape(n) for names in _MONTHS_AR.values() for n in names), key=len, reverse=True))
_MONTH_RUN = rf"(?:{_MONTH_NAME})(?:\s*/\s*(?:{_MONTH_NAME}))?"
# "28 حزيران/يونيو 2021", "الخامس من يناير/كانون الثاني عام 2020", "في 29 سبتمبر/أيلول"
_DATE = re.compile(rf"(?:(?P<day>\d{{1,2}})|(?:ال)?(?P<dayword>\w+)\s+من)\s*(?P<month>{_MONTH_RUN})"
                   rf"(?:\s*(?:من\s+)?(?:عام|سنه)?\s*(?P<year>\d{{4}}))?")


@dataclass
class Passage:
    """A numbered piece of an article as a prompt shows it; offsets are in the article's text."""
    n: int
    hit: Hit
    text: str
    start: int
    end: int


def passage_block(passages: list[Passage]) -> str:
    """Numbered passages as the prompts show them: `[n] (outlet, date) text`, one per line."""
    return "\n".join(f"[{p.n}] ({', '.join(x for x in (p.hit.source, p.hit.date) if x) or p.hit.title}) "
                     f"{' '.join(p.text.split())}" for p in passages)


def strip_citations(text: str) -> str:
    return re.sub(r"\s{2,}", " ", CITATION.sub(" ", text)).strip()


def comparable(text: str) -> str:
    """A text's words only, normalised for search, without citations or punctuation: one sentence contains
    another when its `comparable` form contains the other's."""
    return " ".join(re.findall(r"\w+", normalize_for_search(strip_citations(text))))


def cited_numbers(text: str) -> list[int]:
    return [int(n) for group in CITATION.findall(text) for n in re.split(r"[,،]", group)]


def _number_word(word: str) -> int | None:
    if word in _NUMBER_WORDS:
        return _NUMBER_WORDS[word]
    for prefix in _WORD_PREFIXES:
        if word.startswith(prefix) and word[len(prefix):] in _NUMBER_WORDS:
            return _NUMBER_WORDS[word[len(prefix):]]
    return None


def with_digits(text: str) -> str:
    """A text normalised for search with its number words as digits, clitics kept: "خمس إلى عشر سنوات" -> "5 الي
    10 سنوات", "ثلاثه وعشرون" -> "3 و20", so lists and ranges of figures read alike however they are written.
    A word with the article stays: "الثانية" is an ordinal or an hour, "الإثنين" Monday."""
    def digit(m: re.Match) -> str:
        word = m.group()
        for prefix in ("", "و", "ب", "ل", "ف"):
            if word.startswith(prefix) and word[len(prefix):] in _NUMBER_WORDS:
                return prefix + str(_NUMBER_WORDS[word[len(prefix):]])
        return word
    return re.sub(r"[^\W\d]+", digit, normalize_for_search(text))


def numbers(text: str, duals: bool = True) -> set[str]:
    """Figures a text states, as ASCII digits ("1,600" is 1600, a decimal comma a point: "56,2" is 56.2): digits
    in any script, number words (cardinal and ordinal) in Arabic and English, and (unless `duals` is False) any
    word that ends as a feminine dual (طائرتين: two; but also an adjective in the dual, الضخمتين, which counts
    nothing)."""
    norm = normalize_for_search(text)
    found = {_figure_key(n) for n in _NUMBER.findall(norm)}
    for word in re.findall(r"\w+", norm):
        value = _number_word(word)
        if value is not None:
            found.add(str(value))
        elif duals and is_dual(word):
            found.add("2")  # a feminine dual: مسيرتين, طائرتان
    return found


def is_dual(word: str) -> bool:
    """Whether a word (normalised for search) ends as an Arabic feminine dual: مسيرتين, طائرتان."""
    return bool(re.fullmatch(r"[\u0621-\u064a]{3,}(?:تين|تان)", word)) and not word.endswith(("ستين", "ستان"))


def content_words(text: str) -> list[str]:
    return [t for t in tokenize_for_search(CITATION.sub(" ", text)) if len(t) >= 3 and not t.isdigit()]


def is_refusal(text: str) -> bool:
    norm = normalize_for_search(text)
    return any(marker in norm for marker in _REFUSAL_MARKERS)


def months(text: str) -> set[int]:
    """Months a text names: Arabic (both naming systems) or English."""
    norm = normalize_for_search(text)
    found = {m for m, names in _MONTHS_AR.items() for name in names if re.search(rf"(?<!\w){name}(?!\w)", norm)}
    found |= {i + 1 for i, name in enumerate(MONTHS_EN) if re.search(rf"\b{name}\b", text)}
    return found


def render_dates_en(text: str) -> list[str]:
    """Dates in Arabic text rendered in English by code, never by the model: "28 حزيران/يونيو" -> "28 June",
    "الخامس من يناير/كانون الثاني عام 2020" -> "5 January 2020"."""
    out = []
    norm = normalize_for_search(text)
    for m in _DATE.finditer(norm):
        day = m.group("day") or (str(_number_word(m.group("dayword"))) if _number_word(m.group("dayword") or "")
                                 else None)
        month = next((i for i, names in _MONTHS_AR.items() for name in names if m.group("month").startswith(name)),
                     None)
        if day and month:
            out.append(" ".join(x for x in (day, MONTHS_EN[month - 1], m.group("year")) if x))
    return out


def measured_en(figure: str, arabic: str) -> str:
    """A figure with the scale, unit and currency the Arabic gives it, in English ("£30 million" for 30 in "30
    مليون جنيه إسترليني"); the figure alone where the Arabic gives none, or gives it several."""
    template = _one_measure(figure, arabic)
    return template.format(figure) if template else figure


def stated_figures(text: str) -> set[str]:
    """`numbers`, less the weekday that reads as a number word (الإثنين is Monday, not two)."""
    norm = normalize_for_search(text)
    return numbers(re.sub(r"(?<!\w)(?:و|ب|يوم\s+)?الاثنين(?!\w)", " ", norm))


def render_days_en(text: str) -> list[str]:
    norm = normalize_for_search(text)
    return [en for ar, en in _DAYS.items() if re.search(rf"(?<!\w)(?:و|ب)?{ar}(?!\w)", norm)]


# ---- measures: a figure's scale, unit and currency ----------------------------------------------------------
# A figure as written: digits, with points or commas between groups ("1,600", "56,2", "711.988").
FIGURE = r"\d+(?:[.,]\d+)*"
# A figure listed or ranged after another in text normalised for search: "و760" in "687 و760", "الي 10".
_LISTED = rf"\s*(?:و|،|,|-|–|الي|حتي)\s*{FIGURE}"
# Figures listed or ranged together: "687 و760", "5 الي 10" (number words first made digits by `with_digits`).
FIGURE_LIST = re.compile(rf"{FIGURE}(?:{_LISTED})+")
# As Arabic writes them after a figure (in normalize_for_search form), each with its English rendering. The model
# renders them itself and gets them wrong ("760 meters" for "760 مليمتر", "30 million" for "30 مليون جنيه
# إسترليني" on English XQuAD), so code reads them from the sentence. "م" alone is not a metre: after a year it
# is ميلادي.
_SCALES_AR = {"الف": "thousand", "الاف": "thousand", "مليون": "million", "ملايين": "million",
              "مليار": "billion", "مليارات": "billion", "بليون": "billion"}
_UNITS_AR = {
    "mm": ("mm", "مليمتر", "مليمترات", "ملليمتر", "ملم"), "cm": ("cm", "سنتيمتر", "سنتيمترات", "سنتمتر", "سم"),
    "km": ("km", "كيلومتر", "كيلومترات", "كيلومترا", "كم"), "nm": ("nm", "نانومتر", "نانومترات"),
    "metres": ("متر", "مترا", "امتار", "مترات"), "miles": ("ميل", "ميلا", "اميال"), "feet": ("قدم", "اقدام"),
    "inches": ("انش", "انشات", "بوصه", "بوصات"), "kg": ("kg", "كيلوغرام", "كيلوغرامات", "كيلوجرام", "كغ", "كلغ"),
    "tonnes": ("طن", "اطنان"), "hectares": ("هكتار", "هكتارات"), "%": ("بالمئه", "بالمائه", "%", "٪"),
    "pounds": ("جنيه", "جنيها", "جنيهات"), "dinars": ("دينار", "دينارا", "دنانير"),
    "riyals": ("ريال", "ريالا", "ريالات"), "lira": ("ليره", "ليرات"),
}
# Currencies English writes as a sign before the figure; a pound is sterling only when Arabic says so.
_CURRENCY_SIGNS_AR = {"£": ("جنيه استرليني", "جنيها استرلينيا", "جنيهات استرلينيه", "استرليني"),
                      "$": ("دولار", "دولارا", "دولارات"), "€": ("يورو",)}
_PERCENT_AR = re.compile(r"\s*(?:%|٪|(?:ب|في\s+)ال(?:مئه|مائه))")
_DEGREES_AR = re.compile(r"\s*(?:°\s*(?P<sign>[cf])(?!\w)|درج(?:ه|ات)\s+(?P<word>مئويه|فهرنهايت))")
_MEASURE_WORDS_EN = re.compile(
    rf"(?:(?P<sign>[£$€])\s*)?(?P<figure>{FIGURE})(?P<rest>(?:\s*(?:thousand|million|billion|bn|mn|m|mm|cm|km|nm|"
    r"metres?|meters?|(?:milli|centi|kilo|nano)met(?:re|er)s?|miles?|feet|foot|ft|inch(?:es)?|kg|kilograms?|"
    r"tonnes?|tons?|hectares?|%|percent|per\s+cent|°\s*[CF]|degrees?(?:\s+(?:Celsius|Fahrenheit))?|Celsius|"
    r"Fahrenheit|dollars?|pounds?|sterling|euros?|dinars?|riyals?|lira)(?![\w%]))*)", re.IGNORECASE)


def _figure_key(figure: str) -> str:
    """A figure as one value whichever way it is written: "1,600" and "1600" alike, a decimal comma a point."""
    figure = normalize_for_search(figure)
    return re.sub(r",(?=\d{3}(?!\d))", "", figure).replace(",", ".")


def _measure_after(norm: str, end: int) -> str | None:
    """The scale, unit and currency Arabic writes after a figure ending at `end` of a normalised text, rendered
    in English with a placeholder for the figure ("£{} million", "{} mm", "{}%"); None when it writes none. The
    unit after a list or range is each figure's: "687 و760 نانومتر"."""
    rest = re.sub(rf"^(?:{_LISTED})+", "", norm[end:])
    if _PERCENT_AR.match(rest):
        return "{}%"
    if degrees := _DEGREES_AR.match(rest):
        return "{} °C" if degrees.group("sign") == "c" or degrees.group("word") == "مئويه" else "{} °F"
    words = re.findall(r"[\w%٪]+", rest[:60])
    scale = _SCALES_AR.get(words[0]) if words else None
    words = words[1:] if scale else words
    head = " ".join(words[:2])
    sign = next((s for s, forms in _CURRENCY_SIGNS_AR.items() for form in forms
                 if head == form or head.startswith(form + " ") or words[:1] == [form]), None)
    unit = None if sign else next((u for u, forms in _UNITS_AR.items() if words and words[0] in forms), None)
    if not (scale or sign or unit):
        return None
    figure = f"{sign or ''}{{}}" + (f" {scale}" if scale else "")
    return figure + ("" if not unit else unit if unit == "%" else f" {unit}")


def measures(figure: str, arabic: str) -> set[str | None]:
    """How an Arabic text measures each place it states `figure`: a set of English templates ("£{} million")
    and None for a bare figure; empty when it does not state the figure."""
    norm = normalize_for_search(arabic)
    key = _figure_key(figure)
    return {_measure_after(norm, m.end()) for m in _NUMBER.finditer(norm)
            if _figure_key(m.group()) == key and not norm[m.end():m.end() + 2].startswith((",", "."))}


def _one_measure(figure: str, arabic: str) -> str | None:
    """The one English template the Arabic measures `figure` with; None where it gives none, or several."""
    found = measures(figure, arabic) - {None}
    return found.pop() if len(found) == 1 else None


def unsupported_measures(english: str, arabic: str) -> list[str]:
    """Figures an English text gives a scale, unit or currency that the Arabic never gives them ("30 metres"
    where the Arabic has a bare 30, "$30" where it has 30 جنيه)."""
    out = []
    for m in _MEASURE_WORDS_EN.finditer(english):
        claimed = bool(m.group("sign") or m.group("rest").strip())
        found = measures(m.group("figure"), arabic)
        if claimed and found and found <= {None}:
            out.append(m.group().strip())
    return out


def render_measures_en(english: str, arabic: str) -> str:
    """An English text with each figure's scale, unit and currency as the Arabic gives them, rendered by code:
    "760 meters" -> "760 mm", "30 million" -> "£30 million". A figure the Arabic measures in two ways, or not
    at all, is left as the model wrote it."""
    def render(m: re.Match) -> str:
        template = _one_measure(m.group("figure"), arabic)
        listed = not m.group("rest").strip() and re.match(r"\s*(?:and|to|or|,|-|–)\s*[£$€]?\d", english[m.end():])
        if not template or listed:  # "687 and 760 nm": the unit after the list is each figure's
            return m.group()
        space = m.group()[len(m.group().rstrip()):]
        return template.format(m.group("figure")) + space
    return _MEASURE_WORDS_EN.sub(render, english)


def render_figures_en(english: str, arabic: str) -> str:
    """An English text's figures in English notation, where the Arabic writes them the European way: a decimal
    comma is a point ("56,2%" -> "56.2%"; a comma before three digits is a thousands comma, "1,600"), and where
    the Arabic uses decimal commas, a point before three digits is a thousands separator ("711.988" -> "711,988":
    English XQuAD's population of Warsaw, in a sentence that also writes "56,2٪")."""
    english = re.sub(r"(?<![\d,])(\d+),(\d{1,2})(?![\d,])", r"\1.\2", english)
    # English groups the thousands of a figure of five digits or more ("500000" -> "500,000"); a year has four.
    english = re.sub(r"(?<![\d.,])\d{5,}(?![\d.,])", lambda m: f"{int(m.group()):,}", english)
    if re.search(r"\d,\d{1,2}(?![\d,])", normalize_for_search(arabic)):
        english = re.sub(r"(?<![\d.,])\d{1,3}(?:\.\d{3})+(?![\d.,])", lambda m: m.group().replace(".", ","), english)
    return english


# A range as Arabic writes it: "من 1870 إلى 1939", "بين سنتي 2005 و2010", "2005-2010".
_RANGE_AR = re.compile(rf"(?P<between>بين\s+(?:\w+\s+)?)?(?P<a>{FIGURE})\s*(?P<joint>-|–|الي|حتي|و)\s*"
                       rf"(?P<b>{FIGURE})")


def render_ranges_en(english: str, arabic: str) -> str:
    """An English "A-B" as the Arabic words the range: "1870 to 1939" for "من 1870 إلى 1939", "between 2005 and
    2010" for "بين سنتي 2005 و2010" (English XQuAD's "How long ...": "1870 to 1939")."""
    norm = normalize_for_search(arabic)
    ranges = {(_figure_key(m.group("a")), _figure_key(m.group("b"))): m for m in _RANGE_AR.finditer(norm)
              if m.group("joint") != "و" or m.group("between")}

    def render(m: re.Match) -> str:
        found = ranges.get((_figure_key(m.group(1)), _figure_key(m.group(2))))
        if found is None or found.group("joint") in "-–":
            return m.group()
        if found.group("between"):
            return f"between {m.group(1)} and {m.group(2)}"
        return f"{m.group(1)} to {m.group(2)}"
    return re.sub(rf"(?<![\d.,])({FIGURE})\s*[-–]\s*({FIGURE})", render, english)


def claims(text: str) -> list[str]:
    """Sentences, with a clause that ends in a semicolon or colon joined to what follows it: the citation
    at the end of the sentence covers both."""
    out, pending = [], ""
    for span in split_sentences(text):
        piece = text[span.start:span.end]
        if piece.rstrip().endswith(("؛", ";", ":", "،", ",")):
            pending += piece + " "
            continue
        out.append(pending + piece)
        pending = ""
    return out + ([pending.strip()] if pending.strip() else [])


def ground(text: str, passages: list[Passage], question: str, lang: str) -> tuple[str, list[int], int, list[Flag]]:
    """Citation mapping and grounding checks shared by answers and briefings: numbers that point at no passage
    are removed and counted; sentences without a citation, and figures or (in Arabic text) Latin names that
    their cited passages do not contain, are flagged. Returns (text, cited numbers in order, dropped, flags)."""
    by_n = {p.n: p for p in passages}
    flags: list[Flag] = []
    dropped = 0
    used: list[int] = []

    def keep_valid(match: re.Match) -> str:
        nonlocal dropped
        valid = []
        for part in re.split(r"[,،]", match.group(1)):
            n = int(part)
            if n in by_n:
                valid.append(n)
                if n not in used:
                    used.append(n)
            else:
                dropped += 1
        return "[" + "][".join(map(str, valid)) + "]" if valid else ""

    text = CITATION.sub(keep_valid, text)
    text = re.sub(r"[ \t]+([.،,؛])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    if dropped:
        flags.append(Flag(kind="invalid_citation",
                          detail=f"{dropped} citation(s) pointed at no passage and were removed"))
    for sentence in claims(text):
        cited = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
        claim = CITATION.sub("", sentence).strip()
        if len(claim.split()) < 3:
            continue
        if not cited:
            flags.append(Flag(kind="uncited_sentence", detail=claim))
        support = " ".join(by_n[n].text for n in cited) if cited else " ".join(p.text for p in passages)
        missing = sorted(numbers(claim) - numbers(support) - numbers(question))
        if missing:
            flags.append(Flag(kind="unsupported_figure",
                              detail=f"{', '.join(missing)} not in the cited passage(s): {claim}"))
        if lang == "ar":  # Latin-script names in Arabic text must be in the passages as written
            support_norm = normalize_for_search(support + " " + question)
            for name in latin_names(claim):
                if normalize_for_search(name) not in support_norm:
                    flags.append(Flag(kind="unsupported_name", detail=f"{name} not in the cited passage(s)"))
    return text, used, dropped, flags


# ---- names across scripts ----------------------------------------------------------------------------------
def name_words(name: str) -> list[str]:
    """The words of a Latin name that can be checked across scripts: less common capitalised words and particles."""
    return [w for w in re.split(r"[\s-]+", name) if w.lower().strip(".'’") not in COMMON_CAPITALISED
            and w.lower() not in ("al", "el", "bin", "ibn", "abu")]


def unverified_names(english: str, arabic: str, question: str) -> list[str]:
    """Names in an English text that are neither the question's own words, nor common capitalised words, nor a
    rendering of an Arabic name in `arabic` (consonant skeletons, `rag.names`)."""
    q_norm = normalize_for_search(question)
    out = []
    for name in latin_names(english):
        words = name_words(name)
        if not words or all(normalize_for_search(w) in q_norm for w in words):
            continue
        rest = " ".join(words)
        if find_in_arabic(rest, arabic) is None and not all(find_in_arabic(w, arabic) for w in words):
            out.append(name)
    return out


def verified_family_name(name: str, arabic: str, question: str) -> tuple[str, str] | None:
    """For a Latin name of several words whose family name renders an Arabic name of `arabic` but whose given
    name does not ("Cesar Khazali" for قيس الخزعلي): (the family name, the Arabic name it belongs to), e.g.
    ("Khazali", "قيس الخزعلي"), so only what the check confirms is said in English. None when the family name is
    not borne out, is the question's own word, or the name has one word ("John Kerry" for جون كيربي stays
    unverified: a given name alone names no one)."""
    words = name_words(name)
    if len(words) < 2 or normalize_for_search(words[-1]) in normalize_for_search(question):
        return None
    for dropped in range(1, len(words)):
        where = find_in_arabic(" ".join(words[dropped:]), arabic)
        if where:
            break
    else:
        return None
    start, end = where
    # The Arabic name: the confirmed words and, before them, as many words as the given names left out, when
    # nothing but a space parts them.
    before = arabic_words(arabic[:start])[-dropped:]
    if before and not arabic[before[0][1]:start].replace(" ", "").isalpha():
        before = []
    return " ".join(words[dropped:]), arabic[before[0][1] if before else start:end]


_WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def check_translation(english: str, arabic: str) -> list[Flag]:
    """Why an English rendering of an Arabic sentence cannot be asserted ([] when it can): it is not English,
    runs on (a small model that loops), states a figure, month or weekday the Arabic does not, or names
    someone the Arabic does not name (consonant skeletons). A faithful rendering of the wrong words cannot be
    caught here; an invented name, place or figure can."""
    english = strip_citations(english).strip()
    if not english or is_refusal(english) or ARABIC_LETTERS.search(english):
        return [Flag(kind="not_english", detail=f"not an English rendering: {english}")]
    words = english.split()
    if len(words) > 2 * len(arabic.split()) + 12 or len({tuple(words[i:i + 4]) for i in range(len(words) - 3)}) < \
            len(words) - 3:
        return [Flag(kind="runs_on", detail=f"longer than the Arabic or repeating itself: {english}")]
    extra = sorted(numbers(english) - numbers(arabic))
    if extra:
        return [Flag(kind="unsupported_figure", detail=f"{', '.join(extra)} not in the Arabic: {english}")]
    if months(english) - months(arabic):
        return [Flag(kind="unsupported_figure", detail=f"a month the Arabic does not name: {english}")]
    days = set(render_days_en(arabic))
    invented_days = [d for d in _WEEKDAYS_EN if re.search(rf"\b{d}\b", english) and d not in days]
    if invented_days:
        return [Flag(kind="unsupported_figure", detail=f"{', '.join(invented_days)} not in the Arabic: {english}")]
    names = [n for n in unverified_names(english, arabic, "")
             if not (english.startswith(n) and _common_opening(n, arabic))]
    if names:
        return [Flag(kind="unverified_name", detail=f"{', '.join(names)} renders no name in the Arabic: {english}")]
    return []


def _common_opening(name: str, arabic: str) -> bool:
    """A sentence's first word is capitalised whatever it is: an everyday English word there ("Fighters",
    "Aircraft": Zipf frequency >= 4 in `wordfreq`; "Gaza" is 3.9) is not a name, and the rest of its run is checked alone."""
    from wordfreq import zipf_frequency

    first, _, rest = name.partition(" ")
    if zipf_frequency(first.lower(), "en") < 4.0:
        return False
    return not rest or not unverified_names(rest, arabic, "")


# "According to <outlet>:" / "بحسب <outlet>،" opening a briefing sentence: the outlet comes from the article's
# metadata, not from the passage, so it is not checked against the passage.
ATTRIBUTION = re.compile(r"^\s*(?:According to [^:,]{1,60}[:,]\s*|بحسب [^،,:]{1,60}[،,:]\s*)")
SUPPORTED_SHARE = 0.5  # share of an Arabic sentence's content words that its cited passages must contain


def word_share(claim: str, text: str) -> float:
    """The share of the claim's content words that the text contains (1.0 for a claim without any)."""
    words = set(content_words(claim))
    return len(words & set(content_words(text))) / len(words) if words else 1.0


def unsupported(sentence: str, cited_texts: list[str]) -> str:
    """Why a summary sentence is not borne out by the passages it cites ("" when it is): no citation; for
    an Arabic sentence (or an Arabic quote), any of its figures or most of its content words absent; for an
    English one, the checks of `check_translation` against the cited Arabic."""
    claim = ATTRIBUTION.sub("", strip_citations(sentence).strip())
    if not cited_texts:
        return "cites no passage"
    support = " ".join(cited_texts)
    if len(ARABIC_LETTERS.findall(claim)) > len(re.findall(r"[A-Za-z]", claim)):  # Arabic, or an Arabic quote
        missing = sorted(numbers(claim) - numbers(support))
        if missing:
            return f"{', '.join(missing)} not in the cited passage(s)"
        share = word_share(claim, support)
        return "" if share >= SUPPORTED_SHARE else f"only {share:.0%} of its words are in the cited passage(s)"
    flags = check_translation(claim, support)
    return flags[0].detail if flags else ""
