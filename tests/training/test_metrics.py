"""Instance matching on hand-made label images."""

import numpy as np
import pytest

from napari_unet.training.metrics import average_precision, match_counts, mean_average_precision


def square(shape=(32, 32), top=5, left=5, size=10, value=1, into=None) -> np.ndarray:
    out = np.zeros(shape, np.int32) if into is None else into
    out[top : top + size, left : left + size] = value
    return out


def test_perfect_match() -> None:
    true = square(value=3)
    square(top=20, left=20, size=6, value=9, into=true)
    assert match_counts(true, true, 0.5) == (2, 0, 0)
    assert np.array_equal(average_precision(true, true), [1.0, 1.0])


@pytest.mark.parametrize("shift, matched", [(3, True), (4, False)])
def test_shift_across_the_threshold(shift: int, matched: bool) -> None:
    true = square()
    pred = square(left=5 + shift)  # IoU 70/130 = 0.54 for 3 px, 60/140 = 0.43 for 4 px
    expected = (1, 0, 0) if matched else (0, 1, 1)
    assert match_counts(true, pred, 0.5) == expected
    assert match_counts(true, pred, 0.4) == (1, 0, 0)  # Hungarian path below 0.5


def test_split_object() -> None:
    true = square()
    pred = square(value=1)
    pred[5:15, 11:15] = 2  # 60 / 40 split: only the larger part matches
    assert match_counts(true, pred, 0.5) == (1, 1, 0)
    assert average_precision(true, pred, (0.5, 0.75)).tolist() == [0.5, 0.0]


def test_merged_objects() -> None:
    true = square(size=10)
    true[5:15, 15:19] = 2  # neighbours of 100 and 40 px
    pred = (true > 0).astype(np.int32)  # one object over both
    assert match_counts(true, pred, 0.5) == (1, 0, 1)


def test_empty_cases() -> None:
    empty = np.zeros((16, 16), np.int32)
    some = square((16, 16), 2, 2, 4)
    square(top=10, left=10, size=3, value=2, into=some)
    assert match_counts(empty, some, 0.5) == (0, 2, 0)
    assert match_counts(some, empty, 0.5) == (0, 0, 2)
    assert average_precision(empty, some).tolist() == [0.0, 0.0]
    assert average_precision(some, empty).tolist() == [0.0, 0.0]
    assert average_precision(empty, empty).tolist() == [1.0, 1.0]


def test_three_dimensional_labels() -> None:
    true = np.zeros((8, 16, 16), np.int32)
    true[1:5, 2:8, 2:8] = 1
    true[2:7, 9:15, 9:15] = 2
    pred = np.zeros_like(true)
    pred[1:5, 3:9, 2:8] = 5  # IoU 120/168
    pred[0:2, 0:2, 12:16] = 6  # a false positive
    assert match_counts(true, pred, 0.5) == (1, 1, 1)
    assert match_counts(true, pred, 0.75) == (0, 2, 2)


def test_one_to_one_matching_below_one_half() -> None:
    """Greedy best-IoU matching finds one pair here; the maximum matching finds two."""
    true = np.zeros((1, 14), np.int32)
    true[0, :10], true[0, 10:] = 1, 2
    pred = np.zeros_like(true)
    pred[0, 2:12], pred[0, :2] = 1, 2  # IoU(1,1)=8/12, IoU(1,2)=2/10, IoU(2,1)=2/12
    assert match_counts(true, pred, 0.1) == (2, 0, 0)
    assert match_counts(true, pred, 0.5) == (1, 1, 1)


def test_ids_dtypes_and_large_ids_do_not_matter() -> None:
    true = square(value=1)
    square(top=20, left=20, size=6, value=2, into=true)
    pred = np.roll(true, 1, axis=1)
    expected = average_precision(true, pred, (0.3, 0.5, 0.75))
    big = np.where(pred > 0, pred.astype(np.int64) * 10**12, 0)
    found = average_precision(true.astype(np.uint16), big, (0.3, 0.5, 0.75))
    assert np.array_equal(found, expected)


def test_mean_average_precision_and_errors() -> None:
    true = square()
    perfect, miss = true.copy(), np.zeros_like(true)
    assert mean_average_precision([true, true], [perfect, miss]).tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="shape"):
        match_counts(true, true[:10], 0.5)
    with pytest.raises(ValueError, match="predictions"):
        mean_average_precision([true], [])
    with pytest.raises(TypeError, match="integer"):
        match_counts(true.astype(float), true, 0.5)
