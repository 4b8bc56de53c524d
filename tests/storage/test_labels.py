"""Labels on SQLite and PostgreSQL: parsing errors, all-or-nothing import, idempotence,
corrections (function and the README's SQL INSERT), splits, the current_labels view."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from cropvlm.box import Box
from cropvlm.errors import LabelError
from cropvlm.labels import Label, parse_labels
from storage import queries
from storage.db import make_engine, make_session_factory
from storage.labels import (
    assign_splits,
    current_label,
    current_labels,
    current_labels_view,
    find_document,
    import_labels,
    set_label,
    split_of,
)
from storage.models import DocumentSplit
from storage.models import Label as LabelRow

README = Path(__file__).resolve().parents[2] / "docs" / "learning.md"  # where labels are documented


def _sha(heldout: bool, start: int = 0) -> str:
    """A sha256 whose split (at 30 %) is heldout or train, found by trying contents."""
    for i in range(start, start + 1000):
        sha = hashlib.sha256(f"doc-{i}".encode()).hexdigest()
        if (split_of(sha, 30) == "heldout") == heldout:
            return sha
    raise AssertionError("unreachable")


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def docs(sessions) -> dict[str, int]:
    """Two documents: a.png (train) and b.png (heldout); name -> id."""
    with sessions.begin() as session:
        return {
            name: queries.upsert_document(
                session, sha256=sha, uri=f"/data/receipts/{name}", media_type="image/png",
                size_bytes=10, page_count=1,
            )
            for name, sha in (("a.png", _sha(False)), ("b.png", _sha(True)))
        }


def _jsonl(*rows: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


LINES = _jsonl(
    {"doc": "a.png", "field": "total", "question": "What is the total?", "answer": "60.30"},
    {"doc": "a.png", "field": "date", "question": "What is the date?", "answer": "19/10/2018",
     "page": 1, "box": [10, 20, 40, 30], "type": "date"},
    {"doc": "b.png", "field": "total", "question": "What is the total?", "answer": "7.00"},
)


# --- parsing (no database) ----------------------------------------------------------------


def test_parse_reads_optional_page_box_and_type():
    labels = parse_labels(LINES, origin="labels.jsonl")
    assert [label.doc for label in labels] == ["a.png", "a.png", "b.png"]
    assert labels[1] == Label("a.png", "date", "19/10/2018", "What is the date?", 1,
                              Box(10.0, 20.0, 40.0, 30.0), "date")
    assert labels[1].line == 2


def test_parse_lists_every_problem_with_its_line():
    text = "\n".join([
        '{"doc": "a.png", "field": "total", "answer": "1"}',
        '{"field": "total", "answer": "1"}',                       # 2: no doc
        '{"doc": "a.png", "answer": "1"}',                         # 3: no field
        '{"doc": "a.png", "field": "date"}',                       # 4: no answer
        '{"doc": "a.png", "field": "x", "answer": "   "}',         # 5: empty answer
        '{"doc": "a.png", "field": "y", "answer": "1", "box": [50, 0, 10, 10]}',  # 6: x1 > x2
        '{"doc": "a.png", "field": "z", "answer": "1", "box": [1, 2, 3]}',        # 7
        '{"doc": "a.png", "field": "p", "answer": "1", "page": 0}',               # 8
        "not json",                                                # 9
        '{"doc": "../etc/passwd", "field": "t", "answer": "1"}',   # 10: escapes the source
        '{"doc": "a.png", "field": "total", "answer": "2"}',       # 11: contradicts line 1
        '{"doc": "a.png", "field": "total", "answer": "1"}',       # 12: identical: collapses
        "",
    ])
    with pytest.raises(LabelError) as err:
        parse_labels(text, origin="f.jsonl")
    problems = err.value.problems
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]
    assert "missing 'doc'" in problems[0] and "missing 'field'" in problems[1]
    assert "missing 'answer'" in problems[2] and "non-empty" in problems[3]
    assert "'box'" in problems[4] and "'box'" in problems[5] and "'page'" in problems[6]
    assert "not valid JSON" in problems[7] and "relative" in problems[8]
    assert "contradicts line 1" in problems[9] and "'2' vs '1'" in problems[9]


def test_a_byte_order_mark_is_read_past_and_database_limits_are_checked_before_import():
    line = '{"doc": "a.png", "field": "total", "answer": "1"}'
    assert parse_labels("\ufeff" + line, origin="f")[0].answer == "1"  # as Windows editors save UTF-8
    with pytest.raises(LabelError) as err:
        parse_labels("\n".join([
            '{"doc": "a.png", "field": "p", "answer": "1", "page": 1099511627776}',  # 2**40
            '{"doc": "a.png", "field": "n", "answer": "A\\u0000B"}',
        ]), origin="f")
    assert "'page' must be an integer from 1 to" in err.value.problems[0]
    assert "'answer' contains a NUL character" in err.value.problems[1]


def test_identical_duplicates_collapse_and_an_empty_file_is_an_error():
    line = '{"doc": "a.png", "field": "total", "answer": "1"}\n'
    assert len(parse_labels(line * 3, origin="f")) == 1
    for empty in ("", "\n  \n"):
        with pytest.raises(LabelError, match="f: no labels"):
            parse_labels(empty, origin="f")


# --- import -------------------------------------------------------------------------------


def test_refused_imports_write_nothing(sessions, docs):
    labels = parse_labels(LINES + _jsonl(
        {"doc": "gone.png", "field": "total", "answer": "1"},
        {"doc": "lost.png", "field": "total", "answer": "2"},
    ), origin="f")
    with pytest.raises(LabelError) as err, sessions.begin() as session:
        import_labels(session, labels, resolve_document=docs.get, source="import:f", reviewer=None)
    assert err.value.problems == ["unknown document 'gone.png'", "unknown document 'lost.png'"]
    # contradictory labels given directly, not parsed from a file
    labels = [Label("a.png", "total", "1"), Label("a.png", "total", "2")]
    with pytest.raises(LabelError, match="two different labels"), sessions.begin() as session:
        import_labels(session, labels, resolve_document=docs.get, source="s", reviewer=None)
    # two names of one content (one document) that disagree
    aliases = {**docs, "copy.png": docs["a.png"]}
    labels = [Label("a.png", "total", "1"), Label("copy.png", "total", "2")]
    with pytest.raises(LabelError, match="'copy.png' and 'a.png' are the same document"), \
            sessions.begin() as session:
        import_labels(session, labels, resolve_document=aliases.get, source="s", reviewer=None)
    with pytest.raises(LabelError, match="no labels"), sessions.begin() as session:
        import_labels(session, [], resolve_document=docs.get, source="s", reviewer=None)
    assert _count(sessions, LabelRow) == 0 and _count(sessions, DocumentSplit) == 0


def test_import_is_idempotent_and_splits_are_stable(sessions, docs):
    labels = parse_labels(LINES, origin="f")
    # copy.png: the same bytes as a.png under another name, with the same label
    aliases = {**docs, "copy.png": docs["a.png"]}
    copy = Label("copy.png", "total", "60.30", "What is the total?")
    with sessions.begin() as session:
        first = import_labels(session, [*labels, copy], resolve_document=aliases.get,
                              source="import:f", reviewer="bob")
    assert (first.imported, first.unchanged, first.documents, first.train, first.heldout) == (3, 1, 2, 1, 1)
    with sessions.begin() as session:
        # a later call with another percentage never moves a recorded split
        again = import_labels(session, labels, resolve_document=docs.get, source="import:f",
                              reviewer="bob", heldout_percent=100)
    assert (again.imported, again.unchanged, again.heldout) == (0, 3, 1)
    assert _count(sessions, LabelRow) == 3
    with sessions() as session:
        rows = current_labels(session)
        assert {(r.uri.rsplit("/", 1)[1], r.field, r.split) for r in rows} == {
            ("a.png", "total", "train"), ("a.png", "date", "train"), ("b.png", "total", "heldout")}
        dated = next(r for r in rows if r.field == "date")
        assert (dated.page_number, dated.box, dated.answer_type, dated.reviewer) == (
            1, (10.0, 20.0, 40.0, 30.0), "date", "bob")
        assert [r.field for r in current_labels(session, split="heldout")] == ["total"]
        assert len(current_labels(session, limit=1)) == 1


def test_a_changed_file_is_imported_but_does_not_undo_a_review(sessions, docs):
    labels = parse_labels(LINES, origin="f")
    with sessions.begin() as session:
        import_labels(session, labels, resolve_document=docs.get, source="import:f", reviewer=None)
        set_label(session, document_id=docs["a.png"], field="total", answer="60.50", reviewer="alice")
    with sessions.begin() as session:
        result = import_labels(session, labels, resolve_document=docs.get, source="import:f", reviewer=None)
    assert (result.imported, result.unchanged, result.kept_corrections) == (0, 3, 1)
    with sessions() as session:
        assert current_label(session, docs["a.png"], "total").answer == "60.50"

    changed = parse_labels(LINES.replace('"7.00"', '"7.50"'), origin="f")
    with sessions.begin() as session:
        result = import_labels(session, changed, resolve_document=docs.get, source="import:f", reviewer=None)
    assert (result.imported, result.unchanged) == (1, 2)
    with sessions() as session:
        assert current_label(session, docs["b.png"], "total").answer == "7.50"


# --- corrections --------------------------------------------------------------------------


def test_set_label_corrects_and_keeps_history(sessions, docs):
    with sessions.begin() as session:
        import_labels(session, parse_labels(LINES, origin="f"), resolve_document=docs.get,
                      source="import:f", reviewer=None)
        label_id = set_label(session, document_id=docs["a.png"], field="total", answer="60.50",
                             reviewer="alice")
        # the same correction again by the same reviewer writes nothing
        assert set_label(session, document_id=docs["a.png"], field="total", answer="60.50",
                         reviewer="alice") == label_id
    with sessions() as session:
        now = current_label(session, docs["a.png"], "total")
        assert (now.label_id, now.answer, now.source, now.reviewer) == (label_id, "60.50", "review", "alice")
        assert now.question == "What is the total?"  # carried over from the imported label
        history = session.scalars(
            sa.select(LabelRow.answer).where(LabelRow.document_id == docs["a.png"], LabelRow.field == "total")
            .order_by(LabelRow.created_at, LabelRow.id)
        ).all()
        assert history == ["60.30", "60.50"]
        assert len(current_labels(session)) == 3


def test_set_label_on_a_new_document_assigns_its_split_and_checks_input(sessions, docs):
    with sessions.begin() as session:
        set_label(session, document_id=docs["b.png"], field="vendor", answer="ACME", page_number=2,
                  reviewer="alice", question="Who is the vendor?")
    with sessions() as session:
        label = current_label(session, docs["b.png"], "vendor", 2)
        assert (label.split, label.page_number, label.question) == ("heldout", 2, "Who is the vendor?")
        assert current_label(session, docs["b.png"], "vendor") is None  # page NULL is another key
    with pytest.raises(LabelError) as err, sessions.begin() as session:
        set_label(session, document_id=999_999, field="total", answer=" ", page_number=0, reviewer="a")
    assert len(err.value.problems) == 3  # empty answer, page 0, unknown document
    assert _count(sessions, LabelRow) == 1


def _readme_insert() -> str:
    statement = re.search(r"^INSERT INTO labels .*?;$", README.read_text(), re.M | re.S)
    assert statement, "docs/learning.md must show the SQL INSERT that corrects a label"
    return statement.group(0)


def test_the_readme_sql_insert_corrects_the_current_label(sessions):
    with sessions.begin() as session:
        doc = queries.upsert_document(session, sha256=_sha(False), uri="/data/receipts/sroie_001.jpg",
                                      media_type="image/jpeg", size_bytes=10, page_count=1)
        other = queries.upsert_document(session, sha256=_sha(True), uri="/data/receipts/sroie_002.jpg",
                                        media_type="image/jpeg", size_bytes=10, page_count=1)
        ids = {"sroie_001.jpg": doc, "sroie_002.jpg": other}
        labels = [Label("sroie_001.jpg", "total", "60.30", "What is the total amount paid?", type="amount"),
                  Label("sroie_002.jpg", "total", "9.00")]
        import_labels(session, labels, resolve_document=ids.get, source="import:f", reviewer=None)
    with sessions.begin() as session:  # on Postgres, a later transaction: a later now()
        session.execute(sa.text(_readme_insert()))
    with sessions() as session:
        now = current_label(session, doc, "total")
        assert (now.answer, now.source, now.reviewer) == ("60.50", "review", "alice")
        assert (now.question, now.answer_type, now.split) == ("What is the total amount paid?", "amount", "train")
        assert current_label(session, other, "total").answer == "9.00"
    # And at once, in the same transaction or second: the id breaks the tie.
    with sessions.begin() as session:
        set_label(session, document_id=doc, field="total", answer="61.00", reviewer="bob")
        session.execute(sa.text(_readme_insert()))
        assert current_label(session, doc, "total").answer == "60.50"


# --- splits, lookup, the view -------------------------------------------------------------


def test_split_is_deterministic_from_the_sha256():
    assert split_of("00000000" + "0" * 56) == "heldout"  # 0 % 100 < 30
    assert split_of("0000001d" + "0" * 56) == "heldout"  # 29 < 30
    assert split_of("0000001e" + "0" * 56) == "train"  # 30
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000)]
    share = sum(split_of(s) == "heldout" for s in shas) / len(shas)
    assert 0.25 < share < 0.35
    assert all(split_of(s, 0) == "train" and split_of(s, 100) == "heldout" for s in shas[:50])


def test_assign_splits_records_once_and_find_document(sessions, docs):
    with sessions.begin() as session:
        assert assign_splits(session, docs.values(), 0) == {docs["a.png"]: "train", docs["b.png"]: "train"}
    with sessions.begin() as session:
        assert set(assign_splits(session, docs.values(), 100).values()) == {"train"}
        with pytest.raises(ValueError):
            assign_splits(session, docs.values(), 101)
        with pytest.raises(LabelError, match="document 999999 does not exist"):
            assign_splits(session, [999_999])
    # documents are found by uri, sha256 or a sha256 prefix
    with sessions() as session:
        sha = _sha(True)
        assert find_document(session, "/data/receipts/a.png") == docs["a.png"]
        assert find_document(session, sha) == docs["b.png"]
        assert find_document(session, sha[:8].upper()) == docs["b.png"]
        assert find_document(session, sha[:7]) is None  # too short to be a prefix
        assert find_document(session, "/nowhere.png") is None


def test_current_labels_view_columns_and_box_check(db_url, sessions, docs):
    engine = make_engine(db_url)
    try:
        columns = [c["name"] for c in sa.inspect(engine).get_columns("current_labels")]
    finally:
        engine.dispose()
    assert columns == [c.name for c in current_labels_view.columns]
    readme = README.read_text()
    assert all(f"`{c}`" in readme or c.startswith("box_") for c in columns)
    with pytest.raises(sa.exc.IntegrityError), sessions.begin() as session:
        session.execute(sa.insert(LabelRow).values(
            document_id=docs["a.png"], field="total", answer="1", source="sql",
            box_x1=50.0, box_y1=0.0, box_x2=10.0, box_y2=10.0))
