"""`cropvlm demo` (what `make demo` runs): the main job on embedded defaults.

Generates sample receipts and invoices (deterministic synthetic documents), extracts them
with the shipped trained crop policy (`default`, so every answer comes with its learned
crop) and the offline OCR reader into SQLite through Prefect's ephemeral API, then prints a
summary and the SQL to look at the results. `cropvlm extract` itself defaults to the
promoted policy instead (`full` until one is promoted; docs/learning.md, "Retraining").
"""

from __future__ import annotations

from pathlib import Path

from cli.main import print_summary, run_extract
from cropvlm.synthetic import write_dataset

TEMPLATES = {"receipt": "templates/receipt.yaml", "invoice": "templates/invoice.yaml"}
SQL_EXAMPLES = """\
-- one row per document and field (the most confident page):
SELECT document_uri, field, answer, confidence FROM document_fields ORDER BY document_uri, field;
-- every candidate answer with its crop (percent of the page) and provenance:
SELECT document_uri, page_number, field, answer, confidence, crop_x1, crop_y1, crop_x2, crop_y2,
       crop_uri, policy, reader, extracted_at FROM extracted_fields;
-- what failed, and why:
SELECT uri, error FROM run_documents WHERE status = 'failed';"""


DEMO_POLICY = "default"  # the bundled policy trained by the retrain flow


def run_demo(folder: str, per_kind: int, policy: str = DEMO_POLICY) -> int:
    root = Path(folder)
    worst = 0
    for kind, template in TEMPLATES.items():
        target = root / f"{kind}s"
        labels = root / f"{kind}s.labels.jsonl"  # gold answers, kept out of the source folder
        if not labels.exists():
            write_dataset(target, n=per_kind, seed=2026, kinds=(kind,))
            (target / "labels.jsonl").replace(labels)
            print(f"generated {per_kind} sample {kind}s in {target}/ (gold answers: {labels})")
        summary = run_extract(str(target), [_template_path(template)], policy=policy)
        if isinstance(summary, int):  # no summary: the run's exit status
            return summary
        print_summary(summary)
        worst = max(worst, 1 if summary["documents_failed"] else 0)
    _print_results()
    return worst


def _template_path(relative: str) -> str:
    here = Path(relative)
    return str(here if here.exists() else Path(__file__).resolve().parent.parent / relative)


def _print_results() -> None:
    from storage import queries
    from storage.db import make_engine, make_session_factory
    from storage.settings import Settings

    settings = Settings()
    with make_session_factory(make_engine(settings.database_url)).begin() as session:
        rows = sorted(queries.best_fields(session, limit=16), key=lambda r: (r["document_uri"], r["field"]))
    print(f"\nresults are in {settings.safe_database_url()}; a few of them:")
    for row in rows:
        name, answer = Path(row["document_uri"]).name, row["answer"][:40]
        print(f"  {name:<20} {row['field']:<15} {answer!r:<44} confidence {row['confidence']:.2f}")
    print("\nLook at them with SQL (e.g. `sqlite3 .cropvlm/cropvlm.db`):\n" + SQL_EXAMPLES)
