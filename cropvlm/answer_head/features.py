"""Numbers that describe one answer candidate on its page, for the answer head's model.

Four groups, all generic (no word of any particular document): where the candidate sits
(position, size of its print against the page's typical print, reading order); what it
and its neighbours say (vocabularies of label roles in `vocabulary`, the template's
aliases for the field asked, digits, case, a comma or postcode where a multi-line value
starts or ends); whether free text is made of words (the share the frozen lexicon of
`readers.words` knows: a misread letter makes a non-word); how it compares with the page's
other candidates (rank of an amount, repeats, the rule-based reader's pick).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from cropvlm.answer_head import vocabulary as vocab
from cropvlm.answer_head.candidates import AnswerCandidate
from cropvlm.normalize import find_date_spans, normalize_text
from cropvlm.readers.answer_rules import alias_pattern
from cropvlm.readers.layout import above, below, rows_of
from cropvlm.readers.ocr_lines import OcrLine
from cropvlm.readers.words import lexicon, split_glued

KINDS = ("name", "address", "other")
NEIGHBOURS = ("self", "before", "left", "above", "below", "row")  # where a vocabulary word is looked for


def feature_names() -> list[str]:
    names = ["x1", "y1", "x2", "y2", "height", "max_height", "height_rank", "lines", "order", "row",
             "chars", "words", "alpha", "digits", "upper", "conf", "min_conf", "kind",
             "alias_before", "alias_left", "alias_above", "alias_row", "left_gap",
             "rule_same", "rule_overlap", "rule_strength",
             "repeats", "rank", "distinct", "index", "is_last", "log_value", "currency", "time",
             "postcode", "phone", "digit_words", "below_rule", "name_like", "dates_in",
             "known_words", "unknown_words", "cuts", "ends_comma", "above_comma", "above_postcode",
             "below_postcode"]
    names += [f"{where}_{word}" for where in NEIGHBOURS for word in vocab.VOCABULARIES]
    return names


@dataclass(frozen=True)
class Page:
    """A page's lines and their neighbourhoods, computed once and shared by every field."""

    lines: tuple[OcrLine, ...]
    size: tuple[float, float]  # (width, height) of the image read, pixels
    median_height: float
    rows: tuple[tuple[int, ...], ...]  # indices of lines per visual row, top to bottom
    row_of: tuple[int, ...]  # row of each line
    hits: np.ndarray  # [n_lines, n_vocabularies] bool: vocabulary words in each line
    row_hits: np.ndarray  # [n_rows, n_vocabularies] bool
    left: tuple[tuple[int, ...], ...]  # segments left of each line on its row
    up: tuple[int | None, ...]  # the line right above each line
    down: tuple[int | None, ...]  # the line right below each line
    dates: tuple[int, ...]  # dates printed in each line
    header_heights: np.ndarray  # heights of the lines in the top 8 rows

    @classmethod
    def of(cls, lines: Sequence[OcrLine], size: tuple[float, float] | None = None) -> Page:
        lines = tuple(lines)
        if size is None:
            size = (max((l.box[2] for l in lines), default=1.0), max((l.box[3] for l in lines), default=1.0))
        heights = sorted(l.height for l in lines) or [1.0]
        rows = tuple(tuple(r) for r in rows_of(lines))
        row_of = [0] * len(lines)
        for r, row in enumerate(rows):
            for i in row:
                row_of[i] = r
        n_vocab = len(vocab.VOCABULARIES)
        hits = np.array([list(vocab.hits(l.text).values()) for l in lines], dtype=bool).reshape(len(lines), n_vocab)
        row_hits = np.array([list(vocab.hits(" ".join(lines[i].text for i in row)).values()) for row in rows],
                            dtype=bool).reshape(len(rows), n_vocab)
        left = tuple(tuple(j for j in rows[row_of[i]] if j != i and lines[j].box[2] <= l.box[0] + 0.5 * l.height)
                     for i, l in enumerate(lines))
        return cls(lines, (max(size[0], 1.0), max(size[1], 1.0)), max(heights[len(heights) // 2], 1.0),
                   rows, tuple(row_of), hits, row_hits, left,
                   tuple(above(lines, i) for i in range(len(lines))),
                   tuple(below(lines, i, max_gap=2.0) for i in range(len(lines))),
                   tuple(len(find_date_spans(line.text)) for line in lines),
                   np.array([lines[j].height for r in rows[:8] for j in r]))


def featurize(page: Page, spec_type: str, kind: str, aliases: Sequence[str],
              cands: Sequence[AnswerCandidate], rule_value: str | None, rule_strength: float) -> np.ndarray:
    """[n_candidates, n_features] float32, columns as `feature_names()`."""
    pattern = alias_pattern(aliases)
    alias = [bool(pattern and pattern.search(l.text)) for l in page.lines]
    counts: dict[str, int] = {}
    for c in cands:
        counts[c.value] = counts.get(c.value, 0) + 1
    distinct = sorted(counts, key=_sort_key(spec_type), reverse=spec_type == "amount")
    rank = {v: i for i, v in enumerate(distinct)}
    rule_lines = {i for c in cands if rule_value is not None and c.value == rule_value for i in c.lines}
    rule_bottom = max((page.lines[i].box[3] for i in rule_lines), default=None)
    rule_words = frozenset(normalize_text(rule_value).split()) if rule_value else frozenset()
    context = _Context(page, spec_type, kind, pattern, alias, counts, rank, len(cands), rule_value, rule_words,
                       rule_strength, rule_bottom)
    rows = [_row(context, n, c) for n, c in enumerate(cands)]
    return np.asarray(rows, dtype=np.float32).reshape(len(cands), len(feature_names()))


@dataclass(frozen=True)
class _Context:
    page: Page
    spec_type: str
    kind: str
    pattern: re.Pattern[str] | None
    alias: list[bool]  # the field's aliases in each line
    counts: dict[str, int]  # candidates per value
    rank: dict[str, int]  # amounts: 0 = largest; others: reading order of first sight
    n_cands: int
    rule_value: str | None
    rule_words: frozenset[str]
    rule_strength: float
    rule_bottom: float | None  # bottom of the rule's answer lines, pixels


def _sort_key(spec_type: str):
    """Amounts rank largest first; other values keep reading order (a stable sort on 0)."""
    if spec_type == "amount":
        return lambda v: Decimal(v)
    return lambda v: 0


def _row(ctx: _Context, index: int, c: AnswerCandidate) -> list[float]:
    page = ctx.page
    W, H = page.size
    lines = [page.lines[i] for i in c.lines]
    first, head = lines[0], c.lines[0]
    x1, y1 = min(l.box[0] for l in lines), min(l.box[1] for l in lines)
    x2, y2 = max(l.box[2] for l in lines), max(l.box[3] for l in lines)
    heights = [l.height for l in lines]
    text = c.text
    letters = [ch for ch in text if ch.isalpha()]
    digits = sum(ch.isdigit() for ch in text)
    row_index = page.row_of[head] if page.row_of else 0
    row = page.rows[row_index]
    # The first line's text before the value (typed values), the segments left of it on
    # its row, the segment above it and under the last line: where labels print.
    before = first.text[: c.start] if ctx.spec_type != "text" else ""
    left = page.left[head]
    up = page.up[head]
    down = page.down[c.lines[-1]]
    down = down if down is not None and down not in c.lines else None
    left_gap = (first.box[0] - max(page.lines[j].box[2] for j in left)) / page.median_height if left else -1.0
    row_text = " ".join(page.lines[j].text for j in row)
    feats = [
        x1 / W, y1 / H, x2 / W, y2 / H,
        sum(heights) / len(heights) / page.median_height, max(heights) / page.median_height,
        float((page.header_heights > first.height * 1.1).sum()),
        len(lines), head / max(len(page.lines), 1), row_index / max(len(page.rows), 1),
        len(text), len(text.split()), len(letters) / max(len(text), 1), digits / max(len(text), 1),
        sum(ch.isupper() for ch in letters) / max(len(letters), 1),
        sum(l.confidence for l in lines) / len(lines), min(l.confidence for l in lines),
        KINDS.index(ctx.kind),
        float(bool(before and ctx.pattern and ctx.pattern.search(before))),
        float(any(ctx.alias[j] for j in left)), float(up is not None and ctx.alias[up]),
        float(any(ctx.alias[j] for j in row)),
        left_gap,
        float(ctx.rule_value is not None and c.value == ctx.rule_value),
        _overlap(c.value, ctx.rule_words), ctx.rule_strength,
        ctx.counts[c.value], ctx.rank[c.value], len(ctx.counts), index / max(ctx.n_cands, 1),
        float(index == ctx.n_cands - 1), _log_value(c.value) if ctx.spec_type == "amount" else 0.0,
        float(bool(vocab.CURRENCY.search(row_text))), float(bool(vocab.TIME.search(first.text))),
        float(bool(vocab.POSTCODE.search(text))), float(bool(vocab.PHONE.search(text))),
        sum(any(ch.isdigit() for ch in w) for w in text.split()),
        (y1 - ctx.rule_bottom) / page.median_height if ctx.rule_bottom is not None else -99.0,
        float(_name_like(text)), float(sum(page.dates[i] for i in c.lines)),
        *(_words(text) if ctx.spec_type == "text" else (0.0, 0.0, 0.0)),
        # Where a multi-line value starts and ends: a line ending in a comma goes on, a
        # postcode usually closes an address.
        float(text.rstrip().endswith(",")), float(up is not None and page.lines[up].text.rstrip().endswith(",")),
        float(up is not None and bool(vocab.POSTCODE.search(page.lines[up].text))),
        float(down is not None and bool(vocab.POSTCODE.search(page.lines[down].text))),
    ]
    none = np.zeros(page.hits.shape[1], dtype=bool)
    contexts = (
        page.hits[list(c.lines)].any(axis=0),
        np.array(list(vocab.hits(before).values())) if before else none,
        page.hits[list(left)].any(axis=0) if left else none,
        page.hits[up] if up is not None else none,
        page.hits[down] if down is not None else none,
        page.row_hits[row_index],
    )
    for found in contexts:
        feats += found.astype(float).tolist()
    return feats


KNOWN = 3.0  # zipf of a word the lexicon knows well


def _words(text: str) -> tuple[float, float, float]:
    """Share of the answer's letter words (3+ letters, glued ones cut) the lexicon knows, how
    many it does not, and how many cuts were made: a misread letter makes a non-word, so of
    two reads of the same line the one made of words is likelier right."""
    cut = split_glued(text)
    tokens = [t for t in _LETTERS.findall(cut) if len(t) >= 3]
    words = lexicon()
    known = sum(words.get(t.lower(), 0.0) >= KNOWN for t in tokens)
    return known / max(len(tokens), 1), float(len(tokens) - known), float(cut.count(" ") - text.count(" "))


_LETTERS = re.compile(r"[^\W\d_]+")


def _log_value(value: str) -> float:
    try:
        return math.log10(max(float(value), 1e-3))
    except ValueError:
        return 0.0


def _overlap(value: str, words: frozenset[str]) -> float:
    """Share of words a candidate and the rule's answer have in common (Jaccard)."""
    wa, wb = set(normalize_text(value).split()), words
    return len(wa & wb) / len(wa | wb) if wa | wb else 0.0


def _name_like(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return len(letters) >= 3 and len(letters) >= 0.6 * len(text.replace(" ", ""))
