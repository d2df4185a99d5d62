import numpy as np
import pytest
import torch

from pipeline.config import load_config
from pipeline.data.dataset import (
    SaltDataset,
    batch_inputs,
    build_augmentation,
    seed_augmentation,
    to_input_geometry,
    to_original_geometry,
)


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


def test_a_shifted_placement_moves_the_image_and_its_row_coordinates_and_is_undone_by_the_same_shift():
    cfg = load_config("smoke", ["data.input_size=128", "data.resize=false", "data.depth_channel=true", "data.coord_channel=true"]).data
    images = np.random.default_rng(3).integers(0, 256, (2, 101, 101), dtype=np.uint8)
    plain, shifted = batch_inputs(images, np.zeros(2, np.float32), cfg), batch_inputs(images, np.zeros(2, np.float32), cfg, shift=8)
    # the image's own pixels sit 8 px lower and further right; each image row keeps its row coordinate
    torch.testing.assert_close(shifted[:, :, 21:122, 21:122], plain[:, :, 13:114, 13:114])
    assert shifted[0, 2, 21, 0].item() == pytest.approx(plain[0, 2, 13, 0].item()) == pytest.approx(-1 + 2 * 13 / 127)
    probs = torch.from_numpy(to_input_geometry(images, cfg, shift=8)[:, None].astype(np.float32))
    np.testing.assert_array_equal(to_original_geometry(probs, cfg, shift=8).numpy(), images)
    assert not np.array_equal(to_original_geometry(probs, cfg).numpy(), images)


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


def _fired(cfg, n_items: int, epoch: int = 0) -> np.ndarray:
    """(n_items, 3) booleans: which of hflip, affine, brightness/contrast fired for each item of an epoch."""
    names = ["HorizontalFlip", "Affine", "RandomBrightnessContrast"]
    transform = build_augmentation(cfg, record=True)
    image, mask = np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8)
    fired = np.zeros((n_items, 3), bool)
    for index in range(n_items):
        seed_augmentation(transform, cfg.train.seed, epoch, index)
        applied = {name for name, _ in transform(image=image, mask=mask)["applied_transforms"]}
        fired[index] = [name in applied for name in names]
    return fired


def test_augmentations_fire_independently_at_their_configured_rates():
    cfg = load_config("smoke", ["augment.hflip=0.5", "augment.affine=0.5", "augment.brightness_contrast=0.3"])
    fired = _fired(cfg, 2000)
    rates = fired.mean(axis=0)
    # binomial standard error at n=2000 is ~0.011: 0.04 is more than 3.5 of them
    np.testing.assert_allclose(rates, [0.5, 0.5, 0.3], atol=0.04)
    correlation = np.corrcoef(fired.T.astype(float))
    off_diagonal = correlation[~np.eye(3, dtype=bool)]
    assert np.abs(off_diagonal).max() < 0.08, correlation  # identically seeded generators give 1.0 (hflip, affine)
    # every one of the 8 on/off combinations occurs, near its product probability
    combos = np.bincount(fired @ np.array([1, 2, 4]), minlength=8) / len(fired)
    expected = np.array([np.prod([r if (k >> j) & 1 else 1 - r for j, r in enumerate([0.5, 0.5, 0.3])]) for k in range(8)])
    np.testing.assert_allclose(combos, expected, atol=0.03)
    # the same (seed, epoch) replays exactly; another epoch draws differently
    np.testing.assert_array_equal(_fired(cfg, 200), fired[:200])
    assert not np.array_equal(_fired(cfg, 200, epoch=1), fired[:200])


