"""Peak RSS of rendering a hostile PDF and of one batch of long documents (issue 17, item 6).

    python benchmarks/render_memory.py                     # this checkout
    python benchmarks/render_memory.py --code /work/main   # another checkout's code, for before/after

Each case runs in a fresh process, which reports its peak RSS (ru_maxrss) and that of the
render processes it started:
  hostile  render_document() on a 4 KB PDF of 10 pages of 14400 x 14400 pt, in process
  batch    extract_documents() on 8 PDFs of 10 A4 pages at 300 dpi (87 MP each, 696 MP in all),
           a stand-in reader, SQLite
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def hostile_pdf() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    for _ in range(10):
        doc.new_page(width=14400, height=14400).insert_text((72, 72), "TOTAL 12.50", fontsize=400)
    return doc.tobytes()


def long_pdf(seed: int) -> bytes:
    import pymupdf

    doc = pymupdf.open()
    for page_number in range(10):
        doc.new_page(width=595, height=842).insert_text((72, 72), f"DOC {seed} PAGE {page_number} TOTAL 12.50")
    return doc.tobytes()


def run_hostile() -> dict:
    from cropvlm.errors import DocumentError
    from cropvlm.render import render_document

    try:
        pages = render_document(hostile_pdf()).pages
        return {"rendered": [page.size for page in pages]}
    except DocumentError as exc:
        return {"refused": str(exc)}


def run_batch() -> dict:
    from app import extract as extraction
    from app.extract import ExtractJob, Models, extract_documents
    from app.params import ExtractParams
    from cropvlm.readers.base import Answer
    from cropvlm.templates import load_template_set
    from storage import queries
    from storage.db import make_engine, make_session_factory, upgrade_database

    class StandInReader:
        version = "stand-in"

        def answer(self, requests):
            return [Answer("12.50", "12.50", 0.9) for _ in requests]

    folder = Path(tempfile.mkdtemp(prefix="render-memory-"))
    for seed in range(8):
        (folder / f"doc-{seed}.pdf").write_bytes(long_pdf(seed))
    db_url = f"sqlite:///{folder / 'cropvlm.db'}"
    upgrade_database(db_url)
    templates = load_template_set([REPO / "templates/receipt.yaml"])
    with make_session_factory(make_engine(db_url)).begin() as session:
        queries.ensure_template_set(session, templates.content_hash, templates.name, templates.canonical_json())
        run_id = queries.start_run(session, flow_run_id=None, source=str(folder), template_set_hash=templates.content_hash,
                                   policy="full", reader="stand-in", parameters={})
    params = ExtractParams(source=str(folder), policy="full", reader="stand-in", dpi=300, database_url=db_url,
                           artifacts_uri=str(folder / "artifacts"))
    extraction.get_reader = lambda spec: StandInReader()
    job = ExtractJob(run_id, params, templates, Models("full", "full", "stand-in", "stand-in"))
    outcome = extract_documents(job, sorted(p.name for p in folder.glob("*.pdf")))
    return {"statuses": sorted({d.status for d in outcome.documents}), "pages": outcome.pages}


def measure(case: str, code: Path) -> dict:
    command = [sys.executable, __file__, "--run", case]
    env = {"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin"}
    result = json.loads(subprocess.run(command, env=env, cwd=code, check=True, capture_output=True, text=True).stdout)
    return {"case": case, "code": str(code), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose code is measured")
    parser.add_argument("--run", choices=["hostile", "batch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        result = run_hostile() if args.run == "hostile" else run_batch()
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["render_child_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(json.dumps(result))
        return
    for case in ("hostile", "batch"):
        print(json.dumps(measure(case, args.code.resolve())))


if __name__ == "__main__":
    main()
