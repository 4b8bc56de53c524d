"""Freeze the word frequencies `words.split_glued` uses into `lexicon.txt.gz`.

    pip install wordfreq && python -m cropvlm.readers.words.build

Needs `wordfreq` (Apache-2.0 code, CC BY-SA 4.0 data, ~57 MB) only here: the reader reads the
frozen file. Kept: words of letters only, >= 3 letters, zipf >= 3 (parts of a cut) or >= 7
letters and zipf >= 2 (tokens never cut); per word the highest zipf among the languages.
"""

from __future__ import annotations

import gzip
import re

from cropvlm.readers.words import KEEP, LEXICON, MIN_TOKEN, PART

LANGUAGES = ("en", "ms", "nl", "de", "fr", "es", "it")  # the synthetic documents' locales
_LETTERS = re.compile(r"[a-zß-öø-ÿ]+")


def build() -> dict[str, float]:
    from wordfreq import iter_wordlist, zipf_frequency

    best: dict[str, float] = {}
    for language in LANGUAGES:
        for word in iter_wordlist(language):  # most frequent first
            zipf = zipf_frequency(word, language)
            if zipf < KEEP:
                break
            if len(word) >= 3 and _LETTERS.fullmatch(word) and (zipf >= PART or len(word) >= MIN_TOKEN):
                best[word] = max(best.get(word, 0.0), zipf)
    return best


def main() -> None:
    words = build()
    text = "".join(f"{word} {zipf:.2f}\n" for word, zipf in sorted(words.items()))
    LEXICON.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    print(f"wrote {LEXICON}: {len(words)} words, {LEXICON.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
