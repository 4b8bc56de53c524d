import pytest
from PIL import Image

from cropvlm.box import Box
from cropvlm.errors import SpecError
from cropvlm.policies.base import CropRequest, proposal_from_text
from cropvlm.specs import build_policy


def requests(n=3, gold=None):
    page = Image.new("RGB", (400, 600), "white")
    return [CropRequest(page, f"What is field {i}?", f"f{i}", gold) for i in range(n)]


def test_full_proposes_no_crop():
    assert all(p.box is None and p.valid for p in build_policy("full").propose(requests()))


def test_center_is_a_centred_box_of_the_given_side():
    policy = build_policy("center@40")
    assert policy.version == "center@40"
    box = policy.propose(requests(1))[0].box
    assert box == Box(30, 30, 70, 70)


def test_random_is_reproducible_per_request_and_differs_between_questions():
    policy = build_policy("random@3")
    first, again = policy.propose(requests()), policy.propose(list(reversed(requests())))
    assert [p.box for p in first] == [p.box for p in reversed(again)]
    assert len({p.box for p in first}) == 3
    assert build_policy("random@4").propose(requests(1))[0].box != first[0].box


def test_oracle_grows_the_gold_box_to_the_minimum_area_and_keeps_it_inside():
    gold = Box(10, 10, 14, 12)
    box = build_policy("oracle@0.04").propose(requests(1, gold))[0].box
    assert box.contains(gold)
    assert box.area == pytest.approx(0.04)


def test_oracle_without_gold_falls_back_to_the_full_page_flagged_invalid():
    proposal = build_policy("oracle").propose(requests(1))[0]
    assert proposal.box is None and not proposal.valid


def test_invalid_policy_text_falls_back_to_the_full_page():
    assert proposal_from_text("[50, 50, 10, 10].").box is None
    assert not proposal_from_text("I think the top left").valid
    assert proposal_from_text("[1, 2, 30, 40].").box == Box(1, 2, 30, 40)


@pytest.mark.parametrize("spec", ["", "bogus", "center@wide", "full@2", "random@x"])
def test_bad_policy_specs_raise(spec):
    with pytest.raises(SpecError):
        build_policy(spec)
