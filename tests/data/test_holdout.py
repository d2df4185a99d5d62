import json

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.competition.rle import decode
from pipeline.data.layout import Layout, read_mask
from pipeline.data.prep import prep
from pipeline.errors import PipelineError
from pipeline.fileio import read_table


def test_holdout_carves_a_scorable_mini_competition(workdir, tmp_path):
    source = Layout(workdir / "data")
    assert main(["holdout", "--data", str(source.root), "--out", str(tmp_path / "mini"), "--test", "20", "--train", "50", "--seed", "4"]) == 0
    mini = Layout(tmp_path / "mini")
    train = read_table(mini.train_csv, ("id", "rle_mask"))
    truth = read_table(mini.test_truth, ("id", "rle_mask"))
    sample = read_table(mini.sample_submission, ("id", "rle_mask"))
    assert len(train["id"]) == 50 and len(truth["id"]) == 20 and sample["id"].tolist() == truth["id"].tolist()
    assert not set(train["id"]) & set(truth["id"])
    assert sorted(p.stem for p in mini.test_image_dir.glob("*.png")) == truth["id"].tolist()
    original = dict(zip(*read_table(source.train_csv, ("id", "rle_mask")).to_dict("list").values()))
    for image_id, rle in zip(truth["id"], truth["rle_mask"]):  # truth is the held-out image's own mask
        assert rle == original[image_id]
        np.testing.assert_array_equal(decode(rle, (101, 101)), read_mask(source.train_mask(image_id)))
        assert mini.test_image(image_id).read_bytes() == source.train_image(image_id).read_bytes()
    prep(mini.root)  # a valid layout for the rest of the pipeline
    # the same seed draws the same split; another seed another one
    main(["holdout", "--data", str(source.root), "--out", str(tmp_path / "again"), "--test", "20", "--train", "50", "--seed", "4"])
    assert read_table(Layout(tmp_path / "again").test_truth, ("id",))["id"].tolist() == truth["id"].tolist()
    main(["holdout", "--data", str(source.root), "--out", str(tmp_path / "other"), "--test", "20", "--train", "50", "--seed", "5"])
    assert read_table(Layout(tmp_path / "other").test_truth, ("id",))["id"].tolist() != truth["id"].tolist()


def test_holdout_refuses_too_many_images_and_an_existing_folder(workdir, tmp_path):
    from pipeline.data.holdout import carve_holdout

    with pytest.raises(PipelineError, match="sum to at most the 90 labelled ids"):
        carve_holdout(workdir / "data", tmp_path / "mini", n_test=60, n_train=40)
    carve_holdout(workdir / "data", tmp_path / "mini", n_test=10)
    with pytest.raises(PipelineError, match="already exists.*--force"):
        carve_holdout(workdir / "data", tmp_path / "mini", n_test=10)


def test_depth_split_tests_on_the_deepest_third_and_trains_on_the_rest(workdir, tmp_path):
    from pipeline.data.holdout import carve_holdout
    from pipeline.data.layout import read_depths

    source = Layout(workdir / "data")
    depth_of = read_depths(source.depths_csv)
    labelled = sorted(read_table(source.train_csv, ("id",))["id"])
    by_depth = sorted(labelled, key=lambda i: (depth_of[i], i))
    deepest = set(by_depth[-30:])  # 90 labelled ids: the deepest 30 are the test pool
    summary = carve_holdout(source.root, tmp_path / "deep", n_test=20, n_train=40, seed=1, split="depth")
    mini = Layout(tmp_path / "deep")
    test_ids = set(read_table(mini.test_truth, ("id",))["id"])
    train_ids = set(read_table(mini.train_csv, ("id",))["id"])
    assert len(test_ids) == 20 and len(train_ids) == 40 and test_ids <= deepest and not train_ids & deepest
    assert summary["test_depth"][0] >= summary["train_depth"][1]  # every test image lies at least as deep as every train image
    assert json.loads((mini.root / "holdout.json").read_text())["split"] == "depth"
    with pytest.raises(PipelineError, match="deepest third"):
        carve_holdout(source.root, tmp_path / "too-many", n_test=31, split="depth")


def test_contrast_curve_changes_only_the_test_images():
    from pipeline.data.holdout import ContrastCurve

    grey = np.array([[0, 64, 128, 191, 255]], np.uint8)
    np.testing.assert_array_equal(ContrastCurve()(grey), grey)
    # gain 0.5 around mid-grey: 0 -> 64, 255 -> 191 (rounded), mid-grey stays
    np.testing.assert_array_equal(ContrastCurve(gain=0.5)(grey), [[64, 96, 128, 159, 191]])
    np.testing.assert_array_equal(ContrastCurve(gamma=2.0)(grey), [[0, 16, 64, 143, 255]])
    with pytest.raises(PipelineError, match="must both be > 0"):
        ContrastCurve(gain=0.0)


def test_holdout_writes_curved_test_images_in_the_competition_format(workdir, tmp_path):
    from PIL import Image

    from pipeline.data.holdout import ContrastCurve
    from pipeline.data.layout import read_image

    source = Layout(workdir / "data")
    args = ["holdout", "--data", str(source.root), "--test", "10", "--train", "30", "--seed", "2"]
    assert main(args + ["--out", str(tmp_path / "plain")]) == 0
    assert main(args + ["--out", str(tmp_path / "gain"), "--test-gain", "0.5"]) == 0
    plain, gain = Layout(tmp_path / "plain"), Layout(tmp_path / "gain")
    ids = read_table(plain.test_truth, ("id",))["id"].tolist()
    assert read_table(gain.test_truth, ("id",))["id"].tolist() == ids  # the same draw, only the pixels differ
    for image_id in ids:
        with Image.open(gain.test_image(image_id)) as image:
            assert image.mode == "RGB"
        np.testing.assert_array_equal(read_image(gain.test_image(image_id)), ContrastCurve(gain=0.5)(read_image(plain.test_image(image_id))))
    for image_id in read_table(gain.train_csv, ("id",))["id"]:  # training images are copied untouched
        assert gain.train_image(image_id).read_bytes() == source.train_image(image_id).read_bytes()
    assert json.loads((gain.root / "holdout.json").read_text())["test_curve"] == {"gain": 0.5, "gamma": 1.0}
    prep(gain.root)
