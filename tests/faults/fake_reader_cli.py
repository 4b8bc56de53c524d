"""`cropvlm` with a stand-in reader whose model work the fault tests can count and hold.

    FAULTS_READER_LOG=calls.log FAULTS_GATE=hold python -m tests.faults.fake_reader_cli extract DIR \
        --reader fake --policy full --templates templates/receipt.yaml

The reader spec `fake` answers every question alike. Each call appends `begin PID` to the log,
waits while the FAULTS_GATE file exists (at most 60 s), then appends `answer PID PAGE FIELD`
per request (PAGE: a hash of the page's pixels), so a test sees when model work is under way
and counts how often each document's fields were answered, across processes.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import app.resources
from cli.main import main
from cropvlm.readers.base import Answer

GATE_LIMIT_S = 60


class FakeReader:
    version = "fake"

    def __init__(self, log: Path, gate: Path | None) -> None:
        self.log, self.gate = log, gate

    def answer(self, requests):
        self._write(f"begin {os.getpid()}")
        deadline = time.monotonic() + GATE_LIMIT_S
        while self.gate is not None and self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._write(*(f"answer {os.getpid()} {page_hash(r.page)} {r.spec.field}" for r in requests))
        return [Answer("12.50", "12.50", 0.9, "fake") for _ in requests]

    def _write(self, *lines: str) -> None:
        with self.log.open("a") as log:  # one write per call: O_APPEND keeps lines of processes whole
            log.write("".join(line + "\n" for line in lines))


def page_hash(image) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()[:12]


def build_reader(spec: str, real=app.resources.build_reader):
    if spec != "fake":
        return real(spec)
    gate = os.environ.get("FAULTS_GATE")
    return FakeReader(Path(os.environ["FAULTS_READER_LOG"]), Path(gate) if gate else None)


if __name__ == "__main__":
    app.resources.build_reader = build_reader
    sys.exit(main())
