import numpy as np
import pytest

from pipeline.inference.postprocess import score_grid, to_masks, tune


def test_to_masks_threshold_min_area_and_constant_images():
    probs = np.zeros((3, 101, 101), np.float32)
    probs[:, :20, :20] = 0.7  # 400 px
    probs[1] = 0.0
    probs[1, :2, :2] = 0.9  # image 1: 4 px, below the minimum area
    masks = to_masks(probs, 0.5, 10, np.array([False, False, True]))
    assert masks[0].sum() == 400
    assert masks[1].sum() == 0
    assert masks[2].sum() == 0  # constant images predict empty


def test_tune_finds_the_threshold_and_min_area():
    rng = np.random.default_rng(0)
    truth = np.zeros((40, 101, 101), bool)
    truth[:20, 30:70, 30:70] = True
    probs = rng.uniform(0, 0.35, truth.shape).astype(np.float32)  # background partly above 0.3
    probs[truth] = 0.45  # salt between 0.3 and 0.5: a 0.5 threshold would miss all of it
    probs[20:, :3, :3] = 0.9  # small false positives on the empty images
    result = tune(probs, truth, np.zeros(40, bool), [0.3, 0.4, 0.5], [0, 20])
    assert result["best_threshold"] == 0.4 and result["best_min_area"] == 20
    assert result["oof_score"] == pytest.approx(1.0)
    assert [c["threshold"] for c in result["curve"]] == [0.3, 0.4, 0.5]
    assert result["curve"][2]["score_min_area_0"] == pytest.approx(0.0)


def test_the_empty_gate_lets_small_masks_survive_and_must_beat_no_gate_to_be_chosen():
    truth = np.zeros((40, 101, 101), bool)
    truth[:10, 10:16, 10:16] = True  # 10 images with a small (36 px) salt patch
    truth[10:20, 20:80, 20:80] = True  # 10 large masks; images 20-39 empty
    probs = np.where(truth, 0.8, 0.1).astype(np.float32)
    probs[20:, 50:55, 50:55] = 0.8  # 25 px false positives on every empty image
    constant = np.zeros(40, bool)
    # without a gate a minimum area must sacrifice the small masks (40 px) or the empty images (0 px)
    plain = tune(probs, truth, constant, [0.5], [0, 40])
    assert plain["best_empty_threshold"] is None and plain["best_min_area"] == 40 and plain["oof_score"] == pytest.approx(0.75)
    empty = np.r_[np.full(20, 0.2), np.full(20, 0.9)].astype(np.float32)  # the empty head separates them
    gated = tune(probs, truth, constant, [0.5], [0, 40], empty, [0.5, 0.8, 1.0])
    assert gated["best_empty_threshold"] == 0.5 and gated["best_min_area"] == 0 and gated["oof_score"] == pytest.approx(1.0)
    masks = to_masks(probs, 0.5, 0, constant, empty, 0.5)
    assert masks[:20].any(axis=(1, 2)).all() and not masks[20:].any()
    # a useless empty head: the gate is never chosen over no gate
    useless = tune(probs, truth, constant, [0.5], [0, 40], np.full(40, 0.5, np.float32), [0.3, 0.6, 1.0])
    assert useless["best_empty_threshold"] == 1.0 and useless["oof_score"] == pytest.approx(0.75)


def test_a_gate_listed_alone_is_applied_without_a_search_against_no_gate():
    """cpu-demo fixes its post-processing (one threshold, no minimum area, the gate at 0.5): a grid of one point is
    the choice, even where no gate would have scored more on these OOF images; off is searched only when listed."""
    truth = np.zeros((4, 101, 101), bool)
    truth[:2, 20:80, 20:80] = True
    probs = np.where(truth, 0.8, 0.1).astype(np.float32)
    empty = np.array([0.7, 0.2, 0.9, 0.1], np.float32)  # image 0 has salt, yet the head calls it empty
    fixed = tune(probs, truth, np.zeros(4, bool), [0.5], [0], empty, [0.5])
    assert fixed["best_empty_threshold"] == 0.5 and fixed["oof_score"] == pytest.approx(0.75)  # image 0 gated empty: scores 0
    searched = tune(probs, truth, np.zeros(4, bool), [0.5], [0], empty, [0.5, 1.0])
    assert searched["best_empty_threshold"] == 1.0 and searched["oof_score"] == pytest.approx(1.0)


def test_the_score_grid_scores_every_image_at_every_point_and_tune_takes_its_best_mean():
    """The per-image grid tune searches (and benchmarks/postprocess_cv.py cross-validates): an image emptied by the
    minimum area, the gate or a constant colour scores 1 when truly empty, else 0."""
    truth = np.zeros((4, 101, 101), bool)
    truth[0, 10:40, 10:40] = True  # 900 px of salt
    truth[1, 10:15, 10:15] = True  # 25 px
    probs = np.where(truth, 0.8, 0.1).astype(np.float32)
    probs[2, :6, :6] = 0.6  # image 2 is empty, with a 36 px false mask above 0.5 only
    probs[3] = 0.9  # a constant-colour image the network calls salt everywhere: emptied all the same
    constant = np.array([False, False, False, True])
    empty = np.array([0.1, 0.7, 0.9, 0.2], np.float32)
    grid = score_grid(probs, truth, constant, [0.5, 0.7], [0, 30], empty, [None, 0.5])
    assert grid.shape == (2, 2, 2, 4)
    np.testing.assert_array_equal(grid[0, 0, 0], [1, 1, 0, 1])  # image 2's false mask scores 0; constant image 3 empty: 1
    np.testing.assert_array_equal(grid[1, 0, 0], [1, 1, 1, 1])  # 0.7 drops image 2's false mask
    np.testing.assert_array_equal(grid[0, 1, 0], [1, 0, 0, 1])  # a 30 px minimum empties image 1's 25 px body, not image 2's 36 px
    np.testing.assert_array_equal(grid[0, 0, 1], [1, 0, 1, 1])  # the gate empties images 1 and 2
    result = tune(probs, truth, constant, [0.5, 0.7], [0, 30], empty, [0.5, 1.0])
    assert (result["best_threshold"], result["best_min_area"], result["best_empty_threshold"]) == (0.7, 0, 1.0)
    assert result["oof_score"] == grid.mean(axis=3).max() == 1.0
