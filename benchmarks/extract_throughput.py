"""Throughput, memory and orchestration overhead of the extract flow on this machine.

    python benchmarks/extract_throughput.py                       # 500 receipts, default reader
    python benchmarks/extract_throughput.py --documents 50 --reader ocr:tesseract@768

Generates synthetic documents (mixed PDF/PNG/JPEG/TIFF) in a temporary folder, runs the
`extract` flow on them with a fresh SQLite database and Prefect's ephemeral API, and reports:
pages/s, seconds per answer, RSS at the start and end of the batch (should stay flat), and
orchestration overhead = flow wall time minus the time during which the policy or the reader
was running (the union of their call intervals, so parallel batches are not double counted),
as a share of the wall time.
Targets (issue 2): overhead <= 10%, >= 1 page/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cropvlm.synthetic import write_dataset  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """Samples RSS twice a second; keeps the samples with the documents done at that time."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[int, float]] = []
        self.done = 0
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(0.5):
            self.samples.append((self.done, rss_mib()))

    def stop(self) -> None:
        self._stop.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--kind", choices=["receipt", "invoice"], default="receipt")
    parser.add_argument("--policy", default="full")
    parser.add_argument("--reader", default="ocr:rapidocr@768")
    parser.add_argument("--workers", type=int, default=2, help="concurrent document batches")
    parser.add_argument("--batch-documents", type=int, default=8)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    from prefect.task_runners import ThreadPoolTaskRunner

    from flows import extract as extract_module

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        started = time.perf_counter()
        write_dataset(folder, n=args.documents, seed=7, kinds=(args.kind,))
        (folder / "labels.jsonl").unlink()  # not a document
        generated = time.perf_counter() - started
        flow = extract_module.extract.with_options(task_runner=ThreadPoolTaskRunner(max_workers=args.workers))

        # Warm up (Prefect's ephemeral API, model loading) on a separate tiny folder.
        warm = Path(tmp) / "warm"
        write_dataset(warm, n=2, seed=99, kinds=(args.kind,))
        (warm / "labels.jsonl").unlink()
        common = dict(templates=[str(REPO / f"templates/{args.kind}.yaml")], policy=args.policy,
                      reader=args.reader, batch_documents=args.batch_documents,
                      database_url=f"sqlite:///{tmp}/bench.db", artifacts_uri=f"{tmp}/artifacts")
        flow(source=str(warm), **common)

        sampler = RssSampler()
        extract_module.progress_listeners.append(lambda done, total: setattr(sampler, "done", done))
        rss_start = rss_mib()
        sampler.start()
        summary = flow(source=str(folder), **common)
        sampler.stop()
        rss_end = rss_mib()

    wall = summary["wall_seconds"]
    model = summary["model_busy_seconds"]
    pages, answers = summary["pages_processed"], summary["answers_written"]
    tenth = [rss for done, rss in sampler.samples if done >= args.documents // 10]
    results = {
        "documents": args.documents, "kind": args.kind, "policy": args.policy, "reader": args.reader,
        "workers": args.workers, "batch_documents": args.batch_documents,
        "extracted": summary["documents_extracted"], "failed": summary["documents_failed"],
        "pages": pages, "answers": answers, "wall_s": round(wall, 1),
        "pages_per_s": round(pages / wall, 3), "s_per_answer": round(wall / max(answers, 1), 3),
        "model_busy_s": round(model, 1),
        "policy_s": round(summary["policy_seconds"], 1), "reader_s": round(summary["reader_seconds"], 1),
        "overhead_pct": round(100 * (wall - model) / wall, 1),
        "rss_start_mib": round(rss_start), "rss_after_10pct_mib": round(tenth[0]) if tenth else None,
        "rss_end_mib": round(rss_end), "rss_peak_mib": round(max(r for _, r in sampler.samples)),
        "generate_s": round(generated, 1), "cpu_count": os.cpu_count(),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
