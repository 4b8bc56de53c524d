"""The S3 server killed mid-run: back within seconds, the run retries and completes; gone for
good, the run fails once, with one error, instead of recording every document as bad.

The run reaches moto through a TCP proxy, so a new moto process (moto keeps its objects in
memory: it comes back empty, and is filled before it takes over) serves the same address.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest

from tests.conftest import _start_moto
from tests.faults.proxy import TcpProxy
from tests.faults.runs import (Extraction, assert_each_document_extracted_once, model_calls_begun, query, runs,
                               wait_until)

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def moto(tmp_path, name: str) -> Iterator[tuple[int, object]]:
    """A moto_server process of its own: (port, process); killed at the end if still alive."""
    endpoint, process = _start_moto(tmp_path / f"{name}.log")
    try:
        yield int(endpoint.rsplit(":", 1)[1]), process
    finally:
        process.kill()
        process.wait(10)


def fill(port: int, bucket: str, source) -> None:
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", **{
        "aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"})
    client.create_bucket(Bucket=bucket)
    for path in sorted(source.iterdir()):
        client.put_object(Bucket=bucket, Key=path.name, Body=path.read_bytes())


@contextmanager
def run_on_s3(tmp_path, pg_url, source, api_url, **env) -> Iterator[tuple[TcpProxy, object, Extraction, str]]:
    """A run over a bucket on a moto server behind a proxy, its first model calls held until the
    test removes the gate file: (proxy, moto process, run, bucket)."""
    bucket = f"outage-{secrets.token_hex(4)}"
    with moto(tmp_path, "moto-first") as (port, process):
        fill(port, bucket, source)
        proxy = TcpProxy(("127.0.0.1", port))
        try:
            gate = tmp_path / "hold"
            gate.touch()
            run = Extraction(tmp_path, "run", pg_url, f"s3://{bucket}/", api_url=api_url, gate=gate, env_extra={
                **CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}", "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", **env})
            wait_until(lambda: model_calls_begun(tmp_path) >= 1, run, what="model calls under way")
            yield proxy, process, run, bucket
        finally:
            proxy.close()


def test_a_run_rides_out_an_s3_restart(tmp_path, pg_url, source, prefect_api_url):
    with run_on_s3(tmp_path, pg_url, source, prefect_api_url) as (proxy, first, run, bucket):
        with moto(tmp_path, "moto-second") as (port, _):
            fill(port, bucket, source)  # the restarted server, with its data, before it takes over
            proxy.cut(None)
            first.kill()  # the server dies: connections refused
            (tmp_path / "hold").unlink()  # the batches go on, and read while S3 is down
            wait_until(lambda: "object store unavailable" in run.stderr(), run, what="reads retried")
            proxy.target = ("127.0.0.1", port)
            proxy.reopen()
            assert run.wait(120) == 0, run.stderr()
    assert {status for status, _, _ in runs(pg_url).values()} == {"completed"}
    assert_each_document_extracted_once(pg_url, tmp_path)


@pytest.mark.slow
def test_an_s3_outage_fails_the_run_once_not_each_document(tmp_path, pg_url, source, prefect_api_url):
    with run_on_s3(tmp_path, pg_url, source, prefect_api_url, CROPVLM_S3_MAX_ATTEMPTS="1") as (proxy, first, run, _):
        proxy.cut(None)
        first.kill()
        (tmp_path / "hold").unlink()
        assert run.wait(120) == 1, run.stderr()  # a run stopped by its infrastructure: documents left undone
        assert "cropvlm: run stopped: object store unavailable while trying to read" in run.stderr()
    [(status, error)] = [(status, error) for status, error, _ in runs(pg_url).values()]
    assert status == "failed" and "object store unavailable" in error
    assert query(pg_url, "SELECT count(*) FROM run_documents WHERE status = 'failed'") == [(0,)]
    assert query(pg_url, "SELECT count(*) FROM document_claims") == [(0,)]
