"""A hostile corpus mixed with good documents in one run: every good document is extracted
once, every bad one fails (or comes out `empty`) alone with its message, and the run ends.

Local folder: a page-tree cycle, 50 bit-flipped copies of one good PDF (fixed seed), the bad
documents of the flow tests (truncated, zero bytes, encrypted, image bomb...), a PDF of ten
14400 x 14400 pt pages, a named pipe and a symlink to /etc/passwd. S3: a key `a//b.pdf`.
"""

from __future__ import annotations

import io
import os
import random
from collections import Counter
from pathlib import Path

import pymupdf
from PIL import Image

from cropvlm.synthetic import generate_document
from tests.cropvlm.test_render import CYCLIC_PDF
from tests.faults.fake_reader_cli import page_hash
from tests.faults.runs import DOCUMENTS, FIELDS, Extraction, make_source, query, reader_log, runs
from tests.flows.documents import bad_documents

FUZZED = 50
RUN_LIMIT_S = 240  # a hang fails the test instead of the suite


def fuzzed_pdfs(count: int = FUZZED, seed: int = 17) -> dict[str, bytes]:
    """Copies of one good PDF with 1 to 8 random bits flipped each, all different."""
    good, rng, copies = generate_document("invoice", 9, "pdf").data, random.Random(seed), {}
    while len(copies) < count:
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        if bytes(data) not in copies.values() and bytes(data) != good:
            copies[f"fuzzed/{len(copies):02d}.pdf"] = bytes(data)
    return copies


def huge_page_pdf() -> bytes:
    doc = pymupdf.open()
    for _ in range(10):
        doc.new_page(width=14400, height=14400)
    return doc.tobytes()


def good_page_hashes(folder: Path) -> set[str]:
    return {page_hash(Image.open(io.BytesIO(path.read_bytes())).convert("RGB")) for path in folder.glob("*.png")}


def statuses(database_url: str) -> dict[str, list[tuple[str, str | None]]]:
    """document name (relative to the source) -> [(status, error)] of every run_documents row"""
    rows = query(database_url, "SELECT uri, status, error FROM run_documents")
    found: dict[str, list] = {}
    for uri, status, error in rows:
        found.setdefault(uri.split("/docs/")[-1].removeprefix("s3://"), []).append((status, error))
    return found


def assert_good_extracted_once_and_bad_failed_alone(database_url: str, tmp_path: Path, source: Path,
                                                    expected_failures: dict[str, str]) -> dict[str, list]:
    found = statuses(database_url)
    assert all(len(rows) == 1 for rows in found.values()), {k: v for k, v in found.items() if len(v) > 1}
    for name in (f"receipt-{i}.png" for i in range(DOCUMENTS)):
        assert [status for status, _ in found[name]] == ["extracted"], (name, found[name])
    for name, message in expected_failures.items():
        [(status, error)] = found[name]
        assert status == "failed" and message in error, (name, status, error)
    for name, [(status, error)] in found.items():
        assert status in ("extracted", "empty", "failed"), (name, status)
        assert status == "extracted" or error, f"{name} {status} without a message"
    # answers only for extracted or empty documents, FIELDS per page, model work on each good page once
    assert query(database_url, "SELECT count(*) FROM document_claims") == [(0,)]
    assert query(database_url, "SELECT count(*) FROM extractions e JOIN run_documents r "
                               "ON r.document_id = e.document_id WHERE r.status = 'failed'") == [(0,)]
    answered = Counter(line.split()[2] for line in reader_log(tmp_path).read_text().splitlines()
                       if line.startswith("answer "))
    assert {answered[page] for page in good_page_hashes(source)} == {FIELDS}
    assert not [run for run, (status, _, _) in runs(database_url).items() if status == "running"]
    return found


def test_a_hostile_folder_fails_document_by_document(tmp_path, pg_url, prefect_api_url):
    source = make_source(tmp_path / "docs")
    corpus = {**bad_documents(), **fuzzed_pdfs(), "bad/cycle.pdf": CYCLIC_PDF, "bad/huge-pages.pdf": huge_page_pdf()}
    for name, data in corpus.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    os.mkfifo(source / "bad/pipe.pdf")
    (source / "bad/passwd.pdf").symlink_to("/etc/passwd")

    run = Extraction(tmp_path, "run", pg_url, source, api_url=prefect_api_url, options=("--batch-documents", "8"))
    assert run.wait(RUN_LIMIT_S) == 1, run.stderr()  # some documents failed

    found = assert_good_extracted_once_and_bad_failed_alone(pg_url, tmp_path, source, {
        "bad/cycle.pdf": "cycle in page tree",
        "bad/huge-pages.pdf": "over the limit of 150 MP per document",
        "bad/pipe.pdf": "not a regular file",
        "bad/passwd.pdf": "links outside",
        "bad/empty.pdf": "empty file",
        "bad/encrypted.pdf": "encrypted PDF",
        "bad/truncated.pdf": "corrupt PDF",
        "bad/bomb.png": "decompression bomb",
    })
    assert len(found) == DOCUMENTS + len(corpus) + 2
    assert "root:" not in str(found)  # nothing of /etc/passwd in any message
    assert {status for status, _, _ in runs(pg_url).values()} == {"completed_with_failures"}


def test_a_key_s3_allows_but_no_path_can_hold_fails_alone(tmp_path, pg_url, prefect_api_url, s3_client, s3_bucket):
    source = make_source(tmp_path / "docs")
    for path in source.iterdir():
        s3_client.put_object(Bucket=s3_bucket, Key=path.name, Body=path.read_bytes())
    s3_client.put_object(Bucket=s3_bucket, Key="a//b.pdf", Body=generate_document("invoice", 9, "pdf").data)
    s3_client.put_object(Bucket=s3_bucket, Key="bad/cycle.pdf", Body=CYCLIC_PDF)

    run = Extraction(tmp_path, "run", pg_url, f"s3://{s3_bucket}/", api_url=prefect_api_url,
                     options=("--batch-documents", "3"))
    assert run.wait(RUN_LIMIT_S) == 1, run.stderr()
    found = {name.removeprefix(f"{s3_bucket}/"): rows for name, rows in statuses(pg_url).items()}
    assert found["a//b.pdf"][0][0] == "failed" and "unusable object key" in found["a//b.pdf"][0][1]
    assert found["bad/cycle.pdf"][0][0] == "failed"
    assert sorted(status for (status, _), in found.values()).count("extracted") == DOCUMENTS
    assert not [run for run, (status, _, _) in runs(pg_url).items() if status == "running"]
