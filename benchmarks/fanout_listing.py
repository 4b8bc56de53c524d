"""The parent's side of a sharded extract run, without workers: listing a source streamed and
cutting it into shards (app/fanout.py), and optionally claiming every key as the shards
would (claims.claim_unextracted, one transaction per batch of `--claim-batch` keys, as
app/extract.py claims a batch); seconds and peak RSS.

    python benchmarks/fanout_listing.py --keys 100000 --shard 500
    python benchmarks/fanout_listing.py --keys 100000 --claim --database-url postgresql://postgres@127.0.0.1/bench
    python benchmarks/fanout_listing.py --keys 100000 --claim --claim-batch 1 ...   # one document at a time

The folder (`--folder`, default a temporary one) gets `--keys` empty files, made once and
outside the timing. Claims stand for documents by the sha256 of their key (the files are
empty), into a migrated database. Target (issue 19): 100,000 keys in < 60 s and < 300 MiB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app import fanout  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss: KiB on Linux


def make_folder(folder: Path, keys: int) -> None:
    """`keys` empty files in 100 subfolders (a flat folder of 100,000 lists as well, only slower to make)."""
    present = sum(len(files) for _, _, files in os.walk(folder))
    for i in range(present, keys):
        path = folder / f"{i % 100:02}" / f"doc-{i:07}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


class Claimer:
    """Claims keys for one run, `batch` keys a transaction, as a shard's batches would."""

    def __init__(self, database_url: str, batch: int) -> None:
        from app.resources import get_session_factory
        from storage import queries
        from storage.db import prepare_database

        prepare_database(database_url)
        self.sessions, self.batch, self.seconds = get_session_factory(database_url), batch, 0.0
        with self.sessions.begin() as session:
            queries.ensure_template_set(session, "t" * 64, "bench", "{}")
            self.run_id = queries.start_run(session, flow_run_id=None, source="bench", template_set_hash="t" * 64,
                                            policy="full", reader="bench", parameters={})

    def claim(self, keys: list[str]) -> None:
        from storage import claims
        from storage.claims import ClaimKey

        started = time.perf_counter()
        for i in range(0, len(keys), self.batch):
            batch = [ClaimKey(hashlib.sha256(key.encode()).hexdigest(), "t" * 64, "full", "bench")
                     for key in keys[i:i + self.batch]]
            with self.sessions.begin() as session:
                done, holders = claims.claim_unextracted(session, batch, self.run_id, 900)
            assert not done and not holders, "a fresh run on a fresh database claims every key"
        self.seconds += time.perf_counter() - started

    def finish(self) -> None:
        from storage import queries

        with self.sessions.begin() as session:
            queries.finish_run(session, self.run_id, status="completed")  # releases the claims


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--shard", type=int, default=500, help="documents per shard")
    parser.add_argument("--folder", type=Path, help="folder of empty files (made if short; default: temporary)")
    parser.add_argument("--claim", action="store_true", help="also claim every key as the shards are cut")
    parser.add_argument("--claim-batch", type=int, default=8, help="keys per claim transaction (batch_documents)")
    parser.add_argument("--database-url", help="for --claim (default: a temporary SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch) / "docs"
        folder.mkdir(parents=True, exist_ok=True)
        made = time.perf_counter()
        make_folder(folder, args.keys)
        made = time.perf_counter() - made
        rss_before = peak_rss_mib()

        claimer = Claimer(args.database_url or f"sqlite:///{scratch}/bench.db", args.claim_batch) if args.claim else None
        started = time.perf_counter()
        listed, shard_count = 0, 0
        for shard in fanout.cut_shards(fanout.list_keys(str(folder)), args.shard):
            listed, shard_count = listed + len(shard.keys), shard_count + 1
            if claimer:
                claimer.claim(shard.keys)
        total_s = time.perf_counter() - started
        if claimer:
            claimer.finish()
        print(json.dumps({
            "keys": listed, "shards": shard_count, "shard_documents": args.shard, "folder_made_s": round(made, 1),
            "claim_batch": args.claim_batch if claimer else None,
            "listing_and_cutting_s": round(total_s - (claimer.seconds if claimer else 0), 2),
            "claiming_s": round(claimer.seconds, 1) if claimer else None, "total_s": round(total_s, 1),
            "peak_rss_mib_before": round(rss_before, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
        }, indent=2))


if __name__ == "__main__":
    main()
