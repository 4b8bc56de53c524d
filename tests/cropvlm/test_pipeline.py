"""crop_then_answer's contract, with a small reader that reports what it was shown."""

from PIL import Image

from cropvlm.box import Box
from cropvlm.pipeline import PageRef, crop_then_answer
from cropvlm.readers.base import Answer
from cropvlm.specs import build_policy
from cropvlm.templates import FieldSpec

FIELDS = (FieldSpec("a", "What is A?"), FieldSpec("b", "What is B?", "amount"))


class SizeReader:
    """Answers with the size of the image it read; confidence from a per-page table."""

    version = "size-reader"

    def __init__(self, confidence_by_page=None):
        self.calls = 0
        self.confidence_by_page = confidence_by_page or {}

    def answer(self, requests):
        self.calls += 1
        answers = []
        for request in requests:
            image = request.crop if request.crop is not None else request.page
            confidence = self.confidence_by_page.get(request.page.info.get("page"), 0.5)
            answers.append(Answer(f"{image.width}x{image.height}", None, confidence, "crop" if request.crop else "page"))
        return answers


def page(number, size=(1000, 2000)):
    image = Image.new("RGB", size, "white")
    image.info["page"] = number
    return image


def test_one_batched_call_for_all_pages_and_fields_with_crops_cut_at_full_resolution():
    reader = SizeReader()
    pages = [PageRef("doc1", 1, page(1)), PageRef("doc2", 1, page(1, (500, 500)))]
    batch = crop_then_answer(pages, FIELDS, build_policy("center@50"), reader)
    assert reader.calls == 1
    assert [(r.doc, r.spec.field) for r in batch.results] == [("doc1", "a"), ("doc1", "b"), ("doc2", "a"), ("doc2", "b")]
    first = batch.results[0]
    assert first.answer.text == "500x1000" and first.crop_pixels == (250, 500, 750, 1500)
    assert first.page_size == (1000, 2000)
    assert batch.results[2].answer.text == "250x250"
    assert all(r.is_best for r in batch.results)  # one page per document


def test_full_page_policy_sends_no_crop():
    batch = crop_then_answer([PageRef("d", 1, page(1))], FIELDS, build_policy("full"), SizeReader())
    assert all(r.crop is None and r.crop_pixels is None and r.answer.source == "page" for r in batch.results)


def test_best_page_per_field_is_the_most_confident_and_all_candidates_stay():
    reader = SizeReader({1: 0.2, 2: 0.9, 3: 0.9})
    pages = [PageRef("d", n, page(n)) for n in (1, 2, 3)]
    results = crop_then_answer(pages, FIELDS, build_policy("full"), reader).results
    assert len(results) == 6
    best = [(r.page_number, r.spec.field) for r in results if r.is_best]
    assert best == [(2, "a"), (2, "b")]  # tie between pages 2 and 3 goes to the earlier page


def test_gold_boxes_reach_the_oracle():
    gold = Box(10, 10, 20, 15)
    pages = [PageRef("d", 1, page(1), {"a": gold})]
    results = crop_then_answer(pages, FIELDS, build_policy("oracle"), SizeReader()).results
    assert results[0].proposal.box.contains(gold)
    assert results[1].proposal.box is None and not results[1].proposal.valid
