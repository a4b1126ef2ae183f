"""Scoring every store shares, so a passage ranks the same whichever backend holds it."""

from __future__ import annotations

from collections.abc import Callable, Hashable


def blend_sentences(chunk_scores: dict[Hashable, float], sentence_hits: list[tuple[Hashable, float]],
                    weight: float, k: int,
                    chunk_cosines: Callable[[list], dict[Hashable, float]],
                    best_sentence_cosines: Callable[[list], dict[Hashable, float]]) -> list[tuple[Hashable, float]]:
    """The k best passages by (1 - weight) x the passage's cosine + weight x its best sentence's cosine.

    `chunk_scores`: the k best passages by their own cosine; `sentence_hits`: the 4k best sentences as (their
    passage, cosine). A candidate found by one list only gets the other score computed exactly (the two callables
    take the missing keys), so an approximate index changes which candidates are found, never how they score."""
    chunk_scores = dict(sorted(chunk_scores.items(), key=lambda x: -x[1])[:k])
    if weight <= 0:
        return list(chunk_scores.items())
    best: dict[Hashable, float] = {}
    for key, score in sorted(sentence_hits, key=lambda x: -x[1])[:4 * k]:
        best[key] = max(best.get(key, -1.0), score)
    missing_chunk = [key for key in best if key not in chunk_scores]
    missing_sentence = [key for key in chunk_scores if key not in best]
    chunk_scores = {**chunk_scores, **(chunk_cosines(missing_chunk) if missing_chunk else {})}
    best = {**best, **(best_sentence_cosines(missing_sentence) if missing_sentence else {})}
    blended = {key: (1 - weight) * chunk_scores[key] + weight * best.get(key, chunk_scores[key])
               for key in chunk_scores}
    return sorted(blended.items(), key=lambda x: -x[1])[:k]
