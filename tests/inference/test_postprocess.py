import numpy as np
import pytest

from pipeline.inference.postprocess import to_masks, tune


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
