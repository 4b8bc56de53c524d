"""Objects in an S3-compatible bucket (AWS, MinIO, SeaweedFS, ...) through boto3.

The endpoint and credentials come from boto3's own environment variables (AWS_ENDPOINT_URL
or AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, ...); retries and timeouts from Settings, except
for a quick client (a check before a run), which gives up within seconds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from functools import lru_cache

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from storage.errors import ObjectNotFoundError, StorageError, StoreNotFoundError, StoreUnavailableError
from storage.objectstore import ObjectInfo, check_key
from storage.settings import Settings

_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}
# Variables that change which client make_s3_client builds: part of the cache key.
_CLIENT_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
)
_client_lock = threading.Lock()  # boto3 clients are thread-safe; creating them is not
# A quick client: an unreachable endpoint fails in ~2 x 3 s, a silent one in ~2 x 5 s.
QUICK_MAX_ATTEMPTS = 2  # attempts in all
QUICK_CONNECT_TIMEOUT = 3.0  # seconds
QUICK_READ_TIMEOUT = 5.0  # seconds


def make_s3_client(settings: Settings | None = None, *, quick: bool = False):
    """A boto3 S3 client with retries and timeouts; cached per settings and AWS environment.
    quick: at most QUICK_* attempts and timeouts, for a check that must answer at once."""
    settings = settings or Settings()
    env = tuple(os.environ.get(name) for name in _CLIENT_ENV)
    attempts, connect, read = settings.s3_max_attempts, settings.s3_connect_timeout, settings.s3_read_timeout
    if quick:
        attempts = min(attempts, QUICK_MAX_ATTEMPTS)
        connect, read = min(connect, QUICK_CONNECT_TIMEOUT), min(read, QUICK_READ_TIMEOUT)
    with _client_lock:
        return _cached_client(attempts, connect, read, settings.s3_addressing_style, env)


@lru_cache(maxsize=8)
def _cached_client(max_attempts, connect_timeout, read_timeout, addressing_style, _env):
    config = Config(
        # total_max_attempts counts the first try too; botocore's max_attempts would count retries only
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"addressing_style": addressing_style},
    )
    return boto3.session.Session().client("s3", config=config)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Store:
    """Keys are relative to `prefix` inside `bucket`; the prefix is treated as a folder."""

    def __init__(
        self, bucket: str, prefix: str = "", *, client=None, page_size: int = 1000
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.page_size = page_size  # keys per ListObjectsV2 call; S3 caps it at 1000
        self._client = client or make_s3_client()
        self._bucket_checked = False

    def __repr__(self) -> str:
        return f"S3Store({self.uri_root!r})"

    @property
    def uri_root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{check_key(key)}"

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.prefix + prefix,
            PaginationConfig={"PageSize": self.page_size},
        )
        try:
            for page in pages:
                for obj in page.get("Contents", ()):
                    full_key = obj["Key"]
                    if full_key.endswith("/"):  # a "folder" marker made by consoles, not an object
                        continue
                    yield ObjectInfo(
                        uri=f"s3://{self.bucket}/{full_key}",
                        key=full_key[len(self.prefix) :],
                        size=int(obj["Size"]),
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"list {self.uri_root}{prefix}") from exc

    def probe(self) -> None:
        """List at most one key: the errors a run's listing would meet, in one call."""
        try:
            self._client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_KEY:  # a bare 404 to a listing: no S3 bucket behind the URL
                endpoint = self._client.meta.endpoint_url
                raise StoreNotFoundError(f"{endpoint} answered {_error_code(exc)} to listing bucket "
                                         f"'{self.bucket}': not an S3 endpoint, or no such bucket") from exc
            raise self._error(exc) from exc
        except BotoCoreError as exc:
            raise self._error(exc) from exc

    def read(self, key: str) -> bytes:
        full_key = self.prefix + check_key(key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=full_key)
            return response["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"read s3://{self.bucket}/{full_key}") from exc

    def exists(self, key: str) -> bool:
        full_key = self.prefix + check_key(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=full_key)
            return True
        except ClientError as exc:
            if _error_code(exc) not in _MISSING_KEY:
                raise self._error(exc, f"check s3://{self.bucket}/{full_key}") from exc
        except BotoCoreError as exc:
            raise self._error(exc, f"check s3://{self.bucket}/{full_key}") from exc
        # HEAD answers a bare 404 for a missing bucket too: tell the two apart once.
        self._check_bucket()
        return False

    def write(self, key: str, data: bytes, content_type: str | None = None) -> str:
        full_key = self.prefix + check_key(key)
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self._client.put_object(Bucket=self.bucket, Key=full_key, Body=data, **extra)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"write s3://{self.bucket}/{full_key}") from exc
        return f"s3://{self.bucket}/{full_key}"

    def _check_bucket(self) -> None:
        if self._bucket_checked:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_KEY | {"NoSuchBucket"}:
                raise self._missing_bucket() from exc
            raise self._error(exc, f"check bucket {self.bucket}") from exc
        except BotoCoreError as exc:
            raise self._error(exc, f"check bucket {self.bucket}") from exc
        self._bucket_checked = True

    def _missing_bucket(self) -> StoreNotFoundError:
        endpoint = self._client.meta.endpoint_url
        return StoreNotFoundError(f"S3 bucket '{self.bucket}' does not exist at {endpoint}")

    def _error(self, exc: Exception, action: str | None = None) -> StorageError:
        """The storage error for a botocore one; its message says `cannot {action}: ` first,
        unless there is no action (the caller names what it did)."""
        lead = f"cannot {action}: " if action else ""
        if isinstance(exc, ClientError):
            code = _error_code(exc)
            if code == "NoSuchBucket":
                return self._missing_bucket()
            if code in _MISSING_KEY:
                return ObjectNotFoundError(f"{lead}no such object")
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
                return StoreUnavailableError(f"{lead}{exc}")
        if isinstance(exc, EndpointUnreachable | HTTPClientError):  # refused, timed out, cut off
            return StoreUnavailableError(f"{lead}{exc}")
        return StorageError(f"{lead}{exc}")
