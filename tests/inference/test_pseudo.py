"""pseudo: which test images become pseudo labels, what is written, and that training uses them for the training
part of each fold only."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.competition.rle import decode
from pipeline.config import load_config, save_config
from pipeline.data.prep import load_test_cache, load_train_cache
from pipeline.errors import PipelineError
from pipeline.fileio import save_npy, write_json, write_table
from pipeline.data.pseudo_set import load_pseudo
from pipeline.inference.pseudo import choose_rule, confidence, selected
from pipeline.training.trainer import build_fold_training, fold_split, training_arrays
from pipeline.training import distributed


def test_confidence_is_the_share_of_decided_pixels():
    probs = np.full((2, 4, 5), 0.95, np.float32)  # 20 pixels each
    probs[0, 0, :3] = 0.5  # 3 undecided
    probs[1, :2] = 0.85  # 10 pixels at |p - 0.5| = 0.35: decided for margin 0.3, not for 0.4
    np.testing.assert_allclose(confidence(probs, 0.4), [17 / 20, 10 / 20])
    np.testing.assert_allclose(confidence(probs, 0.3), [17 / 20, 1.0])
    np.testing.assert_allclose(confidence(probs, 0.3, threshold=0.6), [17 / 20, 10 / 20])  # around the tuned threshold


def test_the_rule_is_tuned_on_oof_to_keep_the_most_images_that_score_well():
    # four images: probabilities 0.3 off the threshold everywhere (scores 1, 1), 0.15 off (scores 1, 0)
    probs = np.stack([np.full((4, 4), p, np.float32) for p in (0.8, 0.2, 0.65, 0.35)])
    scores = np.array([1.0, 1.0, 1.0, 0.0])
    masks = probs > 0.5
    none = np.zeros(4, bool)
    import pipeline.inference.pseudo as pseudo

    pseudo.MIN_KEPT, saved = 1, pseudo.MIN_KEPT
    try:
        rule = choose_rule(probs, masks, None, none, scores, 0.5, 0.9, margins=(0.1, 0.2), shares=(0.9,))
        assert rule == {"margin": 0.2, "min_confidence": 0.9, "kept": 2, "score": 1.0}  # margin 0.1 keeps all four: 0.75
        rule = choose_rule(probs, masks, None, none, scores, 0.5, 0.7, margins=(0.1, 0.2), shares=(0.9,))
        assert rule["margin"] == 0.1 and rule["kept"] == 4  # a looser target takes the looser rule
        assert choose_rule(probs, masks, None, none, np.zeros(4), 0.5, 0.9, margins=(0.1, 0.2), shares=(0.9,)) is None
    finally:
        pseudo.MIN_KEPT = saved


def test_selection_needs_confidence_no_constant_image_and_agreement_with_the_empty_head():
    masks = np.zeros((5, 3, 3), bool)
    masks[[0, 1, 3], 1, 1] = True  # images 0, 1, 3 predicted with salt; 2 and 4 empty
    scores = np.array([0.99, 0.90, 0.99, 0.99, 0.99])
    constant = np.array([False, False, False, True, False])
    empty = np.array([0.1, 0.1, 0.9, 0.1, 0.2])  # image 4: predicted empty, but the head says salt
    assert selected(masks, scores, None, constant, 0.98).tolist() == [True, False, True, False, True]
    assert selected(masks, scores, empty, constant, 0.98).tolist() == [True, False, True, False, False]


def _fake_run(workdir: Path) -> tuple[Path, np.ndarray]:
    """A finished run without training: test probabilities that are sure of the truth on even images and
    undecided (0.55) on odd ones; OOF the same way on fold 0's images."""
    run = workdir / "runs" / "fake"
    cfg = load_config("smoke", ["data.data_dir=data"])
    save_config(cfg, run / "config.yaml")
    truth = pd.read_csv(workdir / "data" / "test_truth.csv", dtype=str, keep_default_na=False)
    test = load_test_cache(workdir / "data")
    rle = dict(zip(truth["id"], truth["rle_mask"]))
    masks = np.stack([decode(rle[i], (101, 101)) for i in test.ids])
    probs = np.where(masks, 0.97, 0.02).astype(np.float32)
    probs[1::2] = 0.55
    save_npy(run / "test_probs.npy", probs.astype(np.float16))
    write_table(run / "test_ids.csv", pd.DataFrame({"id": test.ids}))
    write_json(run / "postprocess.json", {"best_threshold": 0.5, "best_min_area": 0, "best_empty_threshold": None})
    train = load_train_cache(workdir / "data")
    split = fold_split(train, workdir / "folds" / "folds.csv", 0)
    oof = np.where(train.masks[split.val_index], 0.97, 0.02).astype(np.float32)
    oof[1::2] = 0.55
    save_npy(run / "fold_0" / "oof.npy", oof.astype(np.float16))
    write_table(run / "fold_0" / "oof_ids.csv", pd.DataFrame({"id": train.ids[split.val_index]}))
    return run, masks


