"""Storage: object stores (S3 and local folders) and the database (SQLAlchemy + Alembic).

Imports sqlalchemy and boto3, never prefect, flows or tasks; cropvlm/ never imports this
(storage uses the core's `Label` and labels.jsonl parser, `cropvlm.labels`).
"""
