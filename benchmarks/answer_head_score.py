"""Score an answer head on a labelled folder: exact match per field beside the rule-based
reader on the same OCR and the candidates' ceiling, calibration error, accuracy at coverage.
A head with zoom boosters answers free text from the page and a band around its pick read
again zoomed (kept in the cache folder too), as the reader does.

    python benchmarks/answer_head_score.py cropvlm/answer_head/default_head FOLDER \
        --templates templates/receipt.yaml --cache .cropvlm/ocr-cache
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cropvlm.answer_head.dataset import folder_examples  # noqa: E402
from cropvlm.answer_head.model import AnswerHead  # noqa: E402
from cropvlm.answer_head.scores import score_head  # noqa: E402
from cropvlm.templates import load_template_set  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("head", help="answer head folder")
    parser.add_argument("folder", help="labelled folder (documents + labels.jsonl)")
    parser.add_argument("--templates", action="append", required=True)
    parser.add_argument("--cache", help="page OCR cache folder")
    parser.add_argument("--time-ocr", type=int, default=5, metavar="N", help="documents whose OCR is timed")
    args = parser.parse_args()
    head = AnswerHead.load(args.head)
    examples = folder_examples(args.folder, load_template_set(args.templates), cache=args.cache,
                               zoom_head=head if head.zoom_boosters else None)  # bands around its own picks
    scores = score_head(head, examples)
    print(f"{head.version} on {Path(args.folder).name}\n\n{scores.table()}\n")
    share, exact = scores.at_threshold(0.5)
    print(f"calibration error {scores.ece:.3f}; confidence >= 0.5: {share:.0%} of answers, {exact:.3f} exact")
    print(_cpu_seconds(head, args))


def _cpu_seconds(head: AnswerHead, args) -> str:
    """CPU seconds per page (all threads, so a loaded machine does not inflate them): the
    head's candidates, features and scores for every field, against the page's OCR."""
    from cropvlm.answer_head.examples import field_candidates
    from cropvlm.answer_head.features import Page
    from cropvlm.answer_head.ocr_cache import read_document
    from cropvlm.labels import load_labels
    from cropvlm.readers.ocr_lines import lines_from_pieces

    labels = load_labels(args.folder, load_template_set(args.templates))
    specs = list(labels.fields.values())
    pages = [p for doc in labels.documents for p in read_document(labels.folder / doc, cache=args.cache)]
    start = time.process_time()
    for p in pages:
        page = Page.of(lines_from_pieces(p.pieces), p.size)
        for spec in specs:
            head.pick(field_candidates([page], spec))
    head_s = (time.process_time() - start) / len(pages)
    start = time.process_time()
    timed = labels.documents[: args.time_ocr]
    read = sum(len(read_document(labels.folder / doc)) for doc in timed)  # no cache: the engine runs
    ocr_s = (time.process_time() - start) / max(read, 1)
    return (f"CPU s per page: answer head {head_s:.3f} ({len(specs)} fields, {len(pages)} pages), "
            f"OCR {ocr_s:.3f} ({read} pages): the head costs {head_s / ocr_s:.1%} of the OCR")


if __name__ == "__main__":
    main()
