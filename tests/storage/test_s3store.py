"""S3 through the ObjectStore interface, on a real server (moto or $CROPVLM_TEST_S3_ENDPOINT)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from storage.errors import ObjectNotFoundError, StoreNotFoundError
from storage.objectstore import ObjectStore, open_store, read_uri
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
