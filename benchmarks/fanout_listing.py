"""The parent's side of a sharded extract run, without workers: listing a source streamed and
cutting it into shards (app/fanout.py), and optionally claiming every key as the shards
would (a find + claim transaction per document); seconds and peak RSS.

    python benchmarks/fanout_listing.py --keys 100000 --shard 500
    python benchmarks/fanout_listing.py --keys 100000 --claim --database-url postgresql://postgres@127.0.0.1/bench

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


def claim_all(database_url: str, shards: list[list[str]]) -> None:
    from app.resources import get_session_factory
    from storage import claims, queries
    from storage.claims import ClaimKey
    from storage.db import prepare_database

    prepare_database(database_url)
    sessions = get_session_factory(database_url)
    with sessions.begin() as session:
        queries.ensure_template_set(session, "t" * 64, "bench", "{}")
        run_id = queries.start_run(session, flow_run_id=None, source="bench", template_set_hash="t" * 64,
                                   policy="full", reader="bench", parameters={})
    for keys in shards:
        for key in keys:
            sha256 = hashlib.sha256(key.encode()).hexdigest()
            with sessions.begin() as session:  # as app/extract.py does per document
                if queries.find_extraction(session, sha256, "t" * 64, "full", "bench") is None:
                    claims.claim_document(session, ClaimKey(sha256, "t" * 64, "full", "bench"), run_id, 900)
    with sessions.begin() as session:
        queries.finish_run(session, run_id, status="completed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--shard", type=int, default=500, help="documents per shard")
    parser.add_argument("--folder", type=Path, help="folder of empty files (made if short; default: temporary)")
    parser.add_argument("--claim", action="store_true", help="also claim every key, one transaction each")
    parser.add_argument("--database-url", help="for --claim (default: a temporary SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch) / "docs"
        folder.mkdir(parents=True, exist_ok=True)
        made = time.perf_counter()
        make_folder(folder, args.keys)
        made = time.perf_counter() - made
        rss_before = peak_rss_mib()

        started = time.perf_counter()
        listed, shard_count = 0, 0
        kept = []  # --claim: the shards, as the shard runs would get them
        for shard in fanout.cut_shards(fanout.list_keys(str(folder)), args.shard):
            listed, shard_count = listed + len(shard.keys), shard_count + 1
            if args.claim:
                kept.append(shard.keys)
        listing_s = time.perf_counter() - started
        rss_listing = peak_rss_mib()

        claim_s = None
        if args.claim:
            started = time.perf_counter()
            claim_all(args.database_url or f"sqlite:///{scratch}/bench.db", kept)
            claim_s = time.perf_counter() - started
        print(json.dumps({
            "keys": listed, "shards": shard_count, "shard_documents": args.shard, "folder_made_s": round(made, 1),
            "listing_and_cutting_s": round(listing_s, 2), "claiming_s": None if claim_s is None else round(claim_s, 1),
            "peak_rss_mib_before": round(rss_before, 1), "peak_rss_mib_after_listing": round(rss_listing, 1),
            "peak_rss_mib": round(peak_rss_mib(), 1),
        }, indent=2))


if __name__ == "__main__":
    main()
