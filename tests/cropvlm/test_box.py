import pytest

from cropvlm.box import FULL_PAGE, Box
from cropvlm.errors import BoxError


def test_parse_and_format_round_trip_the_papers_text():
    box = Box.parse("[12, 5, 40, 9].")
    assert box == Box(12, 5, 40, 9)
    assert box.format() == "[12, 5, 40, 9]."
    assert Box.parse(box.format()) == box


def test_parse_finds_the_box_inside_chatty_output_and_accepts_decimals():
    assert Box.parse("Sure! The region is [10.5, 20, 30, 40.25]. Done") == Box(10.5, 20, 30, 40.25)


@pytest.mark.parametrize(
    "text",
    ["", "no box", "[1, 2, 3]", "[10, 10, 5, 20].", "[10, 10, 20, 10].", "[0, 0, 101, 50].", "[-1, 0, 5, 5]."],
)
def test_invalid_policy_outputs_raise(text):
    with pytest.raises(BoxError):
        Box.parse(text)


def test_to_pixels_covers_the_region_and_is_never_empty():
    assert Box(10, 20, 30, 40).to_pixels(1000, 500) == (100, 100, 300, 200)
    left, top, right, bottom = Box(99.99, 99.99, 100, 100).to_pixels(100, 100)
    assert right > left and bottom > top and right <= 100 and bottom <= 100


def test_clamped_repairs_any_coordinates_into_a_valid_box():
    box = Box.clamped(120, -5, 80, 3)
    assert (box.x1, box.x2) == (80, 100)
    assert box.y1 == 0 and box.y2 >= 1.0
    tiny = Box.clamped(50, 50, 50, 50, min_size=2)
    assert tiny.x2 - tiny.x1 == pytest.approx(2)


def test_scaled_keeps_centre_and_multiplies_area_inside_the_page():
    box = Box(40, 40, 50, 50)
    bigger = box.scaled(4)
    assert bigger.center == pytest.approx(box.center)
    assert bigger.area == pytest.approx(4 * box.area)
    corner = Box(0, 0, 10, 10).scaled(45)  # shifted back inside, keeps its area
    assert corner.x1 == 0 and corner.y1 == 0
    assert corner.area == pytest.approx(45 * 0.01)
    assert Box(0, 0, 60, 60).scaled(10) == FULL_PAGE


def test_iou_and_contains():
    a, b = Box(0, 0, 50, 50), Box(25, 25, 75, 75)
    assert a.iou(a) == pytest.approx(1)
    assert a.iou(b) == pytest.approx(625 / (2500 + 2500 - 625))
    assert FULL_PAGE.contains(a) and not a.contains(b)
