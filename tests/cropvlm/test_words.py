"""Glued words cut apart by word frequencies, and only where the lexicon is sure."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cropvlm.answer_head.candidates import AnswerCandidate
from cropvlm.answer_head.examples import FieldCandidates
from cropvlm.readers.ocr import _chosen
from cropvlm.readers.words import lexicon, split_glued
from cropvlm.templates import FieldSpec


@pytest.mark.parametrize(("glued", "cut"), [
    ("KUALALUMPUR", "KUALA LUMPUR"),
    ("53200,KUALALUMPUR", "53200,KUALA LUMPUR"),  # digits and punctuation stay where they are
    ("SANYU STATIONERYSHOP", "SANYU STATIONERY SHOP"),
    ("LIM SENG THO HARDWARETRADING", "LIM SENG THO HARDWARE TRADING"),
    ("TAMANAIR BIRU", "TAMAN AIR BIRU"),  # a 3-letter part only when very frequent
    ("NO.53JALANPUTRA1", "NO.53JALAN PUTRA1"),
])
def test_glued_words_are_cut(glued, cut):
    assert split_glued(glued) == cut


@pytest.mark.parametrize("kept", [
    "SUNFISH", "HARDWARE", "RESTAURANT",  # words themselves
    "UNIHAKKA", "PINGHWAI",  # names: no cut into syllables
    "FamilyMart", "Kualalumpur",  # mixed case is written so
    "TAMANS", "INV20231182", "",  # too short to cut; letters touching digits in an id
])
def test_words_and_names_are_kept(kept):
    assert split_glued(kept) == kept


def test_the_lexicon_holds_the_documents_languages():
    words = lexicon()
    assert len(words) > 100_000
    for word in ("jalan", "kuala", "rechnung", "factuur", "facture", "fattura", "factura", "invoice"):
        assert words[word] >= 3.0, word


def test_the_heads_free_text_answer_is_cut_and_its_value_follows():
    spec = FieldSpec(field="address", question="What is the address?", type="text")
    candidate = AnswerCandidate("53000 KUALALUMPUR", "53000 KUALALUMPUR", (0,))
    field = FieldCandidates(spec, (candidate,), np.zeros((1, 1), np.float32), "")
    answer = _chosen(field, SimpleNamespace(index=0, confidence=0.91234), "page")
    assert (answer.text, answer.value, answer.confidence) == ("53000 KUALA LUMPUR", "53000 KUALA LUMPUR", 0.9123)
    typed = FieldCandidates(FieldSpec(field="no", question="Invoice number?", type="id"),
                            (AnswerCandidate("INVOICENUMBER", "INVOICENUMBER", (0,)),), np.zeros((1, 1), np.float32), "")
    assert _chosen(typed, SimpleNamespace(index=0, confidence=0.5), "page").text == "INVOICENUMBER"
