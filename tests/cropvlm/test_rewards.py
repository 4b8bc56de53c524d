import pytest

from cropvlm.box import Box
from cropvlm.rewards import (BUILT_IN, accuracy_reward, area_cost, combine, exact_reward, format_reward,
                             likelihood_reward)
from cropvlm.sft_boxes import AREA_FACTORS, enlarge_box, quintile_edges

COMPLETIONS = ["[10, 20, 30, 40].", "[50, 50, 10, 10].", "somewhere at the top"]


def test_format_reward_is_one_only_for_valid_boxes():
    assert format_reward(COMPLETIONS) == [1.0, 0.0, 0.0]


def test_accuracy_reward_compares_by_type_and_falls_back_to_anls():
    rewards = accuracy_reward(
        ["[0, 0, 50, 50]."] * 4,
        predictions=["RM 60.30", "19 Oct 2018", "INDAH GIFT & HOME DEC", "nothing"],
        gold=["60.30", "19/10/2018", "INDAH GIFT & HOME DECO", None],
        answer_types=["amount", "date", "text", "text"],
    )
    assert rewards[:2] == [1.0, 1.0]
    assert 0.9 < rewards[2] < 1.0  # one letter off: ANLS, not exact
    assert rewards[3] is None  # no gold answer: not applicable


def test_exact_reward_gives_no_credit_for_a_near_miss():
    columns = dict(predictions=["RM 60.30", "INDAH GIFT & HOMEDECO", "INDAH GIFT & HOME DECO", "x"],
                   gold=["60.30", "INDAH GIFT & HOME DECO", "indah gift & home deco.", " "],
                   answer_types=["amount", "text", "text", "text"])
    assert exact_reward(["[0, 0, 50, 50]."] * 4, **columns) == [1.0, 0.0, 1.0, None]
    assert accuracy_reward(["[0, 0, 50, 50]."] * 4, **columns)[1] > 0.9  # what exact takes away
    assert BUILT_IN["exact"] is exact_reward


def test_likelihood_and_area_keep_none_where_not_applicable():
    assert likelihood_reward(COMPLETIONS, gold_loglik=[-1.5, None, -3.0]) == [-1.5, None, -3.0]
    assert area_cost(COMPLETIONS) == [pytest.approx(-0.04), None, None]


def test_combine_weights_by_name_and_skips_none():
    rewards = {"format": [1.0, 0.0], "likelihood": [-2.0, None]}
    assert combine(rewards, {"format": 1.0, "likelihood": 0.5}) == [0.0, 0.0]
    assert combine(rewards, {"format": 2.0}) == [2.0, 0.0]
    with pytest.raises(KeyError, match="accuracy"):
        combine(rewards, {"accuracy": 1.0})
    with pytest.raises(ValueError, match="different lengths"):
        combine({"a": [1.0], "b": [1.0, 2.0]}, {"a": 1.0})


def test_every_built_in_reward_takes_completions_and_ignores_other_columns():
    columns = dict(predictions=["x"] * 3, gold=["x"] * 3, answer_types=["text"] * 3, gold_loglik=[0.0] * 3)
    for name, reward in BUILT_IN.items():
        assert len(reward(COMPLETIONS, **columns)) == 3, name


def test_sft_enlargement_by_area_quintile_keeps_centre_and_page():
    areas = [0.0001 * (i + 1) for i in range(100)]  # relative areas 0.0001 .. 0.01
    edges = quintile_edges(areas)
    assert list(edges) == sorted(edges) and len(edges) == 4
    smallest = Box(40, 40, 41, 41)  # area 0.0001: first quintile
    grown = enlarge_box(smallest, edges)
    assert grown.area == pytest.approx(AREA_FACTORS[0] * smallest.area)
    assert grown.center == pytest.approx(smallest.center)
    largest = Box(0, 0, 10, 10)  # area 0.01: last quintile, unchanged
    assert enlarge_box(largest, edges) == largest
    corner = enlarge_box(Box(0, 0, 1, 1), edges)  # pushed inside the page, area kept
    assert corner.x1 == 0 and corner.y1 == 0 and corner.area == pytest.approx(45 * 0.0001)
    with pytest.raises(ValueError):
        quintile_edges([])
