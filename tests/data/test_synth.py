import csv

import numpy as np
import pytest
from PIL import Image

from pipeline.competition.rle import decode
from pipeline.data.synth import synthesize
from pipeline.errors import PipelineError


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    synthesize(root, n_train=200, n_test=50, seed=11)
    return root


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_writes_the_kaggle_layout(synthetic):
    train = rows(synthetic / "train.csv")
    assert list(train[0]) == ["id", "rle_mask"] and len(train) == 200
    depths = rows(synthetic / "depths.csv")
    assert list(depths[0]) == ["id", "z"] and len(depths) == 250
    sample = rows(synthetic / "sample_submission.csv")
    assert len(sample) == 50 and {r["id"] for r in sample} == {p.stem for p in (synthetic / "test" / "images").glob("*.png")}
    assert len(rows(synthetic / "test_truth.csv")) == 50
    assert (synthetic / "preview.png").exists()
    salt = next(r for r in train if r["rle_mask"])
    empty = next(r for r in train if not r["rle_mask"])
    with Image.open(synthetic / "train" / "images" / f"{salt['id']}.png") as image:
        assert image.mode == "RGB" and image.size == (101, 101)
        pixels = np.array(image)
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    with Image.open(synthetic / "train" / "masks" / f"{salt['id']}.png") as mask:
        values = np.array(mask)
        assert values.dtype == np.uint16 and set(np.unique(values)) == {0, 65535}
        np.testing.assert_array_equal(values > 0, decode(salt["rle_mask"]))
    with Image.open(synthetic / "train" / "masks" / f"{empty['id']}.png") as mask:
        assert mask.mode == "L" and not np.array(mask).any()


def test_fractions_like_the_real_data(synthetic):
    train = rows(synthetic / "train.csv") + rows(synthetic / "test_truth.csv")
    empty = sum(not r["rle_mask"] for r in train) / len(train)
    assert empty == pytest.approx(0.39, abs=0.01)
    masks = np.stack([decode(r["rle_mask"]) for r in train if r["rle_mask"]])
    coverage = masks.reshape(len(masks), -1).mean(axis=1)
    assert coverage.min() < 0.1 and coverage.max() > 0.9  # a broad coverage distribution
    assert len(np.unique(np.ceil(coverage * 10))) >= 9


def test_deterministic_for_a_seed(synthetic, tmp_path):
    synthesize(tmp_path / "again", n_train=200, n_test=50, seed=11)
    assert (tmp_path / "again" / "train.csv").read_bytes() == (synthetic / "train.csv").read_bytes()
    first = sorted((synthetic / "train" / "images").glob("*.png"))[0]
    assert (tmp_path / "again" / "train" / "images" / first.name).read_bytes() == first.read_bytes()
    synthesize(tmp_path / "other", n_train=200, n_test=50, seed=12)
    assert (tmp_path / "other" / "train.csv").read_bytes() != (synthetic / "train.csv").read_bytes()


def test_refuses_to_overwrite_a_data_folder(synthetic):
    before = (synthetic / "train.csv").read_bytes()
    with pytest.raises(PipelineError, match="--force"):
        synthesize(synthetic, n_train=5, n_test=5)
    assert (synthetic / "train.csv").read_bytes() == before


def test_synth_force_with_fewer_images_leaves_no_old_png_behind(tmp_path):
    from pipeline.data.synth import synthesize

    synthesize(tmp_path / "d", n_train=12, n_test=6, seed=1)
    layout = synthesize(tmp_path / "d", n_train=4, n_test=2, seed=2, force=True)
    assert len(list((layout.root / "train" / "images").glob("*.png"))) == 4
    assert len(list((layout.root / "train" / "masks").glob("*.png"))) == 4
    assert len(list(layout.test_image_dir.glob("*.png"))) == 2
    from pipeline.data.prep import prep

    prep(layout.root)  # a consistent folder
