"""Facts from a caller's transcript, in Dutch and English, each with its evidence. Pure: no I/O, no state.

What is extracted (:class:`TranscriptFacts`):

================  ===========================================================================================
``fire``          fire or smoke mentioned (``True``), with the size the caller gives when any: ``"small"`` for
                  "a little", "a bit", "small", "klein", "beetje", "weinig"...; ``"large"`` for "big", "huge",
                  "a lot of", "thick", "groot", "enorm", "veel", "flink"... (size words count only on a line
                  that mentions fire or smoke). The last line with a size word wins (the caller's latest account).
``people``        number of people: a digit or a number word (one-twenty, een/één-twintig) directly before a
                  person noun, with at most one word between ("drie mensen", "two young children", "3 personen").
                  The largest number mentioned wins. "een" alone (also the Dutch article) is only read as 1
                  as "één" or in "een persoon"/"een man"... before a person noun.
``vehicles``      vehicles mentioned, with a count when a number precedes the noun ("twee auto's" -> 2).
``injuries``      ``True`` when an injury word appears ("gewond", "injured", "bleeding", "bewusteloos"...),
                  ``False`` when it is negated in the same clause ("nobody seems hurt", "niemand is gewond",
                  "not injured"); the last such line wins.
``darkness``      darkness mentioned ("dark", "night", "donker", "nacht", "no light", "geen licht").
``inside``        people said to be inside or trapped ("inside", "trapped", "binnen", "bekneld", "opgesloten"),
                  also when uncertain ("I don't know if anyone is inside" counts: it is a reason to ask).
``location``      a street-like name ("Kerkstraat", "Oostweg", "Main Street") and house number when given.
================  ===========================================================================================

Every fact carries :class:`Evidence`: the 0-based index of the transcript line and the matched words.

Method: hand-written keyword and pattern rules (our own word lists; no external lexicon), lower-cased,
accent-insensitive only for "één"/"een". This is screening, not understanding: negation is handled only for
injuries, irony and hypotheticals are not.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

NUMBER_WORDS: dict[str, int] = {
    # English
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "a couple of": 2, "a few": 3, "several": 3,
    # Dutch
    "één": 1, "een": 1, "twee": 2, "drie": 3, "vier": 4, "vijf": 5, "zes": 6, "zeven": 7, "acht": 8, "negen": 9,
    "tien": 10, "elf": 11, "twaalf": 12, "dertien": 13, "veertien": 14, "vijftien": 15, "zestien": 16,
    "zeventien": 17, "achttien": 18, "negentien": 19, "twintig": 20, "een paar": 2, "enkele": 3,
}
"""Number words of both languages -> value. "a few"/"several"/"enkele" count as 3 (our convention)."""

PERSON_NOUNS: tuple[str, ...] = (
    "people", "persons", "person", "men", "man", "women", "woman", "children", "child", "kids", "kid", "adults",
    "victims", "residents", "occupants", "passengers", "drivers", "pedestrians", "guys",
    "mensen", "personen", "persoon", "mannen", "man", "vrouwen", "vrouw", "kinderen", "kind", "volwassenen",
    "slachtoffers", "bewoners", "inzittenden", "passagiers", "bestuurders", "voetgangers", "jongens", "gewonden",
)
"""Nouns that, after a number, count people."""

VEHICLE_NOUNS: tuple[str, ...] = (
    "cars", "car", "vehicles", "vehicle", "trucks", "truck", "lorry", "lorries", "vans", "van", "buses", "bus",
    "motorbikes", "motorbike", "motorcycles", "motorcycle", "scooters", "scooter", "bikes", "bike", "bicycles",
    "bicycle", "auto's", "autos", "auto", "voertuigen", "voertuig", "vrachtwagens", "vrachtwagen", "busjes", "busje",
    "bestelbus", "bussen", "motoren", "motor", "fietsen", "fiets", "tram", "trein", "train",
)
"""Vehicle nouns (English and Dutch)."""

FIRE_WORDS: tuple[str, ...] = (
    "fire", "flames", "flame", "burning", "burns", "smoke", "smoking", "on fire", "blaze",
    "brand", "brandt", "vuur", "vlammen", "vlam", "rook", "rookt", "rookontwikkeling", "fikkie", "in de fik",
)
"""Words that mention fire or smoke."""

SMALL_WORDS: tuple[str, ...] = (
    "a little", "a bit", "little", "small", "slight", "bit of", "not much", "tiny",
    "klein", "kleine", "beetje", "weinig", "niet veel", "een klein beetje",
)
"""Size words meaning a small fire or a little smoke."""

LARGE_WORDS: tuple[str, ...] = (
    "big", "huge", "large", "enormous", "massive", "a lot of", "lots of", "thick", "heavy", "whole house",
    "everything", "high flames", "groot", "grote", "enorm", "enorme", "veel", "heel veel", "flink", "flinke",
    "dikke", "hele huis", "uitslaande", "hoge vlammen", "zwarte rook",
)
"""Size words meaning a large fire or a lot of smoke."""

INJURY_WORDS: tuple[str, ...] = (
    "injured", "injury", "injuries", "hurt", "wounded", "bleeding", "blood", "unconscious", "not breathing",
    "broken", "gewond", "gewonden", "verwond", "bloedt", "bloed", "bewusteloos", "ademt niet", "gebroken", "pijn",
)
"""Words that report an injury."""

NEGATIONS: tuple[str, ...] = (
    "nobody", "no one", "noone", "not", "n't", "no", "none", "niemand", "niet", "geen", "nee",
)
"""Negations that, earlier in the same clause as an injury word, turn the fact into "no injuries"."""

DARK_WORDS: tuple[str, ...] = (
    "dark", "darkness", "night", "pitch black", "no light", "no lights", "unlit",
    "donker", "nacht", "'s nachts", "geen licht", "geen verlichting", "aardedonker",
)
"""Words that mention darkness."""

INSIDE_WORDS: tuple[str, ...] = (
    "inside", "trapped", "stuck", "in the house", "in the building", "locked in",
    "binnen", "bekneld", "opgesloten", "zit vast", "zitten vast", "in het huis", "in de woning",
)
"""Words saying people are (possibly) inside or trapped."""

STREET_SUFFIXES: tuple[str, ...] = (
    "straat", "weg", "laan", "plein", "gracht", "kade", "singel", "dijk", "dreef", "steeg", "pad", "hof",
)
"""Dutch street-name endings (written together with the name: "Kerkstraat")."""

STREET_WORDS_EN: tuple[str, ...] = ("street", "road", "avenue", "lane", "square", "drive", "boulevard")
"""English street words (written apart: "Main Street")."""


@dataclass(frozen=True)
class Evidence:
    """Where a fact comes from."""

    line: int
    """0-based index of the transcript line."""
    words: str
    """The matched words, as they appear (lower-cased)."""


@dataclass(frozen=True)
class Fact:
    """One fact with its value and evidence. ``value`` type depends on the fact (bool, int, str or None)."""

    value: object
    """The fact's value: ``True``/``False``, a count, a size (``"small"``/``"large"``) or a location string."""
    evidence: tuple[Evidence, ...] = ()
    """Every match that supports (or set) the value, in transcript order."""


