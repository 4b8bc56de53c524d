"""Mistakes an extract run can be refused for before it starts: templates, policy and reader
specs, the source's shape, a source that cannot be listed (an S3 endpoint that does not
answer, a missing bucket, refused credentials: one quick call). Each is found without the
database, so a typo or a setup problem is one line on the command line instead of a failed
flow run.

    problems = check_extract("./invoices", ["templates/invoice.yaml"], "full", "ocr:rapidocr@768")
    for problem in problems: print(problem.message)

The models are built through the per-worker cache (app/resources.py): a run in the same
process reuses them instead of loading them twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from app.params import PROMOTED
from app.resources import get_policy, get_reader
from cropvlm.errors import CropVLMError
from cropvlm.templates import load_template_set
from storage.errors import StorageError, StoreNotFoundError, StoreUnavailableError
from storage.objectstore import is_s3_uri, local_path, probe_store, split_s3_uri

BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's rules for bucket names
# What building a model raises for a bad spec: a path that is not there, a missing package.
SPEC_ERRORS = (CropVLMError, OSError, ValueError, ImportError)


@dataclass(frozen=True)
class Problem:
    message: str
    error: BaseException | None = None  # what was raised, for a traceback on request


def check_extract(source: str, templates: list[str], policy: str, reader: str) -> list[Problem]:
    problems = check_source(source)
    try:
        load_template_set(templates)
    except CropVLMError as exc:
        problems.append(Problem(f"templates: {exc}", exc))
    for role, spec, build in (("policy", policy, get_policy), ("reader", reader, get_reader)):
        if role == "policy" and spec.strip() == PROMOTED:
            continue  # resolved from the registry when the run starts
        try:
            build(spec)
        except SPEC_ERRORS as exc:
            problems.append(Problem(f"{role} {spec!r}: {exc}", exc))
    return problems


def check_source(source: str) -> list[Problem]:
    """An S3 URI names a valid bucket; anything else is an existing local folder; then one
    listing call answers (S3: within ~10 s)."""
    try:
        if is_s3_uri(source):
            bucket, _ = split_s3_uri(source)
            if not BUCKET_NAME.fullmatch(bucket):
                return [Problem(f"source {source}: {bucket!r} is not an S3 bucket name "
                                "(3-63 lowercase letters, digits, dots and hyphens)")]
        else:
            folder = Path(local_path(source)).expanduser()
            if not folder.exists():
                return [Problem(f"source folder {source} does not exist")]
            if not folder.is_dir():
                return [Problem(f"source {source} is not a folder (give the folder that holds the documents)")]
        probe_store(source)
    except StoreUnavailableError as exc:
        return [Problem(f"source {source} unreachable: {exc} (check AWS_ENDPOINT_URL and the network)", exc)]
    except StoreNotFoundError as exc:
        return [Problem(f"source {source}: {exc} (check the bucket name and AWS_ENDPOINT_URL)", exc)]
    except StorageError as exc:
        hint = " (check the AWS credentials and the bucket's permissions)" if is_s3_uri(source) else ""
        return [Problem(f"source {source}: {exc}{hint}", exc)]
    return []