def test_pseudo_keeps_the_confident_test_images_with_their_masks(workdir, capsys):
    run, masks = _fake_run(workdir)
    assert main(["pseudo", "--run", "fake", "--out", "pseudo1", "--margin", "0.4", "--min-confidence", "0.98"]) == 0
    test = load_test_cache(workdir / "data")
    expected = (np.arange(len(test.ids)) % 2 == 0) & ~test.is_constant
    pseudo = load_pseudo(workdir / "pseudo1")
    assert pseudo.ids.tolist() == test.ids[expected].tolist()
    np.testing.assert_array_equal(pseudo.masks, masks[expected])
    np.testing.assert_array_equal(pseudo.images, test.images[expected])
    np.testing.assert_array_equal(pseudo.depth, test.depth[expected])
    table = pd.read_csv(workdir / "pseudo1" / "pseudo.csv", dtype=str, keep_default_na=False)
    assert table["id"].tolist() == pseudo.ids.tolist() and set(table["confidence"]) == {"1.0"}
    summary = json.loads((workdir / "pseudo1" / "summary.json").read_text())
    assert summary["selected"] == int(expected.sum())
    assert summary["oof_score_selected"] == 1.0  # the sure OOF images are the truth itself
    assert "kept" in capsys.readouterr().out
    assert main(["pseudo", "--run", "fake", "--out", "pseudo1", "--margin", "0.4", "--min-confidence", "0.98"]) == 2  # never overwritten
    assert main(["pseudo", "--run", "fake", "--out", "pseudo2", "--margin", "0.4"]) == 2  # both or neither
    assert main(["pseudo", "--run", "fake", "--out", "pseudo3"]) == 0  # tuned on OOF: the sure half scores 1.0
    tuned = json.loads((workdir / "pseudo3" / "summary.json").read_text())
    assert tuned["rule"] == "tuned on OOF" and tuned["selected"] == summary["selected"] and tuned["oof_score_selected"] == 1.0


def test_pseudo_labels_join_the_training_part_only(workdir):
    _fake_run(workdir)
    main(["pseudo", "--run", "fake", "--out", "pseudo1", "--margin", "0.4", "--min-confidence", "0.98"])
    pseudo = load_pseudo(workdir / "pseudo1")
    cfg = load_config("smoke", ["data.data_dir=data", "data.pseudo_dir=pseudo1"])
    train = load_train_cache(workdir / "data")
    split = fold_split(train, workdir / "folds" / "folds.csv", 1)
    images, depth, masks = training_arrays(cfg, train, split)
    n_real = len(split.train_index)
    assert len(images) == len(depth) == len(masks) == n_real + len(pseudo.ids)
    np.testing.assert_array_equal(images[n_real:], pseudo.images)
    np.testing.assert_array_equal(masks[:n_real], train.masks[split.train_index])
    training = build_fold_training(cfg, workdir / "runs" / "r1", 1, train, distributed.setup("cpu"))
    assert len(training.train_set) == n_real + len(pseudo.ids)
    assert len(training.val_loader.dataset) == len(split.val_index)  # validation: the real fold, nothing added
    np.testing.assert_array_equal(training.val_loader.dataset.dataset.images, train.images[split.val_index])


def test_pseudo_ids_that_are_training_ids_are_refused(workdir):
    _fake_run(workdir)
    main(["pseudo", "--run", "fake", "--out", "pseudo1", "--margin", "0.4", "--min-confidence", "0.98"])
    arrays = dict(np.load(workdir / "pseudo1" / "pseudo.npz"))
    train = load_train_cache(workdir / "data")
    arrays["ids"] = arrays["ids"].copy()
    arrays["ids"][0] = train.ids[0]
    np.savez(workdir / "pseudo1" / "pseudo.npz", **arrays)
    cfg = load_config("smoke", ["data.data_dir=data", "data.pseudo_dir=pseudo1"])
    with pytest.raises(PipelineError, match="also training ids"):
        training_arrays(cfg, train, fold_split(train, workdir / "folds" / "folds.csv", 0))
