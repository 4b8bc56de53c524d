"""`AnswerHead`: gradient-boosted trees (LightGBM) that score answer candidates.

One booster per answer type (text, date, amount, id) scores each candidate (a ranking
score: higher is likelier the answer). The best candidate is the answer; its score, mapped
through an isotonic calibration fitted on held-out documents, is the answer's confidence
(the probability that it is right).

A head may also have zoom boosters (format 3): for the types in `zoom.ZOOM_TYPES` they
choose among the candidates of the page and of a region read again zoomed
(`cropvlm.answer_head.zoom`), with their own calibration.

A head is a folder: `config.json` (format, feature names, boosters, calibration, how it
was trained) beside one LightGBM text model per booster. Anything missing, corrupt or built
for other features is refused when the head is loaded, naming the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cropvlm.answer_head.examples import FieldCandidates, all_feature_names, zoom_feature_names
from cropvlm.errors import ReaderError

FORMAT = 3  # 3: zoom boosters; 2: ranking scores (still read); 1: probabilities
READS = (2, 3)
CONFIG = "config.json"
TYPES = ("text", "date", "amount", "id")


class HeadError(ReaderError):
    """An answer head folder that cannot be used: missing, corrupt or of another version."""


@dataclass(frozen=True)
class Pick:
    index: int  # into FieldCandidates.candidates; -1 = no candidate
    score: float  # the booster's ranking score for it
    confidence: float  # calibrated: the probability that the answer is right


@dataclass
class Calibration:
    """Isotonic map from a booster score to P(answer right): x ascending, y non-decreasing.
    Without points (too few picks to fit one) a logistic squash: a score in [0, 1], uncalibrated."""

    x: list[float]
    y: list[float]

    def __call__(self, score: float) -> float:
        if not self.x:
            return float(1.0 / (1.0 + np.exp(-score)))
        return float(np.interp(score, self.x, self.y))


class AnswerHead:
    def __init__(self, boosters: dict, calibration: dict[str, Calibration], config: dict, folder: Path | None = None,
                 zoom_boosters: dict | None = None, zoom_calibration: dict[str, Calibration] | None = None):
        self.boosters = boosters  # answer type -> lightgbm.Booster
        self.calibration = calibration
        self.zoom_boosters = zoom_boosters or {}  # answer type -> booster over page + zoomed candidates
        self.zoom_calibration = zoom_calibration or {}
        self.config = config
        self.folder = folder
        self.version = config["version"]

    def pick(self, field: FieldCandidates) -> Pick:
        """The best of one read's candidates (`field_candidates`)."""
        return _pick(self.boosters, self.calibration, field)

    def zooms(self, spec_type: str) -> bool:
        return spec_type in self.zoom_boosters

    def pick_zoomed(self, field: FieldCandidates) -> Pick:
        """The best of a page's and a zoomed read's candidates together (`zoom.combined`)."""
        return _pick(self.zoom_boosters, self.zoom_calibration, field)

    # --- files ---------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = _write(folder, self.boosters, "")
        zoom_files = _write(folder, self.zoom_boosters, "zoom-")
        config = {**self.config, "format": FORMAT, "features": all_feature_names(), "boosters": files,
                  "calibration": {k: {"x": c.x, "y": c.y} for k, c in self.calibration.items()},
                  "zoom_boosters": zoom_files,
                  "zoom_calibration": {k: {"x": c.x, "y": c.y} for k, c in self.zoom_calibration.items()}}
        config["version"] = f"head#{_digest(folder, {**files, **{'zoom-' + k: v for k, v in zoom_files.items()}})}"
        (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        self.config, self.version, self.folder = config, config["version"], folder
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> AnswerHead:
        folder = Path(folder)
        path = folder / CONFIG
        if not path.is_file():
            raise HeadError(f"answer head {folder}: no {CONFIG} (is it a head folder? train one with "
                            f"`cropvlm train-head`)")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HeadError(f"answer head {path}: unreadable config: {exc}") from exc
        if not isinstance(config, dict) or config.get("format") not in READS:
            raise HeadError(f"answer head {path}: format {config.get('format') if isinstance(config, dict) else '?'}, "
                            f"this version of cropvlm reads formats {list(READS)}: retrain the head")
        if config.get("features") != all_feature_names():
            raise HeadError(f"answer head {path}: built for other features than this version of cropvlm "
                            f"computes: retrain the head")
        boosters = _read(folder, config.get("boosters"), len(all_feature_names()))
        zoom_boosters = _read(folder, config.get("zoom_boosters"), len(zoom_feature_names()))
        return cls(boosters, _calibrations(config.get("calibration")), config, folder,
                   zoom_boosters, _calibrations(config.get("zoom_calibration")))


def _pick(boosters: dict, calibration: dict[str, Calibration], field: FieldCandidates) -> Pick:
    booster = boosters.get(field.spec.type)
    if booster is None or not len(field.candidates):
        return Pick(-1, 0.0, 0.0)
    scores = booster.predict(field.features)  # [n_candidates]
    best = int(np.argmax(scores))
    calibrate = calibration.get(field.spec.type)
    score = float(scores[best])
    return Pick(best, score, calibrate(score) if calibrate else score)


def _write(folder: Path, boosters: dict, prefix: str) -> dict[str, str]:
    files = {}
    for kind, booster in boosters.items():
        name = f"{prefix}{kind}.txt"
        (folder / name).write_text(booster.model_to_string(), encoding="utf-8")
        files[kind] = name
    return files


def _read(folder: Path, files: dict | None, n_features: int) -> dict:
    import lightgbm

    boosters = {}
    for kind, name in (files or {}).items():
        model = folder / name
        if kind not in TYPES or not model.is_file():
            raise HeadError(f"answer head {folder}: booster for {kind!r} missing ({model})")
        try:
            boosters[kind] = lightgbm.Booster(model_str=model.read_text(encoding="utf-8"))
        except (lightgbm.basic.LightGBMError, OSError, UnicodeDecodeError) as exc:
            raise HeadError(f"answer head {model}: corrupt LightGBM model: {exc}") from exc
        if boosters[kind].num_feature() != n_features:
            raise HeadError(f"answer head {model}: {boosters[kind].num_feature()} features, expected "
                            f"{n_features}: retrain the head")
    return boosters


def _calibrations(points: dict | None) -> dict[str, Calibration]:
    return {k: Calibration(list(v["x"]), list(v["y"])) for k, v in (points or {}).items()}


def _digest(folder: Path, files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for kind in sorted(files):
        h.update(kind.encode())
        h.update((folder / files[kind]).read_bytes())
    return h.hexdigest()[:12]
