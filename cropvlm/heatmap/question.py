"""Questions as hashed bags of words and character trigrams.

The default policy must follow any template's question, including ones it never saw
("Amount due?" vs "What is the total?"), without a tokenizer download: words and their
character trigrams are hashed (crc32, stable across runs and machines) into a fixed
vector that a linear layer embeds. Trigrams let "totals"/"total" and "invoice no." /
"invoice number" share most of their features.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

BUCKETS = 2048
_WORD = re.compile(r"[a-z0-9]+")


def question_features(question: str, buckets: int = BUCKETS) -> np.ndarray:
    """[buckets] float32, L2-normalised counts of hashed words (x2 weight) and trigrams."""
    vector = np.zeros(buckets, dtype=np.float32)
    for word in _WORD.findall(question.lower()):
        vector[zlib.crc32(f"w:{word}".encode()) % buckets] += 2.0
        padded = f"<{word}>"
        for i in range(len(padded) - 2):
            vector[zlib.crc32(f"t:{padded[i:i + 3]}".encode()) % buckets] += 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
