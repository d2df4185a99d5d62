import numpy as np
import pytest
import torch

from pipeline.config import load_config
from pipeline.data.dataset import SaltDataset, batch_inputs, to_input_geometry, to_original_geometry


@pytest.mark.parametrize("overrides", [["data.input_size=128", "data.resize=false"], ["data.input_size=64", "data.resize=true"]])
def test_geometry_round_trip_and_batched_inputs(overrides):
    cfg = load_config("smoke", overrides + ["data.depth_channel=true", "data.coord_channel=true"])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 101, 101), dtype=np.uint8)
    masks = np.zeros((5, 101, 101), bool)
    masks[:, 20:60, 30:90] = True
    depth = np.array([100, 200, 300, 400, 500], np.float32)
    dataset = SaltDataset(images, depth, cfg, masks)
    stacked = torch.stack([dataset[i]["image"] for i in range(5)])
    torch.testing.assert_close(batch_inputs(images, depth, cfg.data), stacked)
    assert stacked.shape == (5, 3, cfg.data.input_size, cfg.data.input_size)
    assert stacked[2, 1, 0, 0] == pytest.approx(300 / 1000 - 0.5)
    back = to_original_geometry(torch.stack([dataset[i]["mask"] for i in range(5)]), cfg.data) > 0.5
    if cfg.data.resize:
        assert (back.numpy() == masks).mean() > 0.98
    else:
        np.testing.assert_array_equal(back.numpy(), masks)  # padding is exactly undone


def test_reflect_101_padding_mirrors_without_repeating_the_edge():
    cfg = load_config("smoke", ["data.input_size=128", "data.resize=false"]).data
    image = np.tile(np.arange(101, dtype=np.uint8), (101, 1))
    padded = to_input_geometry(image, cfg)
    assert padded.shape == (128, 128)
    assert padded[0, 13:16].tolist() == [0, 1, 2] and padded[0, 12] == 1 and padded[0, 0] == 13


def test_augmentation_is_replayable_per_epoch_and_image():
    cfg = load_config("smoke", ["augment.affine=1.0", "augment.hflip=0.5"])
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 101, 101), dtype=np.uint8)
    masks = images > 128
    dataset = SaltDataset(images, np.zeros(4), cfg, masks, augment=True)
    dataset.set_epoch(3)
    first = dataset[2]["image"]
    dataset.set_epoch(4)
    other = dataset[2]["image"]
    dataset.set_epoch(3)
    torch.testing.assert_close(dataset[2]["image"], first)
    assert not torch.equal(first, other)
