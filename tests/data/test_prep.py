import shutil

import numpy as np
import pytest
from PIL import Image

from pipeline.data.prep import load_test_cache, load_train_cache, prep
from pipeline.errors import PipelineError


@pytest.fixture
def data(workdir):
    return workdir / "data"


def first_id(data, salt=True):
    for line in (data / "train.csv").read_text().splitlines()[1:]:
        image_id, rle = line.split(",")
        if bool(rle) == salt:
            return image_id
    raise AssertionError


def test_cache_contents(data):
    train, test = load_train_cache(data), load_test_cache(data)
    assert train.images.shape == (90, 101, 101) and train.images.dtype == np.uint8
    assert train.masks.dtype == bool and train.coverage_class.max() <= 10
    np.testing.assert_array_equal(train.coverage_class == 0, train.coverage == 0)
    assert train.is_constant.sum() == 2 and not train.masks[train.is_constant].any()
    assert test.images.shape == (30, 101, 101) and len(test.depth) == 30


def test_rerun_is_a_no_op_and_a_change_is_noticed(data):
    assert prep(data)["skipped"] is True
    cache = (data / "cache" / "train.npz").stat().st_mtime_ns
    path = data / "train" / "images" / f"{first_id(data)}.png"
    path.write_bytes(path.read_bytes())  # touch: new mtime
    assert prep(data)["skipped"] is False
    assert (data / "cache" / "train.npz").stat().st_mtime_ns != cache


def test_accepts_single_channel_images(data):
    image_id = first_id(data)
    path = data / "train" / "images" / f"{image_id}.png"
    grey = np.array(Image.open(path))[..., 0]
    Image.fromarray(grey).save(path)
    prep(data)
    assert load_train_cache(data).images.shape == (90, 101, 101)


def expect(data, pattern):
    with pytest.raises(PipelineError, match=pattern):
        prep(data)


def test_missing_data_dir(tmp_path):
    with pytest.raises(PipelineError, match="does not exist: run `python -m pipeline synth"):
        prep(tmp_path / "nowhere")


def test_empty_data_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match="is empty"):
        prep(tmp_path / "empty")


def test_train_ids_without_images_are_counted(data):
    images = sorted((data / "train" / "images").glob("*.png"))
    for path in images[:2]:
        path.unlink()
    expect(data, rf"2 ids of .*train.csv have no image in .*\(first: ({images[0].stem}|{images[1].stem})\)")


def test_image_of_the_wrong_size(data):
    image_id = first_id(data)
    Image.fromarray(np.zeros((128, 128, 3), np.uint8)).save(data / "train" / "images" / f"{image_id}.png")
    expect(data, f"{image_id}.png is 128x128, expected 101x101")


def test_non_binary_mask(data):
    image_id = first_id(data)
    mask = np.zeros((101, 101), np.uint8)
    mask[:10] = 7
    mask[10:20] = 200
    Image.fromarray(mask).save(data / "train" / "masks" / f"{image_id}.png")
    expect(data, f"{image_id}.png is not a binary mask")


def test_mask_disagreeing_with_rle(data):
    image_id = first_id(data)
    Image.fromarray(np.zeros((101, 101), np.uint8)).save(data / "train" / "masks" / f"{image_id}.png")
    expect(data, f"{image_id}.png disagrees with its RLE")


def test_malformed_rle(data):
    image_id = first_id(data)
    text = (data / "train.csv").read_text()
    line = next(l for l in text.splitlines() if l.startswith(image_id))
    (data / "train.csv").write_text(text.replace(line, f"{image_id},5 3 1"))
    expect(data, f"train.csv: id {image_id}: RLE has an odd count")


def test_corrupt_png(data):
    image_id = first_id(data, salt=False)
    path = data / "train" / "images" / f"{image_id}.png"
    path.write_bytes(path.read_bytes()[:60])
    expect(data, f"{image_id}.png is not a readable PNG")


def test_test_images_vs_sample_submission(data):
    extra = next((data / "test" / "images").glob("*.png"))
    shutil.copy(extra, data / "test" / "images" / "ffffffffff.png")
    expect(data, "1 images in .* are not in .*sample_submission.csv .*ffffffffff")
    (data / "test" / "images" / "ffffffffff.png").unlink()
    extra.unlink()
    expect(data, f"1 ids of .*sample_submission.csv have no image .*{extra.stem}")


def test_failed_prep_keeps_the_previous_cache(data):
    before = (data / "cache" / "train.npz").read_bytes()
    image_id = first_id(data)
    (data / "train" / "images" / f"{image_id}.png").unlink()
    expect(data, "have no image")
    assert (data / "cache" / "train.npz").read_bytes() == before
