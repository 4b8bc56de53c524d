"""What an operator reads about an extract run: its summary in markdown, the document × field
table with doubtful answers marked, its failures, and names for its batches.

Plain Python; flows/extract.py publishes the report as Prefect artifacts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.document_table import DocumentRow, document_table
from app.resources import get_session_factory
from storage import queries
from storage.settings import mask_url

TABLE_ROWS = 200  # documents (and failures) shown; `cropvlm export` has them all
REVIEW = "⚠"  # marks an answer that needs review (empty or below its threshold)


@dataclass
class RunReport:
    summary: str  # markdown
    fields: list[dict]  # one row per document: its name, then one column per field
    fields_description: str
    failures: list[dict]  # one row per failed document: its name and the error
    failures_description: str


def report_run(database_url: str, summary: dict, limit: int = TABLE_ROWS) -> RunReport:
    """The report of a closed run; `summary` is `queries.run_summary`'s."""
    run_id = summary["id"]
    with get_session_factory(database_url).begin() as session:
        table = document_table(queries.field_answers(session, run_id=run_id))
        failures = queries.run_documents(session, run_id, "failed", limit=limit)
    shown = table.documents[:limit]
    names = short_names([d.uri for d in shown] + [f["uri"] for f in failures])
    fields = [{"document": names[d.uri], **{f: answer_cell(d, f) for f in table.fields}} for d in shown]
    failed = summary["documents_by_status"]["failed"]
    return RunReport(
        summary=summary_markdown(summary, database_url),
        fields=fields,
        fields_description=(f"Run {run_id}: a row per document it extracted, a column per field: answer "
                            f"(confidence), {REVIEW} = needs review"
                            + _cut(len(shown), len(table.documents), f"cropvlm export --run {run_id} --out x.xlsx")),
        failures=[{"document": names[f["uri"]], "error": f["error"]} for f in failures],
        failures_description=f"Run {run_id}: documents that failed, and why" + _cut(
            len(failures), failed, f"SELECT uri, error FROM run_documents WHERE run_id = {run_id} AND status = 'failed'"),
    )


def answer_cell(document: DocumentRow, field: str) -> str:
    """"12.50 (0.93)"; "⚠ 12.50 (0.31)" when it needs review; "⚠ empty (0.00)"; "" if not asked."""
    row = document.answers.get(field)
    if row is None:
        return ""
    text = f"{row['answer'].strip() or 'empty'} ({row['confidence']:.2f})"
    return f"{REVIEW} {text}" if row["needs_review"] or not row["answer"].strip() else text


def summary_markdown(summary: dict, database_url: str) -> str:
    by_status, parameters = summary["documents_by_status"], summary["parameters"]
    code = "`{}`".format  # in code spans: "oracle@0.04" is no mail link

    def resolved(role: str) -> str:  # "`promoted` → `heatmap@1a2b`": the spec, then the version it named
        spec, version = parameters.get(f"{role}_spec", summary[role]), summary[role]
        return code(spec) if spec == version else f"{code(spec)} → {code(version)}"

    rows = [
        ("extracted", by_status["extracted"]),
        ("empty (no answer on any page)", f"{REVIEW} {by_status['empty']}" if by_status["empty"] else 0),
        ("skipped (done before)", by_status["skipped"]),
        ("failed", by_status["failed"]),
        ("documents", summary["documents_total"]),
        ("pages", summary["pages_processed"]),
        ("answers", summary["answers_written"]),
        ("seconds: wall / policy / reader",
         " / ".join(f"{summary[k] or 0:.1f}" for k in ("wall_seconds", "policy_seconds", "reader_seconds"))),
        ("policy", resolved("policy")),
        ("reader", resolved("reader")),
        ("templates", ", ".join(code(t) for t in parameters.get("templates", []))),
        ("source", code(summary["source"])),
        ("database", code(mask_url(database_url))),
    ]
    lines = [f"## Run {summary['id']}: {summary['status'].replace('_', ' ')}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def short_names(uris: Iterable[str]) -> dict[str, str]:
    """Each URI without the folder all of them share: "s3://b/in/x/a.pdf" -> "x/a.pdf"."""
    uris = list(uris)
    common = os.path.commonprefix(uris)
    common = common[: common.rfind("/") + 1]
    return {uri: uri[len(common):] for uri in uris}


def batch_name(number: int, keys: Sequence[str], kind: str = "batch") -> str:
    """A batch task's (or a shard flow's) run name: "batch 3: a.pdf … (8 docs)"."""
    first = keys[0] if len(keys[0]) <= 40 else "…" + keys[0][-39:]
    return f"{kind} {number}: {first}" + (f" … ({len(keys)} docs)" if len(keys) > 1 else "")


def _cut(shown: int, total: int, where_all: str) -> str:
    return "" if shown >= total else f"; the first {shown} of {total} (all: `{where_all}`)"
