"""Answer-by-answer comparison of two `cropvlm evaluate` runs on the same documents.

    python benchmarks/compare_answers.py BEFORE/answers.csv AFTER/answers.csv [--show 10]

For every (policy, document, field) in both runs: how many answers went wrong -> right and
right -> wrong, per policy and field, and the first `--show` regressions with their text.
A change to a reader is kept only if it fixes more than it breaks, and the breaks are read.
Policies are matched by kind (`heatmap:heatmap#1a2b` and `heatmap:/x` are both "heatmap").
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter


def policy_kind(policy: str) -> str:
    return policy.split(":")[0].split("@")[0]


def load(path: str) -> dict[tuple[str, str, str, str], dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {(row["reader"], policy_kind(row["policy"]), row["doc"], row["field"]): row
                for row in csv.DictReader(handle)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--show", type=int, default=10, help="regressions to print")
    args = parser.parse_args(argv)
    before, after = load(args.before), load(args.after)
    common = sorted(set(before) & set(after))
    flips: Counter = Counter()
    regressions = []
    for key in common:
        was, now = before[key]["exact"] == "1", after[key]["exact"] == "1"
        if was != now:
            flips[(key[1], key[3], "fixed" if now else "broken")] += 1
            if was:
                regressions.append((key, before[key]["prediction"], after[key]["prediction"], after[key]["gold"]))
    print(f"{len(common)} answers compared; fixed {sum(v for k, v in flips.items() if k[2] == 'fixed')}, "
          f"broken {sum(v for k, v in flips.items() if k[2] == 'broken')}")
    for (policy, field, kind), count in sorted(flips.items()):
        print(f"  {policy:10s} {field:16s} {kind:7s} {count}")
    for (reader, policy, doc, field), was, now, gold in regressions[: args.show]:
        print(f"  broken: {policy} {doc} {field}: gold {gold!r}, was {was!r}, now {now!r}")


if __name__ == "__main__":
    main()
