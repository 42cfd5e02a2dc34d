from __future__ import annotations

from fractions import Fraction

import pytest

from klipmedia import CropPath, KlipmediaError, place_window, window_size


@pytest.mark.parametrize(
    ("src", "aspect", "size"),
    [
        ((1920, 1080), Fraction(9, 16), (606, 1080)),
        ((1920, 1080), Fraction(9, 8), (1214, 1080)),
        ((1080, 1920), Fraction(9, 8), (1080, 960)),
        ((641, 359), Fraction(9, 16), (200, 358)),
    ],
)
def test_window_size_is_the_largest_even_fit(
    src: tuple[int, int], aspect: Fraction, size: tuple[int, int]
) -> None:
    assert window_size(*src, aspect) == size


def test_place_window_centres_and_clamps() -> None:
    assert place_window(1920, 1080, (606, 1080), 0.5).x == 656
    assert place_window(1920, 1080, (606, 1080), 0.0).x == 0
    assert place_window(1920, 1080, (606, 1080), 1.0).x == 1920 - 606
    assert place_window(1920, 1080, (606, 1080), 0.3).x % 2 == 0


def test_crop_path_interpolates_and_supports_cuts() -> None:
    path = CropPath((0.0, 1.0, 1.0, 2.0), (0.2, 0.4, 0.8, 0.8))
    assert path.center_at(-1) == 0.2
    assert path.center_at(0.5) == pytest.approx(0.3)
    assert path.center_at(1.0) == 0.8
    assert path.center_at(5.0) == 0.8


def test_crop_path_validates() -> None:
    with pytest.raises(KlipmediaError):
        CropPath((1.0, 0.0), (0.5, 0.5))
    with pytest.raises(KlipmediaError):
        CropPath((0.0,), (1.5,))
