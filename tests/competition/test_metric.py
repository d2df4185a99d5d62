import numpy as np
import pytest

from pipeline.competition.coverage import coverage, coverage_class, score_table
from pipeline.competition.metric import competition_score, per_image_scores


def masks_with_iou(intersection: int, union: int, size: int = 101):
    """Prediction and truth along the first row-major pixels with the given intersection and union."""
    truth = np.zeros(size * size, bool)
    predicted = np.zeros(size * size, bool)
    truth[:intersection] = True
    predicted[: union] = True
    return predicted.reshape(size, size), truth.reshape(size, size)


@pytest.mark.parametrize(
    "intersection, union, expected",
    [(50, 100, 0.0), (51, 100, 0.1), (76, 100, 0.6), (75, 100, 0.5), (95, 100, 0.9), (96, 100, 1.0), (100, 100, 1.0), (1, 3, 0.0)],
)
def test_hand_computed_ious(intersection, union, expected):
    predicted, truth = masks_with_iou(intersection, union)
    assert per_image_scores(predicted[None], truth[None])[0] == pytest.approx(expected)


def test_empty_cases():
    empty = np.zeros((1, 101, 101), bool)
    salt = empty.copy()
    salt[0, 10:20, 10:20] = True
    assert per_image_scores(empty, empty)[0] == 1.0
    assert per_image_scores(salt, empty)[0] == 0.0
    assert per_image_scores(empty, salt)[0] == 0.0


def test_mean_over_images():
    predicted, truth = masks_with_iou(76, 100)
    empty = np.zeros_like(truth)
    stack_pred = np.stack([predicted, empty, empty])
    stack_truth = np.stack([truth, empty, truth])
    np.testing.assert_allclose(per_image_scores(stack_pred, stack_truth), [0.6, 1.0, 0.0])
    assert competition_score(stack_pred, stack_truth) == pytest.approx(1.6 / 3)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        per_image_scores(np.zeros((2, 101, 101)), np.zeros((3, 101, 101)))


def test_coverage_classes():
    masks = np.zeros((4, 10, 10), bool)
    masks[1, 0, 0] = True  # 1%
    masks[2, :5] = True  # 50%
    masks[3] = True
    np.testing.assert_allclose(coverage(masks), [0, 0.01, 0.5, 1.0])
    np.testing.assert_array_equal(coverage_class(coverage(masks)), [0, 1, 5, 10])
    table = score_table(np.array([1.0, 0.0, 0.5, 0.5]), np.array([0, 1, 5, 5]))
    assert table[-1] == {"coverage_class": "all", "images": 4, "score": 0.5}
    assert table[2] == {"coverage_class": 5, "images": 2, "score": 0.5}
