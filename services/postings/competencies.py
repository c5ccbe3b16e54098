"""Whether a posting's words mean one of the client's core competencies: by word stems and a synonym table, not by
exact phrase.

A competency is read as *concepts*: each of its words, or a phrase of them that the synonym table knows
(``synonyms.json``: "teeth", "orthodontic" and "oral health" all mean *dental*), by its Snowball English stem, so
inflections match too (treat, treating, treatment). Generic words (care, support, management, ...) count only
together with the distinctive ones. A text that holds every concept of a competency *means* it; one that holds
some of its distinctive concepts but not all *touches* it. Everything is local: the stemmer is a pinned package
and the table ships with the service.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import snowballstemmer

STOPWORDS = frozenset({"a", "an", "and", "the", "of", "for", "in", "on", "to", "our", "my", "with", "by", "at",
                       "from", "or", "as", "is", "be", "we", "you", "your", "their", "its", "all"})


@functools.cache
def _stemmer():
    return snowballstemmer.stemmer("english")


def stems(text: str) -> tuple[str, ...]:
    """The text's words (letters and digits; hyphens and punctuation split them), lower case, stemmed; stopwords
    dropped."""
    words = [word for word in re.findall(r"[^\W_]+", text.lower()) if word not in STOPWORDS]
    return tuple(_stemmer().stemWords(words))


@dataclass(frozen=True)
class _Table:
    phrases: tuple[tuple[tuple[str, ...], int], ...]  # (stems of a member, its group), longest first
    generic: frozenset[str]  # concept ids that count only with distinctive ones


@functools.cache
def _table() -> _Table:
    data = json.loads((Path(__file__).with_name("synonyms.json")).read_text())
    generic_stems = {stem for word in data["generic"] for stem in stems(word)}
    phrases, generic = [], set()
    for group, members in enumerate(data["groups"]):
        for member in members:
            member_stems = stems(member)
            phrases.append((member_stems, group))
            if len(member_stems) == 1 and member_stems[0] in generic_stems:
                generic.add(f"group:{group}")
    generic.update(generic_stems)
    phrases.sort(key=lambda item: -len(item[0]))
    return _Table(tuple(phrases), frozenset(generic))


def concepts(text: str) -> dict[str, str]:
    """concept id -> the words of ``text`` that carry it. A phrase of the synonym table is one concept (its group);
    any other word is its own stem."""
    table = _table()
    words = stems(text)
    surface = [word for word in re.findall(r"[^\W_]+", text.lower()) if word not in STOPWORDS]
    found: dict[str, str] = {}
    covered = [False] * len(words)
    for member, group in table.phrases:
        size = len(member)
        for start in range(len(words) - size + 1):
            if words[start:start + size] == member and not any(covered[start:start + size]):
                found.setdefault(f"group:{group}", " ".join(surface[start:start + size]))
                covered[start:start + size] = [True] * size
    for word, original, used in zip(words, surface, covered, strict=True):
        if not used:
            found.setdefault(word, original)
    return found


@dataclass(frozen=True)
class Match:
    complete: bool  # every concept of the competency is there (it means the competency)
    words: tuple[str, ...]  # the text's words that carry the concepts found


def match(competency: str, text: str) -> Match | None:
    """How ``text`` relates to ``competency``: it means it (complete), touches it (some distinctive concepts), or
    neither (None)."""
    needed = concepts(competency)
    if not needed:
        return None
    generic = _table().generic
    distinctive = {concept for concept in needed if concept not in generic} or set(needed)
    present = concepts(text)
    found = [concept for concept in needed if concept in present]
    if not distinctive.intersection(found):
        return None
    return Match(complete=len(found) == len(needed), words=tuple(present[concept] for concept in found))
