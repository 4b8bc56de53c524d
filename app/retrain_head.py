"""Fit the OCR reader's answer head on reviewed answers, judge it, promote it or not.

Plain Python (no Prefect): `tasks/retrain.py` wraps these steps. The labels table's train
split is what the head learns from; its held-out split judges it against what extraction
would otherwise use: the promoted head, else the judge's own (the shipped `+head=default`),
else the rules, with the crop policy's margin. The promoted head is what
extraction's OCR reader uses when its spec is the head's reader (`app/resources.py`,
`resolve_reader`). Too few labelled documents, or a judge that is not an OCR reader: the
step is skipped with the reason and the promoted head stays.

Artifacts: `heads/head-<hash>/` in the object store (config.json and one LightGBM model per
answer type), a registry row with role 'answer_head'.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.params import RetrainParams
from app.resources import fetch_head, get_session_factory
from cropvlm.labels import Label, infer_type
from cropvlm.render import RenderConfig
from cropvlm.specs import BUNDLED_HEAD, BUNDLED_HEAD_NAME, parse_ocr_spec
from cropvlm.templates import FieldSpec, load_template_set
from storage import labels as label_store
from storage import registry
from storage.folders import upload_folder
from storage.objectstore import read_uri

log = logging.getLogger(__name__)
ROLE = "answer_head"


@dataclass(frozen=True)
class HeadLabels:
    train: list[Label]
    heldout: list[Label]
    specs: dict[str, FieldSpec]  # by field: type and aliases, as extraction asks
    fingerprint: str  # of the label ids: new labels, new head

    def documents(self, split: str) -> int:
        return len({label.doc for label in getattr(self, split)})


def load_head_labels(params: RetrainParams) -> HeadLabels:
    with get_session_factory(params.database_url).begin() as session:
        rows = label_store.current_labels(session)
    train, heldout = [], []
    for row in rows:
        label = Label(row.uri, row.field, row.answer, row.question or row.field, row.page_number, None, row.answer_type)
        (heldout if row.split == "heldout" else train).append(label)
    templates = {spec.field: spec for spec in load_template_set(params.templates).fields}
    specs = {}
    for label in train + heldout:  # a field not in the templates: its labels' question and type
        specs.setdefault(label.field, templates.get(label.field) or FieldSpec(
            label.field, label.question, label.type or infer_type(label.question)))
    digest = hashlib.sha256(",".join(str(row.label_id) for row in rows).encode()).hexdigest()[:16]
    return HeadLabels(train, heldout, specs, digest)


def fit_head_candidate(params: RetrainParams) -> dict:
    """Fit and register a candidate head: {decision: "candidate", version, folder, ...}, or
    {decision: "skipped", note} when there is nothing it could be fitted on."""
    from cropvlm.answer_head.training import fit_zooming_head

    judge = parse_ocr_spec(params.judge)  # a head learns from the page OCR of its ocr:ENGINE@BUDGET
    if judge is None:
        return _skipped(f"the judge {params.judge!r} is not an OCR reader (ocr:ENGINE@BUDGET)")
    labels = load_head_labels(params)
    documents = labels.documents("train")
    if documents < params.head_min_documents:
        return _skipped(f"{documents} labelled training documents, fewer than head_min_documents "
                        f"({params.head_min_documents})")
    workdir = _workdir(params)
    head = fit_zooming_head(lambda zoom_head: _examples(params, labels.train, labels.specs, workdir, zoom_head),
                            trained_on=f"labels (train split, {documents} documents, {labels.fingerprint})")
    head.config["reader"] = judge.base
    folder = head.save(tempfile.mkdtemp(prefix="head-", dir=workdir))
    artifact_uri = upload_folder(params.artifacts_uri, f"heads/{head.version.replace('#', '-')}", folder)
    metrics = {"train_documents": documents, "train_answers": head.config["answers"]}
    with get_session_factory(params.database_url).begin() as session:
        registry.register_candidate(session, version=head.version, kind="lightgbm", role=ROLE,
                                    artifact_uri=artifact_uri, config=head.config, metrics=metrics,
                                    reader=judge.base)
    log.info("answer head %s fitted on %d answers of %d documents", head.version, head.config["answers"], documents)
    return {"decision": "candidate", "version": head.version, "folder": str(folder), "artifact_uri": artifact_uri,
            "metrics": metrics}


def decide_head(params: RetrainParams, candidate: dict) -> dict:
    """Score the candidate on the held-out labels beside the promoted head (or the rules);
    promote it only if it wins by `params.margin`."""
    from cropvlm.answer_head.model import AnswerHead
    from cropvlm.answer_head.scores import score_head

    if candidate["decision"] == "skipped":
        return candidate
    labels = load_head_labels(params)
    if not labels.heldout:
        return {**candidate, "note": "no held-out labels to judge it on: left a candidate", "heldout": {}}
    def scored(head: AnswerHead):  # zoomed around each head's own picks
        return score_head(head, _examples(params, labels.heldout, labels.specs, _workdir(params),
                                          head if head.zoom_boosters else None))

    scores = scored(AnswerHead.load(candidate["folder"]))
    heldout = {"candidate": _summary(scores), "rules": {"n": scores.n, "exact": round(scores.rules, 4)}}
    with get_session_factory(params.database_url).begin() as session:
        incumbent = registry.promoted(session, role=ROLE)
    judge = parse_ocr_spec(params.judge)
    bar_name, bar = "rules", scores.rules
    if incumbent is not None and incumbent.version != candidate["version"] and incumbent.reader == judge.base:
        bar_name, folder = "promoted", fetch_head(incumbent.version, incumbent.artifact_uri)
    elif judge.head == BUNDLED_HEAD_NAME:
        bar_name, folder = "shipped", BUNDLED_HEAD
    if bar_name != "rules":
        incumbent_scores = scored(AnswerHead.load(folder))
        heldout[bar_name] = _summary(incumbent_scores)
        bar = incumbent_scores.exact
    won = scores.exact >= bar + params.margin
    note = (f"held-out exact {scores.exact:.3f} vs {bar_name} {bar:.3f} (margin {params.margin:g}, n={scores.n}, "
            f"calibration error {scores.ece:.3f}, judge {params.judge})")
    with get_session_factory(params.database_url).begin() as session:
        registry.update_metrics(session, candidate["version"], {**candidate["metrics"], "heldout": heldout})
        if won:
            registry.promote(session, candidate["version"], note=note)
        elif registry.get_version(session, candidate["version"]).status != "promoted":  # a refit of the promoted one
            registry.reject(session, candidate["version"], note=note)
    log.info("answer head %s: %s", candidate["version"], note)
    return {**candidate, "decision": "promoted" if won else "rejected", "note": note, "heldout": heldout}


def _examples(params: RetrainParams, labels: list[Label], specs: dict[str, FieldSpec], workdir: Path,
              zoom_head=None):
    from cropvlm.answer_head.dataset import label_examples

    judge = parse_ocr_spec(params.judge)
    return label_examples(labels, specs, read_uri, judge.engine, judge.budget, cache=workdir / "ocr-cache",
                          render=RenderConfig(dpi=params.dpi), zoom_head=zoom_head)


def _summary(scores) -> dict:
    share, exact = scores.at_threshold(0.5)
    return {"n": scores.n, "exact": round(scores.exact, 4), "rules": round(scores.rules, 4),
            "ceiling": round(scores.ceiling, 4), "ece": round(scores.ece, 4),
            "by_field": {f: round(v[1], 4) for f, v in scores.by_field.items()},
            "share_at_0.5": round(share, 4), "exact_at_0.5": round(exact, 4)}


def _workdir(params: RetrainParams) -> Path:
    """Page OCR is kept here (seconds a page): judging reads the held-out pages again, and a
    rerun with a `workdir` reads nothing twice."""
    folder = Path(params.workdir) if params.workdir else Path(tempfile.gettempdir()) / "cropvlm-heads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _skipped(reason: str) -> dict:
    log.info("answer head skipped: %s", reason)
    return {"decision": "skipped", "note": f"answer head skipped: {reason}", "heldout": {}}
