"""Per-run settings of each flow, one pydantic model per flow, with every default written once.

The models are the flows' parameters (flows/ keep them flat, so deployments and the Prefect
UI set them by name, take their defaults from `defaults()` and validate them by building
the model first), the `cropvlm` options (cli/options.py builds them from the fields) and
what the jobs in app/ read.

    params = ExtractParams(source="./invoices", templates=["templates/invoice.yaml"])
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cropvlm.errors import TrainingError
from cropvlm.readers.ocr_engines import ENGINES as OCR_ENGINES
from cropvlm.render import RenderConfig
from cropvlm.specs import DEFAULT_POLICY, DEFAULT_READER

if TYPE_CHECKING:
    from cropvlm.training.loop import TrainConfig

PROMOTED = "promoted"  # policy spec: the registry's promoted version
# RetrainParams fields of the answer head alone: a policy training run resumes regardless of them
HEAD_SETTINGS = ("train_policy", "answer_head", "head_min_documents", "templates")
Init = Literal["promoted", "scratch"]

Dpi = Annotated[int, Field(description="PDF rendering resolution")]
BatchDocuments = Annotated[int, Field(ge=1, description="documents rendered and answered together")]
GpuLimit = Annotated[str | None, Field(
    description="global concurrency limit that model calls take a slot of (unset: no guard)")]
DatabaseUrl = Annotated[str | None, Field(
    validate_default=True, repr=False, description="SQLAlchemy URL (unset: $DATABASE_URL)")]
ArtifactsUri = Annotated[str | None, Field(
    validate_default=True, description="folder or s3://bucket/prefix for artifacts (unset: $CROPVLM_ARTIFACTS_URI)")]


class _Params(BaseModel):
    # Errors name the field and the problem, never the value: it may be a database URL.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    @field_validator("database_url", "artifacts_uri", mode="before", check_fields=False)
    @classmethod
    def _from_settings(cls, value: str | None, info) -> str:
        from storage.settings import Settings  # the command line starts without SQLAlchemy

        if value and info.field_name == "database_url" and urlsplit(value).password:
            # Prefect keeps a flow run's parameters in its own database and shows them in the UI.
            raise ValueError("database_url carries a password, which Prefect would store with the flow run's "
                             "parameters: set DATABASE_URL in the worker's environment instead")
        return value or getattr(Settings(), info.field_name)


class ExtractParams(_Params):
    source: str = Field(description="s3://bucket/prefix or a local folder")
    templates: list[str] = Field(["templates/receipt.yaml"], description="question-template files")
    policy: str = Field(PROMOTED, description=(
        f"crop policy spec; {PROMOTED}: the registry's promoted version ({DEFAULT_POLICY} while none is)"))
    reader: str = Field(DEFAULT_READER, description="reader spec")
    dpi: Dpi = RenderConfig.dpi
    max_pages: int = Field(RenderConfig.max_pages, description="documents with more pages fail")
    max_pixels: int = Field(RenderConfig.max_pixels, description="pages with more pixels render at a lower dpi")
    max_document_pixels: int = Field(RenderConfig.max_document_pixels, description=(
        "documents whose pages render to more pixels in all fail before rendering"))
    batch_documents: BatchDocuments = 8
    batch_pixels: int = Field(60_000_000, ge=1, description=(
        "a batch's rendered pages go to the model once they reach this many pixels; the rest of the batch "
        "after them"))
    document_seconds: float = Field(600, gt=0, description=(
        "a document whose reading and rendering take longer fails (the model call is not counted)"))
    review_below: float = Field(0.5, ge=0, le=1, description=(
        "answers less confident than this (or empty) get needs_review; a template field's review_below wins"))
    database_url: DatabaseUrl = None
    artifacts_uri: ArtifactsUri = None
    gpu_limit: GpuLimit = "gpu"
    lease_seconds: int = Field(900, ge=2, description=(
        "a run renews its claims on documents every third of this; a run silent this long is marked crashed "
        "and its documents go to the next run"))
    shard_documents: int | None = Field(None, ge=1, description=(
        "documents per shard: each shard a flow run of `shard_deployment` on its work pool (unset: every "
        "batch in this flow run, no workers needed)"))
    shard_deployment: str = Field("extract-shard/extract-shard", description="FLOW/DEPLOYMENT that runs the shards")
    shards_in_flight: int = Field(64, ge=1, description=(
        "shards submitted and not finished at a time: bounds the keys held in memory; keep it above the pool's "
        "workers"))

    @model_validator(mode="after")
    def _check(self) -> ExtractParams:
        self.render()  # a bad dpi or limit fails here, before any work
        return self

    def render(self) -> RenderConfig:
        return RenderConfig(dpi=self.dpi, max_pages=self.max_pages, max_pixels=self.max_pixels,
                            max_document_pixels=self.max_document_pixels)


class EvaluateParams(_Params):
    folder: str | None = Field(None, description="folder of documents with a labels.jsonl")
    synthetic: int = Field(0, ge=0, description="evaluate N generated documents instead (adds the oracle)")
    seed: int = Field(0, description="seed of the synthetic documents")
    templates: list[str] | None = Field(None, description="answer types by field name (none given: from the questions)")
    limit: int | None = Field(None, description="only the first N documents")
    out: str | None = Field("eval-out", description="folder for results.csv, results.md, answers.csv and the plot")
    readers: list[str] | None = Field(None, description=f"reader specs (none given: {DEFAULT_READER})")
    policies: list[str] | None = Field(
        None, description="crop policy specs (none given: full center random oracle + the promoted policy)")
    full_resolution: bool = Field(True, description="an extra row for each reader at full resolution without crop")
    batch_documents: BatchDocuments = 8
    dpi: Dpi = RenderConfig.dpi
    gpu_limit: GpuLimit = "gpu"


class RetrainParams(_Params):
    database_url: DatabaseUrl = None
    artifacts_uri: ArtifactsUri = None
    judge: str = Field(DEFAULT_READER, description="reader that rewards during GRPO and judges for promotion")
    init: Init = Field(PROMOTED, description="start from the promoted policy or from random weights")
    name: str = Field("heatmap", description="name of the candidate policy")
    synthetic_documents: int = Field(0, description="synthetic training documents (gold boxes for SFT)")
    synthetic_heldout: int = Field(0, description="synthetic held-out documents, judged beside held-out labels")
    synthetic_seed: int = Field(0, description="seed of the synthetic documents")
    use_labels: bool = Field(True, description="the labels table: train split to learn, heldout split to judge")
    grounding: str | None = Field("rapidocr", description="OCR engine that locates labelled answers on their "
                                  "pages for the SFT warm start; none: labels train with GRPO only")
    margin: float = Field(0.02, description="held-out exact-match margin over the promoted policy to promote")
    size_shift: int | None = Field(None, description="size bins (each ~1.3x the side) added to the candidate's "
                                   "boxes when served (unset: the parent's, 0 from scratch)")
    dpi: Dpi = RenderConfig.dpi
    heldout_limit: int | None = Field(None, description="judge on the first N held-out examples only")
    train: dict = Field({}, validate_default=True, description=(
        'training settings (TrainConfig) that differ from its defaults, e.g. {"sft_steps": 800, "grpo": {"steps": 60}}'))
    model: dict = Field({}, description="from scratch: input_size, size_bins, min_side, max_side, width, embed")
    workdir: str | None = Field(None, description="local scratch folder (unset: a temporary one)")
    gpu_limit: GpuLimit = "gpu"
    export_to: str | None = Field(None, description="also copy the candidate's files here")
    train_policy: bool = Field(True, description="train and judge a crop policy candidate")
    answer_head: bool = Field(True, description=(
        "also fit the OCR judge's answer head on the labels' train split and promote it if it wins on the "
        "held-out split"))
    head_min_documents: int = Field(10, ge=2, description="fewer labelled training documents: no answer head")
    templates: list[str] = Field(["templates/receipt.yaml"], description=(
        "question templates giving the answer head each field's type and aliases, as extraction uses them"))

    @field_validator("train")
    @classmethod
    def _all_train_settings(cls, overrides: dict) -> dict:
        """Every TrainConfig field, so the settings hashed for a resume say what ran."""
        from cropvlm.training.loop import TrainConfig  # imports torch: only when retraining

        return dataclasses.asdict(TrainConfig.from_dict(overrides))

    @field_validator("grounding", mode="before")
    @classmethod
    def _no_grounding(cls, value: str | None) -> str | None:
        return None if value == "none" else value

    @model_validator(mode="after")
    def _check(self) -> RetrainParams:
        if self.synthetic_documents < 0 or self.synthetic_heldout < 0:
            raise TrainingError("synthetic document counts must be >= 0")
        if self.grounding is not None and self.grounding not in OCR_ENGINES:
            raise TrainingError(f"grounding must be one of {list(OCR_ENGINES)} or None, got {self.grounding!r}")
        if self.size_shift is not None and not 0 <= self.size_shift <= 4:
            raise TrainingError(f"size_shift must be 0-4 size bins (each ~1.3x the side), got {self.size_shift}")
        if self.train_policy and not self.use_labels and not self.synthetic_documents:
            raise TrainingError("nothing to train on: no synthetic documents and labels are off")
        if not self.train_policy and not (self.answer_head and self.use_labels):
            raise TrainingError("nothing to do: no policy training and no answer head from the labels")
        return self

    def train_config(self) -> TrainConfig:
        from cropvlm.training.loop import TrainConfig

        return TrainConfig.from_dict(self.train)

    def settings(self) -> dict:
        """What decides the result (not where it is stored or run): hashed to find a run to resume."""
        return self.model_dump(exclude={"database_url", "artifacts_uri", "workdir", "gpu_limit", "export_to",
                                        *HEAD_SETTINGS})


def defaults(model: type[BaseModel]) -> SimpleNamespace:
    """The model's defaults by field name, for a flow's signature (Prefect shows them in the UI)."""
    return SimpleNamespace(**{name: field.get_default(call_default_factory=True)
                              for name, field in model.model_fields.items() if not field.is_required()})
