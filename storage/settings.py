"""Environment settings for storage: where the database and the artifacts live.

    DATABASE_URL              sqlite:///.cropvlm/cropvlm.db (relative to the working directory)
                              or postgresql://user:pass@host:5432/db
    CROPVLM_ARTIFACTS_URI     where crop thumbnails go: a folder or s3://bucket/prefix
    CROPVLM_DATABASE_CONNECT_TIMEOUT    seconds a PostgreSQL connect may take
    CROPVLM_DATABASE_STATEMENT_TIMEOUT  seconds a PostgreSQL statement may take (0: no limit)
    CROPVLM_DATABASE_RETRY_SECONDS      seconds of waits a database step rides out before it
                              fails the run (retries 0.5 s, 1 s, 2 s, ... apart)
    CROPVLM_S3_MAX_ATTEMPTS   total attempts per S3 call (botocore "standard" retry mode)
    CROPVLM_S3_CONNECT_TIMEOUT, CROPVLM_S3_READ_TIMEOUT   seconds
    CROPVLM_S3_ADDRESSING_STYLE   auto | path | virtual (path for some MinIO/SeaweedFS setups)

S3 endpoint and credentials are read by boto3 itself from its standard variables
(AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION, AWS_PROFILE, ...), so they never pass through this module.
The database URL may hold a password: repr() and `safe_database_url()` hide it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite:///.cropvlm/cropvlm.db"


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROPVLM_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "CROPVLM_DATABASE_URL"),
        repr=False,  # may hold a password; see safe_database_url
    )
    artifacts_uri: str = ".cropvlm/artifacts"
    database_connect_timeout: int = Field(10, ge=1)  # seconds
    database_statement_timeout: float = Field(60.0, ge=0)  # seconds; 0: no limit
    database_retry_seconds: float = Field(31.5, ge=0)  # seconds of waits between retries, in all
    s3_max_attempts: int = Field(5, ge=1)
    s3_connect_timeout: float = Field(10.0, gt=0)  # seconds
    s3_read_timeout: float = Field(60.0, gt=0)  # seconds
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"

    def safe_database_url(self) -> str:
        """The database URL with its password masked, for logs and messages."""
        return mask_url(self.database_url)

    def __repr_args__(self):
        yield "database_url", self.safe_database_url()
        yield from super().__repr_args__()
