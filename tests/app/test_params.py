"""One parameter model per flow: the flow's signature, the `cropvlm` options and the jobs
read the same fields and defaults; app/ stays plain Python; the command line starts light."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from app.params import EvaluateParams, ExtractParams, RetrainParams
from cli.main import _parser
from cli.options import fields_from
from cropvlm.errors import TrainingError
from tests.imports import imported_modules

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module, model", [("extract", ExtractParams), ("retrain", RetrainParams),
                                           ("evaluate", EvaluateParams)])
def test_each_flow_takes_its_models_fields_with_its_defaults(module, model):
    from importlib import import_module

    flow = getattr(import_module(f"flows.{module}"), module)
    parameters = inspect.signature(flow.fn).parameters
    assert set(parameters) == set(model.model_fields)
    for name, parameter in parameters.items():
        field = model.model_fields[name]
        if not field.is_required():
            assert parameter.default == field.get_default(call_default_factory=True), name


def parse(*argv: str) -> dict:
    return fields_from(_parser().parse_args(argv), {"extract": ExtractParams, "evaluate": EvaluateParams,
                                                    "retrain": RetrainParams}[argv[0]])


def test_options_left_out_take_the_models_defaults():
    assert parse("retrain") == {}
    assert parse("evaluate") == {"folder": None}
    assert parse("extract", "docs", "--templates", "a.yaml") == {"source": "docs", "templates": ["a.yaml"]}
    assert RetrainParams(**parse("retrain")) == RetrainParams()


def test_options_fill_the_model_under_their_own_flags():
    fields = parse("retrain", "--synthetic", "3", "--no-labels", "--grounding", "none", "--init", "scratch",
                   "--train", '{"sft_steps": 4, "grpo": {"steps": 1}}', "--export", "out", "--margin", "0.1")
    params = RetrainParams(**fields)
    assert (params.synthetic_documents, params.use_labels, params.grounding, params.init) == (3, False, None, "scratch")
    assert params.export_to == "out" and params.margin == 0.1
    assert params.train_config().sft_steps == 4 and params.train_config().grpo.steps == 1
    evaluate = EvaluateParams(**parse("evaluate", "--synthetic", "2", "--readers", "a", "b", "--readers", "c",
                                      "--no-full-resolution"))
    assert evaluate.readers == ["a", "b", "c"] and evaluate.full_resolution is False and evaluate.synthetic == 2
    with pytest.raises(SystemExit):  # argparse: not JSON
        parse("retrain", "--train", "{sft_steps")


def test_retrain_settings_hold_every_training_setting_and_bad_ones_say_how_to_fix_them():
    params = RetrainParams(synthetic_documents=1, train={"grpo": {"steps": 3}}, database_url="sqlite://")
    settings = params.settings()
    assert "database_url" not in settings and "gpu_limit" not in settings and "workdir" not in settings
    assert settings["train"]["grpo"]["steps"] == 3 and settings["train"]["sft_steps"] == params.train_config().sft_steps
    with pytest.raises(TrainingError, match="unknown training settings"):
        RetrainParams(train={"sft_stepz": 1})
    with pytest.raises(TrainingError, match="grounding must be one of"):
        RetrainParams(grounding="easyocr")
    with pytest.raises(ValueError, match="dpi must be in"):
        ExtractParams(source="docs", dpi=5)


def test_the_application_layer_never_imports_orchestration():
    forbidden = {"prefect", "flows", "tasks", "cli"}
    for path_name, name in imported_modules(REPO / "app"):
        assert name.split(".")[0] not in forbidden, f"{path_name} imports {name}"


def test_the_command_line_starts_without_torch_sqlalchemy_or_prefect():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, cli.main; print(sorted({m.split('.')[0] for m in sys.modules}))"],
        cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert not {"'torch'", "'sqlalchemy'", "'prefect'"} & set(loaded.strip("[]\n").split(", "))


@pytest.mark.parametrize("model", [ExtractParams, RetrainParams])  # the flows that write to the database
def test_a_database_password_is_never_a_flow_parameter(model, monkeypatch):
    # Prefect stores a run's parameters and shows them in its UI: the password stays in the environment.
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:from-env@db/cropvlm")
    required = {"source": "docs"} if model is ExtractParams else {}
    with pytest.raises(ValueError, match="carries a password") as err:
        model(**required, database_url="postgresql://app:s3cret@db/cropvlm")
    assert "s3cret" not in str(err.value)
    assert model(**required, database_url="postgresql://app@db/cropvlm").database_url == "postgresql://app@db/cropvlm"
    assert model(**required).database_url == "postgresql://app:from-env@db/cropvlm"  # from the worker's environment
