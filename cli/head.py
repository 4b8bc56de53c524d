"""`cropvlm train-head`: fit the OCR reader's answer head on labelled documents.

    cropvlm train-head FOLDER [FOLDER ...] --out DIR [--heldout FOLDER] [--templates YAML ...]
    cropvlm train-head --synthetic 240 --languages all --out DIR --heldout FOLDER

Use the written folder with the reader spec `ocr:rapidocr-spaced@768+head=DIR`. The head the
default reader ships with (`+head=default`, cropvlm/answer_head/default_head) was written by
`--synthetic 140 --languages all --seed 7` with the receipt and invoice templates
(reports/answer_head/README.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from cropvlm.errors import CropVLMError


def add_commands(commands) -> None:
    train = commands.add_parser("train-head", help="fit the OCR reader's answer head on labelled documents")
    train.add_argument("folders", nargs="*", metavar="FOLDER", help="folders of documents with a labels.jsonl")
    train.add_argument("--synthetic", type=int, default=0, metavar="N", help="also N generated documents")
    train.add_argument("--languages", default="en", help="languages of the generated documents: en,nl,... or all")
    train.add_argument("--seed", type=int, default=7, help="seed of the generated documents")
    train.add_argument("--heldout", metavar="FOLDER", help="labelled folder to score the head on (never trained on)")
    train.add_argument("--templates", action="append", metavar="YAML", help="answer types and aliases by field")
    train.add_argument("--engine", default="rapidocr-spaced", help="OCR engine (as in the reader spec)")
    train.add_argument("--budget", type=int, default=768, help="pixel budget (long side) the reader reads at")
    train.add_argument("--cache", metavar="DIR", help="keep page OCR here between runs (it takes seconds a page)")
    train.add_argument("--no-zoom", dest="zoom", action="store_false",
                       help="no zoom boosters: free text is chosen from the page's read alone")
    train.add_argument("--out", required=True, metavar="DIR", help="head folder to write")
    train.set_defaults(handler=_train_head)


def _train_head(args: argparse.Namespace) -> int:
    from cropvlm.answer_head.dataset import folder_examples
    from cropvlm.answer_head.scores import score_head
    from cropvlm.answer_head.training import fit_zooming_head
    from cropvlm.synthetic.document import TEMPLATE_DIR
    from cropvlm.templates import load_template_set

    if not args.folders and not args.synthetic:
        print("cropvlm: train-head needs a FOLDER or --synthetic N", file=sys.stderr)
        return 2
    try:
        templates = load_template_set(args.templates) if args.templates else None
        settings = dict(engine=args.engine, budget=args.budget, cache=args.cache, on_document=_progress)
        with tempfile.TemporaryDirectory() as tmp:
            sets = [(folder, templates) for folder in args.folders]
            sources = list(args.folders)
            if args.synthetic:  # receipts and invoices: their own templates give types and aliases
                generated = load_template_set([TEMPLATE_DIR / "receipt.yaml", TEMPLATE_DIR / "invoice.yaml"])
                sets.append((_synthetic(tmp, args), generated))
                sources.append(f"synthetic:{args.synthetic}:{args.languages}:seed={args.seed}")

            def examples(zoom_head):
                return [ex for folder, specs in sets
                        for ex in folder_examples(folder, specs, zoom_head=zoom_head, **settings)]

            head = fit_zooming_head(examples, trained_on=", ".join(sources), zoom=args.zoom)
        head.config["reader"] = f"ocr:{args.engine}@{args.budget}"
        if args.heldout:
            scores = score_head(head, folder_examples(args.heldout, templates, zoom_head=head if head.zoom_boosters else None,
                                                     **settings))
            head.config["heldout"] = {"folder": args.heldout, "n": scores.n, "exact": round(scores.exact, 4),
                                      "rules": round(scores.rules, 4), "ece": round(scores.ece, 4)}
            print(scores.table())
            print(f"calibration error {scores.ece:.3f}")
        folder = head.save(args.out)
    except (CropVLMError, ValueError, OSError) as exc:
        print(f"cropvlm: train-head failed: {exc}", file=sys.stderr)
        return 2
    print(f"written: {folder} ({head.version}, {head.config['documents']} documents, "
          f"{head.config['answers']} answers)")
    return 0


def _synthetic(folder: str, args: argparse.Namespace) -> str:
    from cropvlm.synthetic.dataset import write_dataset
    from cropvlm.synthetic.languages import LANGUAGES

    languages = LANGUAGES if args.languages == "all" else tuple(args.languages.split(","))
    write_dataset(folder, args.synthetic, seed=args.seed, languages=languages)
    return folder


def _progress(done: int, total: int) -> None:
    if done == total or done % 20 == 0:
        print(f"read {done}/{total} documents", file=sys.stderr, flush=True)
