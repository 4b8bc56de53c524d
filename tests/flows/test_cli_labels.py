"""`cropvlm labels` and `cropvlm policies`: exit status, messages, nothing written on bad input."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
import sqlalchemy as sa
from PIL import Image

from cli.main import main
from storage import registry
from storage.db import make_engine, make_session_factory
from storage.labels import split_of


@pytest.fixture(scope="session")
def prefect_api():
    """No Prefect API: these commands never start a flow (overrides the slow autouse harness)."""
    yield


def _png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (seed % 256, 0, 0)).save(out, format="PNG")
    return out.getvalue()


def _documents() -> dict[str, bytes]:
    """Two PNGs, one train and one heldout, and a file that is not an image."""
    docs: dict[str, bytes] = {}
    for seed in range(256):
        data = _png(seed)
        split = split_of(hashlib.sha256(data).hexdigest())
        name = f"{split}.png"
        if name not in docs:
            docs[name] = data
        if len(docs) == 2:
            break
    docs["notes/readme.txt"] = b"plain text"
    return docs


LABELS = [
    {"doc": "train.png", "field": "total", "question": "What is the total?", "answer": "60.30"},
    {"doc": "heldout.png", "field": "total", "question": "What is the total?", "answer": "7.00",
     "page": 1, "box": [10, 20, 40, 30]},
    {"doc": "notes/readme.txt", "field": "company", "question": "Who?", "answer": "ACME"},
]


def _write(folder, labels=LABELS, docs=None):
    for name, data in (docs if docs is not None else _documents()).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    path = folder / "labels.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in labels))
    return path


def _counts(db_url) -> tuple[int, int, int]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
                         for table in ("documents", "labels", "document_splits"))
    finally:
        engine.dispose()


def test_import_then_again_then_correct_then_list(db_url, tmp_path, capsys):
    path = _write(tmp_path)
    db = ["--database-url", db_url]
    assert main(["labels", "import", str(path), "--source", str(tmp_path), "--reviewer", "bob", *db]) == 0
    assert "imported 3 labels, 0 unchanged; 3 documents: 2 train, 1 heldout" in capsys.readouterr().out
    assert main(["labels", "import", str(path), "--source", str(tmp_path), *db]) == 0
    assert "imported 0 labels, 3 unchanged; 3 documents: 2 train, 1 heldout" in capsys.readouterr().out
    assert _counts(db_url) == (3, 3, 3)

    train_uri = str(tmp_path / "train.png")
    assert main(["labels", "set", "--document", train_uri, "--field", "total", "--answer", "60.50",
                 "--reviewer", "alice", *db]) == 0
    assert f"{train_uri} total: '60.50' (was '60.30'; label 4 by alice)" in capsys.readouterr().out
    sha = hashlib.sha256((tmp_path / "heldout.png").read_bytes()).hexdigest()
    assert main(["labels", "set", "--document", sha[:10], "--field", "total", "--page", "1",
                 "--answer", "7.50", "--reviewer", "alice", *db]) == 0
    assert "page 1 total: '7.50' (was '7.00'" in capsys.readouterr().out

    assert main(["labels", "list", "--split", "heldout", *db]) == 0
    out = capsys.readouterr().out
    assert "7.50" in out and "heldout" in out and "60.50" not in out
    assert main(["labels", "list", *db]) == 0
    out = capsys.readouterr().out
    assert "60.50" in out and "review" in out and "alice" in out and "ACME" in out

    with make_session_factory(engine := make_engine(db_url))() as session:
        media = dict(session.execute(sa.text("SELECT uri, media_type FROM documents")).all())
    engine.dispose()
    assert media[train_uri] == "image/png"
    assert media[str(tmp_path / "notes/readme.txt")] == "application/octet-stream"


def test_bad_input_lists_every_problem_and_writes_nothing(db_url, tmp_path, capsys):
    docs = _documents()
    del docs["notes/readme.txt"]
    labels = [*LABELS,
              {"doc": "train.png", "field": "total", "answer": "99.99"},  # contradicts line 1
              {"doc": "train.png", "field": "date", "answer": ""},
              {"doc": "missing.png", "field": "total", "answer": "1"}]
    path = _write(tmp_path, labels, docs)
    db = ["--database-url", db_url]
    assert main(["labels", "import", str(path), "--source", str(tmp_path), *db]) == 2
    err = capsys.readouterr().err
    assert "nothing written" in err
    assert f"{path}:4: document 'train.png' field 'total' contradicts line 1" in err
    assert f"{path}:5: 'answer' must be a non-empty string" in err

    # well-formed lines, but documents the source does not have: all named
    path = _write(tmp_path, [LABELS[0], labels[-1], {**labels[-1], "doc": "gone/x.pdf"}], docs)
    assert main(["labels", "import", str(path), "--source", str(tmp_path), *db]) == 2
    err = capsys.readouterr().err
    assert "document 'missing.png' is not in" in err and "document 'gone/x.pdf' is not in" in err
    assert main(["labels", "import", str(path), "--source", str(tmp_path / "nope"), *db]) == 2
    assert "folder does not exist" in capsys.readouterr().err
    path.write_text("")
    assert main(["labels", "import", str(path), "--source", str(tmp_path), *db]) == 2
    assert "no labels" in capsys.readouterr().err
    assert main(["labels", "import", str(tmp_path / "none.jsonl"), "--source", str(tmp_path), *db]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert _counts(db_url) == (0, 0, 0)

    assert main(["labels", "set", "--document", "/no/such.png", "--field", "total", "--answer", "1",
                 "--reviewer", "alice", *db]) == 2
    assert "unknown document '/no/such.png'" in capsys.readouterr().err
    assert main(["labels", "list", *db]) == 0
    assert "no labels" in capsys.readouterr().out


def test_import_from_s3(db_url, s3_client, s3_bucket, tmp_path, capsys):
    for name, data in _documents().items():
        s3_client.put_object(Bucket=s3_bucket, Key=f"in/{name}", Body=data)
    (tmp_path / "labels").mkdir()
    path = _write(tmp_path / "labels", docs={})
    source = f"s3://{s3_bucket}/in/"
    assert main(["labels", "import", str(path), "--source", source, "--database-url", db_url]) == 0
    assert "imported 3 labels" in capsys.readouterr().out
    assert main(["labels", "list", "--limit", "1", "--database-url", db_url]) == 0
    assert f"s3://{s3_bucket}/in/heldout.png" in capsys.readouterr().out


def test_policies_list_promote_reject(db_url, capsys):
    db = ["--database-url", db_url]
    assert main(["policies", "list", *db]) == 0
    assert "no policy versions" in capsys.readouterr().out
    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as session:
        registry.register_candidate(session, version="heatmap@1", kind="heatmap", artifact_uri="s3://b/1",
                                    config={}, metrics={"exact": 0.6412, "reward": [0.1, 0.2]})
        registry.register_candidate(session, version="heatmap@2", kind="heatmap", artifact_uri="s3://b/2",
                                    config={}, parent_version="heatmap@1")
        registry.register_candidate(session, version="heatmap@3", kind="heatmap", artifact_uri="s3://b/3",
                                    config={})
    engine.dispose()
    assert main(["policies", "promote", "heatmap@1", *db]) == 0
    assert "promoted heatmap@1" in capsys.readouterr().out
    assert main(["policies", "promote", "heatmap@2", "--note", "better", *db]) == 0
    assert "promoted heatmap@2 (heatmap@1 retired)" in capsys.readouterr().out
    assert main(["policies", "reject", "heatmap@3", "--note", "worse on dates", *db]) == 0
    assert "rejected heatmap@3: worse on dates" in capsys.readouterr().out
    assert main(["policies", "list", *db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["version", "kind", "status", "parent", "created", "metrics"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert rows["heatmap@1"].split()[2] == "retired" and rows["heatmap@1"].endswith("exact=0.641")
    assert rows["heatmap@2"].split()[2:4] == ["promoted", "heatmap@1"]
    assert rows["heatmap@3"].split()[2] == "rejected"

    assert main(["policies", "promote", "heatmap@3", *db]) == 2
    assert "was rejected" in capsys.readouterr().err
    assert main(["policies", "promote", "heatmap@9", *db]) == 2
    assert "'heatmap@9' is not in the registry" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --note is required
        main(["policies", "reject", "heatmap@2", *db])
