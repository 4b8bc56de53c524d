"""`evaluate`: labels in, side-by-side metrics and report files out (plain Python)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cropvlm.errors import CropVLMError
from cropvlm.evaluation import report
from cropvlm.evaluation.metrics import MetricRow, Scored, aggregate, confidence_rows
from cropvlm.evaluation.runner import DEFAULT_POLICIES, ConfigStats, plan_configs, run_configs
from cropvlm.labels import LabelSet, load_labels
from cropvlm.policies.base import Policy
from cropvlm.readers.base import Reader
from cropvlm.render import RenderConfig
from cropvlm.specs import DEFAULT_READER, build_policy, build_reader
from cropvlm.templates import load_template_set


@dataclass
class Evaluation:
    rows: list[MetricRow]
    scored: list[Scored]
    stats: list[ConfigStats]
    notes: list[str]
    markdown: str
    summary: dict
    paths: dict[str, Path] = field(default_factory=dict)

    def csv_rows(self) -> list[dict]:
        """results.csv as dicts (what the flow returns)."""
        return [
            {"reader": r.reader, "policy": r.policy, "field": r.field, "n": r.n, "exact": round(r.exact, 4),
             "anls": round(r.anls, 4), "seconds_per_answer": round(r.seconds_per_answer, 4),
             "pixels_per_answer": round(r.pixels_per_answer)}
            for r in self.rows
        ]


def default_policies() -> list[str]:
    """Every baseline, plus the learned policy shipped in the package once it exists."""
    from cropvlm.specs import BUNDLED_POLICY

    return list(DEFAULT_POLICIES) + (["default"] if (BUNDLED_POLICY / "policy.onnx").is_file() else [])


def evaluate(
    folder: str | Path | None = None,
    *,
    synthetic: int = 0,
    seed: int = 0,
    templates: Sequence[str | Path] | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    readers: Sequence[str] | None = None,
    policies: Sequence[str] | None = None,
    full_resolution: bool = True,
    batch_documents: int = 8,
    dpi: int = 150,
    resolve_reader: Callable[[str], Reader] = build_reader,
    resolve_policy: Callable[[str], Policy] = build_policy,
    progress: Callable[[str], None] | None = print,
    documents_done: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Evaluate `folder` (documents + labels.jsonl) or `synthetic` generated documents."""
    if (folder is None) == (not synthetic):
        raise CropVLMError("give a folder with labels.jsonl or a number of synthetic documents, not both")
    if synthetic:
        if synthetic < 1:
            raise CropVLMError(f"synthetic must be >= 1, got {synthetic}")
        from cropvlm.synthetic import write_dataset

        kinds = synthetic_kinds(templates)
        with tempfile.TemporaryDirectory(prefix="cropvlm-eval-") as tmp:
            if progress is not None:
                progress(f"evaluate: generating {synthetic} synthetic documents ({', '.join(kinds)}; seed {seed})")
            write_dataset(tmp, synthetic, seed=seed, dpi=dpi, kinds=kinds)
            return _evaluate(Path(tmp), f"synthetic:{synthetic}@seed={seed}", templates, limit, out, readers,
                             policies, full_resolution, batch_documents, dpi, resolve_reader, resolve_policy, progress,
                             documents_done)
    return _evaluate(Path(folder), str(folder), templates, limit, out, readers, policies, full_resolution,
                     batch_documents, dpi, resolve_reader, resolve_policy, progress, documents_done)


def synthetic_kinds(templates: Sequence[str] | None) -> tuple[str, ...]:
    """The kinds of synthetic documents (invoice, receipt) whose fields `templates` all type;
    every kind without templates (types inferred from the questions)."""
    from cropvlm.synthetic.document import KINDS, questions

    if not templates:
        return KINDS
    template_set = load_template_set(templates)
    typed = {spec.field for spec in template_set.fields}
    kinds = tuple(kind for kind in KINDS if {name for name, _ in questions(kind)} <= typed)
    if not kinds:
        raise CropVLMError(
            f"the templates {template_set.name} type no kind of synthetic document: "
            + "; ".join(f"{kind} needs {', '.join(name for name, _ in questions(kind))}" for kind in KINDS)
            + " (give templates/receipt.yaml or templates/invoice.yaml, or no --templates)")
    return kinds


def _evaluate(folder, name, templates, limit, out, readers, policies, full_resolution, batch_documents, dpi,
              resolve_reader, resolve_policy, progress, documents_done=None) -> Evaluation:
    template_set = load_template_set(templates) if templates else None
    label_set: LabelSet = load_labels(folder, template_set, limit)
    readers = list(readers or [DEFAULT_READER])
    policies = list(policies or default_policies())
    configs, notes = plan_configs(readers, policies, label_set.has_boxes, full_resolution, resolve_reader)
    if progress is not None:
        progress(f"evaluate: {len(label_set.documents)} documents, {len(label_set.labels)} labels, "
                 f"configurations: " + ", ".join(f"{c.reader}/{c.policy}" for c in configs))
    run = run_configs(label_set, configs, batch_documents=batch_documents, render=RenderConfig(dpi=dpi),
                      resolve_reader=resolve_reader, resolve_policy=resolve_policy, progress=progress,
                      documents_done=documents_done)
    rows = aggregate(run.scored, list(label_set.fields))
    if run.errors:
        shown = "; ".join(run.errors[:5]) + (f"; and {len(run.errors) - 5} more" if len(run.errors) > 5 else "")
        notes = [*notes, f"failed (counted as wrong answers, left out of seconds and pixels): {len(run.errors)} "
                         f"document x configuration: {shown}"]
    types = ", ".join(f"{s.field} ({s.type})" for s in label_set.fields.values())
    header = [
        f"documents: {run.documents} ({run.pages} pages) from `{name}`; fields: {types}",
        f"types from: {'templates ' + template_set.name if template_set else 'the questions (inferred)'}; "
        f"render {run.render_seconds:.1f} s (once, shared); wall {run.wall_seconds:.0f} s",
    ]
    confidence = confidence_rows(run.scored)
    text = report.markdown(rows, run.stats, title=f"Evaluation of {Path(name).name or name}",
                           header_lines=header, notes=notes, confidence=confidence)
    summary = {
        "source": name, "documents": run.documents, "pages": run.pages, "labels": len(label_set.labels),
        "fields": {s.field: s.type for s in label_set.fields.values()},
        "templates": template_set.name if template_set else None,
        "render_seconds": run.render_seconds, "wall_seconds": run.wall_seconds, "notes": notes,
        "errors": run.errors,
        "configurations": [
            {"reader": s.reader, "policy": s.policy, "pages": s.pages, "answers": s.answers,
             "policy_seconds": s.policy_seconds, "reader_seconds": s.reader_seconds,
             "pages_per_second": s.pages_per_second}
            for s in run.stats
        ],
        "confidence": [
            {"reader": c.reader, "policy": c.policy, "n": c.n, "calibration_error": c.calibration_error,
             "coverage": [{"threshold": p.threshold, "share": p.share, "exact": p.exact} for p in c.coverage]}
            for c in confidence
        ],
    }
    evaluation = Evaluation(rows, run.scored, run.stats, notes, text, summary)
    if out is not None:
        evaluation.paths = report.write_report(out, rows, run.scored, run.stats, text, summary)
    return evaluation
