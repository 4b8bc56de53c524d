"""`cropvlm retrain`: run the retrain flow in-process.

    cropvlm retrain --synthetic 600 --synthetic-heldout 100 --init scratch   # a policy from nothing
    cropvlm retrain                                                          # from the promoted one, on the labels
    cropvlm retrain --no-train-policy                                        # the OCR answer head alone

Exit status 0 when a candidate was trained and judged (promoted or not), 2 when training
could not run (no data, a failing reader, a bad setting); the promoted policy is then untouched.
Options and their defaults: `RetrainParams` (app/params.py).
"""

from __future__ import annotations

import argparse
import sys

from app.params import RetrainParams
from cli.options import add_options, fields_from


def add_commands(commands: argparse._SubParsersAction) -> None:
    retrain = commands.add_parser("retrain", help="train a candidate crop policy and OCR answer head; promote "
                                  "each if it wins on held-out labels")
    add_options(
        retrain, RetrainParams,
        ["judge", "init", "synthetic_documents", "synthetic_heldout", "synthetic_seed", "use_labels", "grounding",
         "margin", "size_shift", "train", "workdir", "export_to", "database_url", "train_policy", "answer_head",
         "head_min_documents", "templates"],
        templates={"metavar": "YAML"}, synthetic_documents={"flag": "--synthetic"}, use_labels={"flag": "--no-labels"},
        grounding={"metavar": "ENGINE|none"}, size_shift={"metavar": "BINS"}, workdir={"metavar": "DIR"},
        export_to={"flag": "--export", "metavar": "DIR"},
    )
    retrain.set_defaults(handler=_retrain)


def _retrain(args: argparse.Namespace) -> int:
    from cropvlm.errors import CropVLMError
    from flows.retrain import retrain
    from flows.temporary_server import temporary_api_server
    from storage.errors import StorageError

    try:
        with temporary_api_server():  # as for extract: a killed retrain leaves no server behind
            result = retrain(**fields_from(args, RetrainParams))
    except (CropVLMError, StorageError, ValueError, TypeError, OSError) as exc:
        print(f"cropvlm: retrain failed: {exc}", file=sys.stderr)
        return 2
    head = result["answer_head"]
    print(f"answer head {head.get('version', '')}: {head['decision']} ({head['note']})")
    for name, scores in head["heldout"].items():
        print(f"  {name:10s} exact {scores['exact']:.3f}  n={scores['n']}")
    if result["candidate"] is not None:
        print(f"candidate {result['candidate']}: {result['decision']} ({result['note']})")
        for name, scores in result["heldout"].items():
            print(f"  {name:10s} exact {scores['exact']:.3f}  ANLS {scores['anls']:.3f}  n={scores['n']}")
    return 0
