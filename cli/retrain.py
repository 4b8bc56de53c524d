"""`cropvlm retrain`: run the retrain flow in-process.

    cropvlm retrain --synthetic 600 --synthetic-heldout 100 --init scratch   # a policy from nothing
    cropvlm retrain                                                          # from the promoted one, on the labels

Exit status 0 when a candidate was trained and judged (promoted or not), 2 when training
could not run (no data, a failing reader, a bad setting); the promoted policy is then untouched.
"""

from __future__ import annotations

import argparse
import json
import sys

from cropvlm.specs import DEFAULT_READER


def add_commands(commands: argparse._SubParsersAction) -> None:
    retrain = commands.add_parser("retrain", help="train a candidate crop policy; promote it if it wins on held-out labels")
    retrain.add_argument("--judge", default=DEFAULT_READER, help=f"reader that rewards and judges (default {DEFAULT_READER})")
    retrain.add_argument("--init", choices=("promoted", "scratch"), default="promoted",
                         help="start from the promoted policy (default) or from random weights")
    retrain.add_argument("--synthetic", type=int, default=0, metavar="N", help="synthetic training documents")
    retrain.add_argument("--synthetic-heldout", type=int, default=0, metavar="N", help="synthetic held-out documents")
    retrain.add_argument("--synthetic-seed", type=int, default=0)
    retrain.add_argument("--no-labels", action="store_true", help="ignore the labels table")
    retrain.add_argument("--grounding", default="rapidocr", metavar="ENGINE|none",
                         help="OCR engine that locates labelled answers on their pages for the SFT "
                              "warm start (default rapidocr); 'none' trains on labels with GRPO only")
    retrain.add_argument("--margin", type=float, default=0.02, help="held-out exact-match margin to promote")
    retrain.add_argument("--size-shift", type=int, default=None, metavar="BINS",
                         help="size bins (each ~1.3x the side) added to the candidate's boxes when served, "
                              "so names and addresses are not cut (default: the parent's, 0 from scratch)")
    retrain.add_argument("--train", default="{}", metavar="JSON",
                         help='training settings, e.g. \'{"sft_steps": 800, "grpo": {"steps": 60}}\'')
    retrain.add_argument("--workdir", help="local scratch folder (default: a temporary one)")
    retrain.add_argument("--export", metavar="DIR", help="also copy the candidate's files here")
    retrain.add_argument("--database-url", help="default $DATABASE_URL")
    retrain.set_defaults(handler=_retrain)


def _retrain(args: argparse.Namespace) -> int:
    from cropvlm.errors import CropVLMError
    from flows.retrain import retrain
    from storage.errors import StorageError

    try:
        overrides = json.loads(args.train)
    except ValueError as exc:
        print(f"cropvlm: --train is not JSON: {exc}", file=sys.stderr)
        return 2
    try:
        result = retrain(
            judge=args.judge, init=args.init, synthetic_documents=args.synthetic,
            synthetic_heldout=args.synthetic_heldout, synthetic_seed=args.synthetic_seed,
            use_labels=not args.no_labels,
            grounding=None if args.grounding == "none" else args.grounding, margin=args.margin, size_shift=args.size_shift, train=overrides, workdir=args.workdir,
            database_url=args.database_url, export_to=args.export,
        )
    except (CropVLMError, StorageError, ValueError, TypeError, OSError) as exc:
        print(f"cropvlm: retrain failed: {exc}", file=sys.stderr)
        return 2
    print(f"candidate {result['candidate']}: {result['decision']} ({result['note']})")
    for name, scores in result["heldout"].items():
        print(f"  {name:10s} exact {scores['exact']:.3f}  ANLS {scores['anls']:.3f}  n={scores['n']}")
    return 0
