"""prefect.yaml stays in step with the flows it deploys."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def deployments() -> dict[str, dict]:
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return {d["name"]: d for d in config["deployments"]}


def test_every_deployment_points_at_a_flow_and_passes_only_its_parameters():
    for name, deployment in deployments().items():
        path, function = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, function)
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(deployment.get("parameters", {})) <= accepted, name
        assert (REPO / path).exists()
        assert deployment["work_pool"]["name"]


def test_extract_is_scheduled_with_a_valid_cron_and_existing_templates():
    from prefect.client.schemas.schedules import CronSchedule

    extract = deployments()["extract"]
    for schedule in extract["schedules"]:
        CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone", "UTC"))
    assert all((REPO / t).exists() for t in extract["parameters"]["templates"])


def test_extract_uses_the_promoted_policy_and_the_default_reader():
    from cropvlm.specs import DEFAULT_READER, build_reader

    parameters = deployments()["extract"]["parameters"]
    assert parameters["policy"] == "promoted"  # what the weekly retrain promotes is used next run
    assert parameters["reader"] == DEFAULT_READER
    assert build_reader(parameters["reader"]).version.startswith(DEFAULT_READER.replace("+head=default", "+head#"))


def test_the_weekly_retrain_settings_are_valid_training_settings():
    from app.params import RetrainParams

    parameters = deployments()["retrain"]["parameters"]
    job = RetrainParams(database_url="sqlite://", artifacts_uri="/tmp/x", init=parameters["init"],
                        grounding=parameters["grounding"], train=parameters["train"])
    config = job.train_config()
    assert config.sft_steps == 300 and config.grpo.steps == 20  # the settings measured on SROIE
    assert job.grounding == "rapidocr"


def test_schedules_are_deployed_inactive_and_evaluate_writes_under_the_ignored_folder():
    for name, deployment in deployments().items():
        assert all(schedule["active"] is False for schedule in deployment.get("schedules", [])), name
    assert deployments()["evaluate"]["parameters"]["out"].startswith(".cropvlm/")  # .gitignore'd
    assert ".cropvlm/" in (REPO / ".gitignore").read_text().split()


def test_the_header_deploys_with_cropvlm_home_like_the_guide():
    header = (REPO / "prefect.yaml").read_text().split("\nname:")[0]
    guide = (REPO / "docs/deploying.md").read_text()
    assert "CROPVLM_HOME=/opt/cropvlm prefect deploy --all" in header
    assert "CROPVLM_HOME=/opt/cropvlm prefect deploy --all" in guide
    for step in ("prefect work-pool create cropvlm-process --type process", "prefect gcl create gpu --limit 1"):
        assert step in header and step in guide
