"""Split words that OCR glued together, by word frequencies: `KUALALUMPUR` -> `KUALA LUMPUR`.

The recogniser drops word spaces in tightly set print (`readers/spaces.py` puts back those its
character positions still show); what is left is glued in the text itself. A unigram language
model segments it (the classic word-segmentation recipe): among the ways to cut a token into
words, take the most probable, log10 P(word) = zipf - 9 (zipf: log10 of the word's frequency
per billion words, from `wordfreq` for English, Malay, Dutch, German, French, Spanish and
Italian, frozen in `lexicon.txt.gz` by `build.py`; CC BY-SA 4.0, see NOTICE.md). So a cut costs, and fewer, more frequent
words win.

Conservative on purpose, because a wrong cut breaks an answer that was right:
- only upper-case letter runs of >= 7 letters (`FamilyMart` and mixed case are written so);
- never a token that is itself a word (zipf >= 2: `SUNFISH`, `HARDWARE`);
- only when every part is a word (zipf >= 3), 4 letters or more unless very frequent (zipf
  >= 5: `AIR`), so names such as `UNIHAKKA` are never cut into syllables.
Measured on gold answers (company and address fields), it changes 6 of 382 `SROIE_TRAIN`
answers, 3 of 200 `SROIE_DEV`, 10 of 300 generated ones: brand compounds such as
`BRIGHTLINE`, which text alone cannot tell from a glued `KUALALUMPUR`.
"""

from __future__ import annotations

import functools
import gzip
import re
from pathlib import Path

LEXICON = Path(__file__).with_name("lexicon.txt.gz")
KEEP = 2.0  # a token at least this frequent (zipf) is a word: never cut
PART = 3.0  # every part of a cut is at least this frequent
SHORT = 5.0  # ... and a part of 3 letters at least this frequent
MIN_TOKEN = 7  # letters in a token worth cutting
_UPPER_RUN = re.compile(r"[^\W\d_]{%d,}" % MIN_TOKEN)


@functools.cache
def lexicon() -> dict[str, float]:
    """Lower-case word -> zipf frequency (the highest among the languages)."""
    with gzip.open(LEXICON, "rt", encoding="utf-8") as handle:
        return {word: float(zipf) for word, zipf in (line.split() for line in handle)}


def split_glued(text: str) -> str:
    """`text` with every glued upper-case token cut into its words where the lexicon is sure."""
    return _UPPER_RUN.sub(lambda m: _segment(m.group(0)) if m.group(0).isupper() else m.group(0), text)


@functools.lru_cache(maxsize=65536)
def _segment(token: str) -> str:
    words = lexicon()
    if words.get(token.lower(), 0.0) >= KEEP:
        return token
    lower, n = token.lower(), len(token)
    # best[i]: (log10 probability, cut points) of the best cut of token[:i] into words
    best: dict[int, tuple[float, tuple[int, ...]]] = {0: (0.0, ())}
    for end in range(3, n + 1):
        options = []
        for start in range(0, end - 2):
            if start not in best:
                continue
            zipf = words.get(lower[start:end], 0.0)
            if zipf >= PART and (end - start >= 4 or zipf >= SHORT):
                score, cuts = best[start]
                options.append((score + zipf - 9.0, (*cuts, end)))
        if options:
            best[end] = max(options)
    if n not in best or len(best[n][1]) < 2:
        return token
    cuts = (0, *best[n][1])
    return " ".join(token[a:b] for a, b in zip(cuts, cuts[1:]))