@dataclass(frozen=True)
class TranscriptFacts:
    """Facts read from one report's transcript. ``None`` means "not mentioned"."""

    fire: Fact | None = None
    """``Fact(True)`` when fire or smoke is mentioned."""
    fire_size: Fact | None = None
    """``"small"`` or ``"large"`` when a size word is on a line mentioning fire or smoke."""
    people: Fact | None = None
    """Largest number of people mentioned (int)."""
    vehicles: Fact | None = None
    """Vehicles mentioned: value is the count (int) or ``None`` when no number was given."""
    injuries: Fact | None = None
    """``True`` (injury reported) or ``False`` (injuries denied)."""
    darkness: Fact | None = None
    """``Fact(True)`` when darkness is mentioned."""
    inside: Fact | None = None
    """``Fact(True)`` when people are said to be (possibly) inside or trapped."""
    location: Fact | None = None
    """Street name (and house number when given), as said."""
    lines: tuple[str, ...] = field(default=(), repr=False)
    """The transcript lines the facts were read from."""


def _alternation(words: Sequence[str]) -> str:
    """Regex alternation of ``words``, longest first, each escaped and bounded by non-letters."""
    ordered = sorted(set(words), key=len, reverse=True)
    return r"(?<![\w'])(?:" + "|".join(re.escape(w) for w in ordered) + r")(?![\w'])"


@functools.lru_cache(maxsize=64)
def _compiled_alternation(words: tuple[str, ...]) -> re.Pattern[str]:
    # Compiled once per word list: building and escaping the alternation per line was most of extract_facts'
    # time when the analysis screens every call of a study (the word lists are a dozen module constants).
    return re.compile(_alternation(words))


def _find(words: Sequence[str], text: str) -> list[re.Match[str]]:
    return list(_compiled_alternation(tuple(words)).finditer(text))


_NUMBER = r"(?:\d{1,3}|" + "|".join(re.escape(w) for w in sorted(NUMBER_WORDS, key=len, reverse=True)) + ")"


@functools.lru_cache(maxsize=16)
def _counted_pattern(nouns: tuple[str, ...]) -> re.Pattern[str]:
    noun = "(?:" + "|".join(re.escape(n) for n in sorted(nouns, key=len, reverse=True)) + ")"
    return re.compile(rf"(?<![\w'])({_NUMBER})\s+(?:[\w'-]+\s+)?{noun}(?![\w'])")


def _counted(nouns: Sequence[str], text: str) -> list[tuple[int, str]]:
    """``(count, matched words)`` for every "NUMBER [one word] NOUN" in ``text``."""
    out = []
    for m in _counted_pattern(tuple(nouns)).finditer(text):
        word = m.group(1)
        value = int(word) if word.isdigit() else NUMBER_WORDS[word]
        out.append((value, m.group(0)))
    return out


