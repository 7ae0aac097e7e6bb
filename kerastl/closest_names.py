"""Did you mean: the valid names closest to a mistyped one, look-alikes forgiven."""

from __future__ import annotations

import difflib

#: Characters a user types for one another: O for 0, l and I for 1.
LOOKALIKES = str.maketrans({"o": "0", "l": "1", "i": "1"})


def _lookalike_key(text: str) -> str:
    return text.lower().translate(LOOKALIKES)


def closest_names(
    word: str, names: tuple[str, ...], *, limit: int = 3, cutoff: float = 0.5
) -> list[str]:
    """The names closest to `word`, best first, case-insensitive.

    Look-alike characters count as equal (`LOOKALIKES`). Names that begin with
    `word` come first, then the more similar, then the plain spelling breaks
    ties; names tied with the last one shown are shown too. A name equal to
    `word` but for look-alikes is the only one shown.
    """
    key = _lookalike_key(word)

    def score(name: str) -> tuple[bool, float, float]:
        name_key = _lookalike_key(name)
        return (
            name_key.startswith(key),
            difflib.SequenceMatcher(None, key, name_key).ratio(),
            difflib.SequenceMatcher(None, word.lower(), name.lower()).ratio(),
        )

    scores = {name: score(name) for name in names}
    same = [name for name in names if _lookalike_key(name) == key]
    if same:
        return same
    ranked = sorted(
        (name for name in names if scores[name][1] >= cutoff),
        key=scores.__getitem__,
        reverse=True,
    )
    if len(ranked) <= limit:
        return ranked
    last_shown = scores[ranked[limit - 1]]
    return [name for name in ranked if scores[name] >= last_shown]
