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