def _clauses(text: str) -> list[str]:
    return [c for c in re.split(r"[.,;:!?]|\b(?:but|maar|and|en)\b", text) if c.strip()]


def extract_facts(lines: Sequence[str] | str) -> TranscriptFacts:
    """Read the facts of :class:`TranscriptFacts` from a transcript.

    Parameters
    ----------
    lines:
        The caller's lines in order (a sequence of str), or one str (then one line). Dutch, English or mixed.

    Returns
    -------
    TranscriptFacts
        Facts with evidence; facts not mentioned are ``None``.

    Raises
    ------
    TypeError
        When ``lines`` holds something other than str.
    """
    if isinstance(lines, str):
        lines = [lines]
    lines = tuple(lines)
    for line in lines:
        if not isinstance(line, str):
            raise TypeError(f"transcript lines must be str, got {type(line).__name__}")

    fire_ev: list[Evidence] = []
    size: tuple[str, list[Evidence]] | None = None
    people: tuple[int, list[Evidence]] | None = None
    vehicle_ev: list[Evidence] = []
    vehicle_count: int | None = None
    injuries: tuple[bool, list[Evidence]] | None = None
    dark_ev: list[Evidence] = []
    inside_ev: list[Evidence] = []
    location: Fact | None = None

    for i, raw in enumerate(lines):
        text = raw.lower().replace("’", "'")
        fire_hits = _find(FIRE_WORDS, text)
        if fire_hits:
            fire_ev += [Evidence(i, m.group(0)) for m in fire_hits]
            large = _find(LARGE_WORDS, text)
            small = _find(SMALL_WORDS, text)
            if large or small:
                # on one line with both, the later word is the caller's correction ("small, no, big")
                last = max(large + small, key=lambda m: m.start())
                value = "large" if last in large else "small"
                size = (value, [Evidence(i, last.group(0)), *(Evidence(i, m.group(0)) for m in fire_hits)])
        for count, words in _counted(PERSON_NOUNS, text):
            if words.split()[0] == "een" and count == 1 and not re.search(
                    r"een\s+(?:[\w'-]+\s+)?(?:persoon|man|vrouw|kind)\b", words):
                continue
            if people is None or count > people[0]:
                people = (count, [Evidence(i, words)])
            elif count == people[0]:
                people[1].append(Evidence(i, words))
        vehicle_hits = _find(VEHICLE_NOUNS, text)
        if vehicle_hits:
            vehicle_ev += [Evidence(i, m.group(0)) for m in vehicle_hits]
            for count, words in _counted(VEHICLE_NOUNS, text):
                if words.split()[0] == "een":
                    count = 1
                vehicle_count = max(vehicle_count or 0, count)
                vehicle_ev.append(Evidence(i, words))
        for clause in _clauses(text):
            hits = _find(INJURY_WORDS, clause)
            if not hits:
                continue
            neg = [m for m in _find(NEGATIONS, clause) if m.start() < hits[0].start()]
            words = [m.group(0) for m in neg] + [m.group(0) for m in hits]
            injuries = (not neg, [Evidence(i, " ".join(words))])
        dark_ev += [Evidence(i, m.group(0)) for m in _find(DARK_WORDS, text)]
        inside_ev += [Evidence(i, m.group(0)) for m in _find(INSIDE_WORDS, text)]
        if location is None:
            location = _location(i, raw)

    return TranscriptFacts(
        fire=Fact(True, tuple(fire_ev)) if fire_ev else None,
        fire_size=Fact(size[0], tuple(size[1])) if size else None,
        people=Fact(people[0], tuple(people[1])) if people else None,
        vehicles=Fact(vehicle_count, tuple(vehicle_ev)) if vehicle_ev else None,
        injuries=Fact(injuries[0], tuple(injuries[1])) if injuries else None,
        darkness=Fact(True, tuple(dark_ev)) if dark_ev else None,
        inside=Fact(True, tuple(inside_ev)) if inside_ev else None,
        location=location,
        lines=lines,
    )


def _location(index: int, raw: str) -> Fact | None:
    """A street-like name in ``raw`` (case kept), with a house number when one follows."""
    nl = r"\b([A-Z][a-zà-ÿ]+(?:" + "|".join(STREET_SUFFIXES) + r"))\b(?:,?\s+(?:number\s+|nummer\s+|nr\.?\s*)?(\d+\w?))?"
    en = r"\b((?:[A-Z][a-z]+\s+)+(?:" + "|".join(w.capitalize() for w in STREET_WORDS_EN) + r"))\b(?:,?\s+(\d+\w?))?"
    for pattern in (nl, en):
        m = re.search(pattern, raw)
        if m:
            value = m.group(1) + (f" {m.group(2)}" if m.group(2) else "")
            return Fact(value, (Evidence(index, m.group(0).lower()),))
    return None
