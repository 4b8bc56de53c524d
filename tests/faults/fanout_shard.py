"""The `extract-shard` flow with the counting reader of fake_reader_cli.py, as the shard
deployment of test_fanout.py: a worker's flow run loads it as its entrypoint. In a worker's
flow run (FAULTS_WORKER set) it also logs `WORKER PID` to FAULTS_WORKERS_LOG, so the test
can tell which worker ran which model calls."""

from __future__ import annotations

import os

import app.resources
from flows.extract_shard import extract_shard
from tests.faults.fake_reader_cli import build_reader

__all__ = ["extract_shard"]

if os.environ.get("FAULTS_WORKER"):
    app.resources.build_reader = build_reader
    with open(os.environ["FAULTS_WORKERS_LOG"], "a") as log:
        log.write(f"{os.environ['FAULTS_WORKER']} {os.getpid()}\n")