def test_persistent_workers_follow_the_epoch_set_in_the_main_process():
    cfg = load_config("smoke", ["augment.affine=1.0"])
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (8, 101, 101), dtype=np.uint8)
    dataset = SaltDataset(images, np.zeros(8), cfg, images > 128, augment=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2, persistent_workers=True)
    seen = []
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        seen.append(torch.cat([batch["image"] for batch in loader]))
    reference = SaltDataset(images, np.zeros(8), cfg, images > 128, augment=True)
    for epoch in (0, 1):
        reference.set_epoch(epoch)
        torch.testing.assert_close(seen[epoch], torch.stack([reference[i]["image"] for i in range(8)]))
    assert not torch.equal(seen[0], seen[1])


def test_training_crops_are_windows_of_the_input_and_the_empty_target_follows_the_crop():
    cfg = load_config("smoke", ["data.input_size=128", "data.resize=false", "augment.crop=64", "augment.hflip=0", "augment.affine=0",
                                "augment.brightness_contrast=0", "data.depth_channel=true"])
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (1, 101, 101), dtype=np.uint8)
    masks = np.zeros((1, 101, 101), bool)
    masks[0, 40:50, 40:50] = True  # a small body: some 64 px windows of the 128 px input miss it (and its reflections)
    train_set = SaltDataset(images, np.array([250.0]), cfg, masks, augment=True)
    padded_image = batch_inputs(images, np.array([250.0]), cfg.data)[0, 0].numpy()
    padded_mask = to_input_geometry(masks[0], cfg.data, is_mask=True)
    empties = []
    for epoch in range(40):
        train_set.set_epoch(epoch)
        item = train_set[0]
        assert item["image"].shape == (2, 64, 64) and item["mask"].shape == (1, 64, 64)
        assert item["image"][1].eq(250 / 1000 - 0.5).all()  # the depth channel is cut to the crop's size
        crop = item["image"][0].numpy()
        starts = [(top, left) for top in range(65) for left in range(65) if np.array_equal(padded_image[top : top + 64, left : left + 64], crop)]
        assert len(starts) == 1, starts  # exactly one window of the padded input
        top, left = starts[0]
        np.testing.assert_array_equal(item["mask"][0].numpy().astype(bool), padded_mask[top : top + 64, left : left + 64])
        assert float(item["empty"]) == float(item["mask"].sum() == 0)
        empties.append(float(item["empty"]))
    assert 0 < sum(empties) < len(empties)  # crops with and without the salt both occur
    whole = SaltDataset(images, np.array([250.0]), cfg, masks)[0]  # validation and inference: the whole input
    assert whole["image"].shape == (2, 128, 128) and float(whole["empty"]) == 0.0


@pytest.mark.parametrize("within, inside_only", [("image", True), ("canvas", False)])
def test_crops_within_the_image_hold_no_padding_pixel(within, inside_only):
    cfg = load_config("smoke", ["data.input_size=128", "data.resize=false", "augment.crop=64", f"augment.crop_within={within}",
                                "augment.hflip=0", "augment.affine=0", "augment.brightness_contrast=0"])
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (1, 101, 101), dtype=np.uint8)
    masks = rng.random((1, 101, 101)) < 0.5
    train_set = SaltDataset(images, np.zeros(1), cfg, masks, augment=True)
    canvas = batch_inputs(images, np.zeros(1), cfg.data)[0, 0].numpy()  # the whole input, normalised; the image starts at 13
    inside, starts = [], set()
    for epoch in range(30):
        train_set.set_epoch(epoch)
        item = train_set[0]
        crop, mask = item["image"][0].numpy(), item["mask"][0].numpy().astype(bool)
        found = [(top, left) for top in range(38) for left in range(38) if np.array_equal(canvas[13 + top : 77 + top, 13 + left : 77 + left], crop)]
        inside.append(len(found) == 1)
        if found:
            (top, left), = found
            np.testing.assert_array_equal(mask, masks[0, top : top + 64, left : left + 64])
            starts.add((top, left))
    assert all(inside) if inside_only else not all(inside)  # a canvas crop may take padding pixels
    assert len(starts) > (20 if inside_only else 0)  # random windows, not one fixed cut
