"""S3 through the ObjectStore interface, on a real server (moto or $CROPVLM_TEST_S3_ENDPOINT)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from storage.errors import ObjectNotFoundError, StoreNotFoundError, StoreUnavailableError
from storage.objectstore import ObjectStore, open_store, probe_store, read_uri
from storage.s3store import S3Store, make_s3_client


def test_endpoint_comes_from_aws_endpoint_url(s3_server):
    # boto3 reads AWS_ENDPOINT_URL itself; nothing in storage passes it.
    assert make_s3_client().meta.endpoint_url == s3_server


def test_write_read_exists_uri(s3_bucket):
    store = open_store(f"s3://{s3_bucket}/scans/2026/")
    assert isinstance(store, ObjectStore)
    uri = store.write("crops/a.png", b"png", content_type="image/png")
    assert uri == f"s3://{s3_bucket}/scans/2026/crops/a.png" == store.uri("crops/a.png")
    assert store.read("crops/a.png") == b"png"
    assert read_uri(uri) == b"png"
    assert store.exists("crops/a.png")
    assert not store.exists("crops/b.png")
    client = make_s3_client()
    head = client.head_object(Bucket=s3_bucket, Key="scans/2026/crops/a.png")
    assert head["ContentType"] == "image/png"


def test_list_paginates_over_more_than_1000_objects(s3_bucket):
    store = S3Store(s3_bucket, "docs", page_size=250)
    keys = [f"batch/{i:04d}.pdf" for i in range(1005)]
    with ThreadPoolExecutor(8) as pool:  # botocore keeps 10 connections per client
        list(pool.map(lambda k: store.write(k, b"%d" % len(k)), keys))
    store.write("other/x.pdf", b"x")
    S3Store(s3_bucket, "").write("outside.pdf", b"x")  # outside the store's prefix

    infos = list(store.list("batch/"))
    assert [i.key for i in infos] == keys
    assert infos[0].uri == f"s3://{s3_bucket}/docs/batch/0000.pdf" and infos[0].size == 2
    assert len(list(store.list())) == 1006


def test_missing_key_and_missing_bucket(s3_bucket):
    store = open_store(f"s3://{s3_bucket}/p")
    with pytest.raises(ObjectNotFoundError, match="nope.pdf"):
        store.read("nope.pdf")
    with pytest.raises(ObjectNotFoundError):
        read_uri(f"s3://{s3_bucket}/p/nope.pdf")

    missing = open_store("s3://no-such-bucket-cropvlm/x")
    for action in (
        lambda: missing.read("a.pdf"),
        lambda: list(missing.list()),
        lambda: missing.write("a.pdf", b"x"),
        lambda: missing.exists("a.pdf"),
    ):
        with pytest.raises(StoreNotFoundError, match="'no-such-bucket-cropvlm'"):
            action()


def test_probe_lists_one_key_with_a_quick_client_and_leaves_the_runs_client_alone(s3_bucket, monkeypatch):
    probe_store(f"s3://{s3_bucket}/nothing-here-yet/")  # an empty prefix of a bucket is fine
    with pytest.raises(StoreNotFoundError, match="'no-such-bucket-cropvlm' does not exist"):
        probe_store("s3://no-such-bucket-cropvlm/x")

    quick, run = make_s3_client(quick=True).meta.config, make_s3_client().meta.config
    assert (quick.retries["total_max_attempts"], quick.connect_timeout, quick.read_timeout) == (2, 3.0, 5.0)
    # the run's: Settings' defaults, CROPVLM_S3_MAX_ATTEMPTS=5 attempts in all
    assert (run.retries["total_max_attempts"], run.connect_timeout, run.read_timeout) == (5, 10.0, 60.0)

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens on port 1
    with pytest.raises(StoreUnavailableError, match="^Could not connect to the endpoint URL"):
        probe_store(f"s3://{s3_bucket}/x")


def test_s3_max_attempts_counts_every_attempt(s3_bucket, monkeypatch):
    from storage.settings import Settings

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # refused at once, retried
    client = make_s3_client(Settings(s3_max_attempts=3))
    sent: list[str] = []
    client.meta.events.register("before-send.s3", lambda request, **kwargs: sent.append(request.url))
    with pytest.raises(Exception, match="Could not connect"):
        client.list_objects_v2(Bucket=s3_bucket, MaxKeys=1)
    assert len(sent) == 3
