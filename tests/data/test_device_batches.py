"""The device-side augmentation (train.augment_on: device) against the albumentations path it replaces on a GPU:
the same warp for the same parameters, the same rates and statistics over many draws, the same batches in the
same order when nothing fires. Run on CPU tensors, so they hold on any machine."""

import numpy as np
import pytest
import torch
from albumentations.augmentations.geometric import functional as fgeometric
from torch.utils.data import DataLoader, DistributedSampler

from pipeline.config import load_config
from pipeline.data.dataset import SaltDataset, batch_inputs, build_augmentation, seed_augmentation
from pipeline.data.device_batches import DeviceBatches, affine_matrices, augment_batch, warp

SIZE = 128


def seismic_like(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 128 px uint8 image with layered texture and a left-to-right ramp (so flips show), and a salt blob."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    layers = 60 * np.sin(y / 3.0 + 0.4 * np.sin(x / 17.0)) + 40 * x / SIZE + rng.normal(0, 8, (SIZE, SIZE))
    image = np.clip(110 + layers, 0, 255).astype(np.uint8)
    mask = ((x - 80) ** 2 / 30**2 + (y - 50) ** 2 / 22**2 < 1).astype(np.uint8)
    return image, mask


@pytest.mark.parametrize("tx, ty, sx, sy, degrees", [(0, 0, 1.0, 1.0, 0.0), (6, -3, 1.08, 0.93, 4.2), (-6, 5, 0.9, 1.1, -5.0), (2, 0, 1.0, 1.0, 180.0)])
def test_the_warp_is_albumentations_affine_for_the_same_parameters(tx, ty, sx, sy, degrees):
    image, mask = seismic_like()
    affine = build_augmentation(load_config("smoke", [])).transforms[1]  # the Affine the loader path applies
    reference = fgeometric.create_affine_transformation_matrix({"x": tx, "y": ty}, {"x": 0.0, "y": 0.0}, {"x": sx, "y": sy}, degrees,
                                                               fgeometric.center((SIZE, SIZE)))
    as_tensor = lambda v: torch.tensor([float(v)], dtype=torch.float64)  # noqa: E731
    matrix = affine_matrices(*(as_tensor(v) for v in (tx, ty, sx, sy, degrees)), SIZE)
    np.testing.assert_allclose(matrix[0].numpy(), reference, atol=1e-12)

    expected = affine.apply(image, matrix=reference, output_shape=(SIZE, SIZE)).astype(np.float32)
    ours = warp(torch.from_numpy(image.astype(np.float32))[None], matrix, "bilinear").round().clamp(0, 255)[0].numpy()
    # cv2 interpolates in fixed point (1/32 px, 15-bit weights): within a grey level or two, none far off
    assert np.abs(ours - expected).mean() < 0.6 and np.abs(ours - expected).max() <= 12
    expected_mask = affine.apply_to_mask(mask, matrix=reference, output_shape=(SIZE, SIZE))
    ours_mask = warp(torch.from_numpy(mask.astype(np.float32))[None], matrix, "nearest")[0].numpy()
    assert (ours_mask == expected_mask).mean() > 0.995  # nearest-neighbour ties on the blob's edge only


def draws_of_the_loader_path(image, mask, cfg, n):
    transform = build_augmentation(cfg, record=True)
    images, masks, fired = [], [], {"HorizontalFlip": [], "Affine": [], "RandomBrightnessContrast": []}
    for index in range(n):
        seed_augmentation(transform, 0, 0, index)
        out = transform(image=image, mask=mask)
        images.append(out["image"]), masks.append(out["mask"])
        names = {name for name, _ in out["applied_transforms"]}
        for name in fired:
            fired[name].append(name in names)
    return np.stack(images).astype(np.float64), np.stack(masks).astype(np.float64), {k: np.mean(v) for k, v in fired.items()}


def statistics(images: np.ndarray, masks: np.ndarray) -> dict:
    means = images.mean(axis=(1, 2))
    ramp = images[:, :, : SIZE // 2].mean(axis=(1, 2)) - images[:, :, SIZE // 2 :].mean(axis=(1, 2))  # > 0: flipped
    coverage = masks.mean(axis=(1, 2))
    centre_x = (masks * np.arange(SIZE)).sum(axis=(1, 2)) / np.maximum(masks.sum(axis=(1, 2)), 1)
    return {"mean": means.mean(), "mean_sd": means.std(), "flipped": (ramp > 0).mean(), "coverage": coverage.mean(),
            "coverage_sd": coverage.std(), "centre_x_sd": centre_x.std(), "pixel_sd": images.std(axis=(1, 2)).mean()}


def test_rates_and_statistics_match_the_albumentations_path():
    image, mask = seismic_like()
    cfg, n = load_config("smoke", []), 3000
    loader_images, loader_masks, loader_rates = draws_of_the_loader_path(image, mask, cfg, n)
    generator, chunks = torch.Generator().manual_seed(0), []
    for _ in range(n // 500):  # batches of a GPU step's size, one generator drawing on
        batch = torch.from_numpy(np.repeat(image[None], 500, 0).astype(np.float32)), torch.from_numpy(np.repeat(mask[None], 500, 0).astype(np.float32))
        chunks.append(augment_batch(*batch, cfg.augment, generator, record=True))
    images, masks = torch.cat([c[0] for c in chunks]), torch.cat([c[1] for c in chunks])
    fired = {key: torch.cat([c[2][key] for c in chunks]) for key in chunks[0][2]}
    rates = {"HorizontalFlip": fired["hflip"], "Affine": fired["affine"], "RandomBrightnessContrast": fired["brightness_contrast"]}
    for name, p in (("HorizontalFlip", cfg.augment.hflip), ("Affine", cfg.augment.affine), ("RandomBrightnessContrast", cfg.augment.brightness_contrast)):
        tolerance = 4 * np.sqrt(p * (1 - p) / n)
        assert abs(loader_rates[name] - p) < tolerance and abs(float(rates[name].float().mean()) - p) < tolerance, name
    ours, theirs = statistics(images.double().numpy(), masks.double().numpy()), statistics(loader_images, loader_masks)
    assert abs(ours["mean"] - theirs["mean"]) < 0.6, (ours, theirs)  # brightness shifts the mean by up to 25 levels
    assert abs(ours["flipped"] - theirs["flipped"]) < 0.04, (ours, theirs)
    assert abs(ours["coverage"] - theirs["coverage"]) < 0.002, (ours, theirs)  # zoom changes the blob's area
    for spread in ("mean_sd", "coverage_sd", "centre_x_sd", "pixel_sd"):  # brightness, contrast, zoom, shift
        assert abs(ours[spread] / theirs[spread] - 1) < 0.08, (spread, ours, theirs)


def test_with_nothing_firing_the_device_batches_are_the_loaders_batches_in_the_same_order():
    """Same DistributedSampler order (each rank its share), same inputs bit for bit, extra channels included."""
    cfg = load_config("smoke", ["augment.hflip=0", "augment.affine=0", "augment.brightness_contrast=0", "data.depth_channel=true",
                                "data.coord_channel=true"])
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (37, 101, 101), dtype=np.uint8)
    masks = rng.random((37, 101, 101)) < np.linspace(0, 1, 37)[:, None, None] ** 2 * 0.5
    masks[:5] = False
    depth = rng.uniform(50, 950, 37)
    for world, rank in ((1, 0), (2, 1)):
        dataset = SaltDataset(images, depth, cfg, masks, augment=True)
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=7, drop_last=True)
        loader = DataLoader(dataset, batch_size=4, sampler=sampler, drop_last=True)
        device_batches = DeviceBatches(images, depth, masks, cfg, torch.device("cpu"), 4, seed=7, rank=rank, world_size=world)
        for epoch in (0, 3):
            sampler.set_epoch(epoch), dataset.set_epoch(epoch), device_batches.set_epoch(epoch)
            expected, ours = list(loader), list(device_batches)
            assert len(ours) == len(device_batches) == len(loader) > 0
            for theirs, mine in zip(expected, ours):
                for key in ("image", "mask", "empty"):
                    assert torch.equal(theirs[key], mine[key]), (world, epoch, key)


def test_a_crop_gives_crop_sized_inputs_and_an_empty_target_from_the_crop():
    cfg = load_config("smoke", ["data.input_size=128", "data.resize=false", "augment.crop=64", "data.depth_channel=true"])
    images = np.full((32, 101, 101), 128, np.uint8)
    masks = np.zeros((32, 101, 101), bool)
    masks[:, :30, :30] = True  # a corner about half the crops leave out
    batches = DeviceBatches(images, np.full(32, 500.0), masks, cfg, torch.device("cpu"), 32, seed=0)
    batch = next(iter(batches))
    assert batch["image"].shape == (32, 2, 64, 64) and batch["mask"].shape == (32, 1, 64, 64)
    assert torch.equal(batch["empty"], (batch["mask"].flatten(1).sum(1) == 0).float())
    assert 0 < int(batch["empty"].sum()) < 32  # some crops keep the corner's salt, some do not


def test_crops_within_the_image_are_windows_of_the_101_px_image():
    cfg = load_config("smoke", ["data.input_size=128", "data.resize=false", "augment.crop=64", "augment.crop_within=image",
                                "augment.hflip=0", "augment.affine=0", "augment.brightness_contrast=0"])
    rng = np.random.default_rng(5)
    image, mask = rng.integers(0, 256, (1, 101, 101), dtype=np.uint8), rng.random((1, 101, 101)) < 0.5
    batches = DeviceBatches(image.repeat(32, 0), np.zeros(32), mask.repeat(32, 0), cfg, torch.device("cpu"), 32, seed=0)
    batch = next(iter(batches))
    canvas = batch_inputs(image, np.zeros(1), cfg.data)[0, 0]  # the whole input, normalised; the image starts at 13
    starts = set()
    for crop, crop_mask in zip(batch["image"][:, 0], batch["mask"][:, 0]):
        windows = [(top, left) for top in range(38) for left in range(38) if torch.equal(canvas[13 + top : 77 + top, 13 + left : 77 + left], crop)]
        assert len(windows) == 1, windows
        (top, left), = windows
        assert torch.equal(crop_mask.bool(), torch.from_numpy(mask[0, top : top + 64, left : left + 64]))
        starts.add((top, left))
    assert len(starts) > 20  # each image draws its own window


def test_every_batch_replays_from_its_seed_epoch_and_step():
    cfg = load_config("smoke", [])
    rng = np.random.default_rng(0)
    images, masks = rng.integers(0, 256, (16, 101, 101), dtype=np.uint8), rng.random((16, 101, 101)) < 0.3
    first, again = (DeviceBatches(images, np.zeros(16), masks, cfg, torch.device("cpu"), 4, seed=1) for _ in range(2))
    first.set_epoch(2), again.set_epoch(2)
    for a, b in zip(first, again):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    again.set_epoch(3)
    assert not torch.equal(next(iter(first))["image"], next(iter(again))["image"])
