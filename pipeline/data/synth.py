"""Synthetic seismic data in the exact Kaggle TGS layout (the embedded default; the real data is not here).

Each image is a small seismic section: a sparse reflectivity series convolved with a Ricker wavelet, laid
along folded, dipping horizons cut by a fault. Salt bodies (domes, flanks, blobs) replace the layers with a
weak chaotic interior and carry a strong reflection along their boundary. Deterministic for a seed.

Like the competition's tiles, they are cut from larger sections by default (`mosaic_side` 4: sections of 4 x 4
tiles, train and test tiles shuffled over them, one brightness and gain per section), and synth writes the true
positions to mosaic_truth.csv so the `mosaic` stage's recovery can be measured. Salt is drawn per tile (the
coverage statistics stay those of the competition), so salt bodies do not continue across tile borders.
`mosaic_side` 1 gives every tile its own section (the generator before mosaics).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from pipeline.competition.rle import encode
from pipeline.data.layout import IMAGE_SIZE, Layout, png_bytes
from pipeline.errors import PipelineError
from pipeline.fileio import write_bytes, write_table

EMPTY_FRACTION = 0.39  # as in the real training set
CONSTANT_FRACTION = 0.02  # 80 of 4000 real images are a single colour (all with empty masks)
MIN_SALT_PIXELS = 10
MOSAIC_SIDE = 4  # tiles per side of the sections synth cuts its tiles from (1: every tile its own section)


@dataclass(frozen=True)
class SyntheticSample:
    image: np.ndarray  # (101, 101) uint8
    mask: np.ndarray  # (101, 101) bool
    depth: int


def ricker(t: np.ndarray, width: float) -> np.ndarray:
    """Ricker (Mexican hat) wavelet of the given width in pixels."""
    a = (t / width) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


def _smooth_noise(rng, shape, sigma):
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / (field.std() + 1e-8)


def _layered_section(rng, size: int) -> np.ndarray:
    """Reflectivity along folded, dipping, faulted horizons, convolved with a Ricker wavelet."""
    length = 4 * size
    reflectivity = rng.standard_normal(length) * (rng.random(length) < 0.25)
    reflectivity[rng.integers(0, length, 6)] += rng.choice([-2.5, 2.5], 6)
    wavelet_width = rng.uniform(1.3, 3.0)
    taps = np.arange(-12, 13)
    trace = np.convolve(reflectivity, ricker(taps, wavelet_width), mode="same")
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    dip = rng.uniform(-0.4, 0.4)
    shift = dip * cols
    for _ in range(rng.integers(1, 3)):  # folds
        wavelength = rng.uniform(40, 200)
        amplitude = rng.uniform(0, 8) * (1 + rng.uniform(-0.5, 0.5) * rows / size)
        shift = shift + amplitude * np.sin(2 * np.pi * cols / wavelength + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.5:  # a normal fault: a line across the section with a throw on one side
        angle = rng.uniform(np.pi / 3, 2 * np.pi / 3)
        x0 = rng.uniform(0, size)
        side = (cols - x0) * np.sin(angle) - rows * np.cos(angle) > 0
        shift = shift + side * rng.uniform(4, 15) * rng.choice([-1, 1])
    sample_at = rows + shift + 1.5 * size
    section = np.interp(sample_at.ravel(), np.arange(length), trace).reshape(size, size)
    return section / (section.std() + 1e-8)


def _salt_mask(rng, size: int) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    kind = rng.choice(["dome", "flank", "blob"], p=[0.45, 0.3, 0.25])
    wiggle = 4 * _smooth_noise(rng, (size, size), 6)
    if kind == "dome":
        top = rng.uniform(-40, 115) + rng.uniform(0.001, 0.03) * (cols - rng.uniform(0, size)) ** 2
        return rows + wiggle > top
    if kind == "flank":
        boundary = rng.uniform(-20, size + 20) + rng.uniform(-1.2, 1.2) * (rows - size / 2)
        side = rng.choice([-1, 1])
        return side * (cols + wiggle - boundary) > 0
    centre_row, centre_col = rng.uniform(-10, size + 10, 2)
    radius = rng.uniform(6, 60)
    theta = np.arctan2(rows - centre_row, cols - centre_col)
    radial = radius * (1 + sum(rng.uniform(0, 0.25) * np.cos(k * theta + rng.uniform(0, 6.3)) for k in (2, 3, 5)))
    return np.hypot(rows - centre_row, cols - centre_col) + wiggle < radial


def _salt_section(rng, section: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Replace layers inside the salt with weak chaos and add a strong boundary reflection."""
    size = section.shape[0]
    interior = 0.25 * _smooth_noise(rng, (size, size), 1.2)
    signed_distance = ndimage.distance_transform_edt(~mask) - ndimage.distance_transform_edt(mask)
    boundary = rng.uniform(1.8, 3.0) * rng.choice([-1, 1]) * ricker(signed_distance, rng.uniform(1.0, 2.0))
    return np.where(mask, interior, section) + boundary


@dataclass(frozen=True)
class Scene:
    """What the tiles of one mosaic share: the layered section they are cut from, its brightness and gain."""

    section: np.ndarray  # (side * 101, side * 101)
    base: float
    gain: float

    def crop(self, x: int, y: int, size: int = IMAGE_SIZE) -> np.ndarray:
        return self.section[y * size : (y + 1) * size, x * size : (x + 1) * size]


def make_scene(seed: int, mosaic: int, side: int, size: int = IMAGE_SIZE) -> Scene:
    rng = np.random.default_rng([seed, 1_000_003, mosaic])
    return Scene(_layered_section(rng, side * size), float(rng.uniform(100, 150)), float(rng.uniform(18, 45)))


def make_sample(seed: int, index: int, has_salt: bool, constant: bool, size: int = IMAGE_SIZE, scene: Scene | None = None,
                position: tuple[int, int] = (0, 0)) -> SyntheticSample:
    """One tile; with a scene, its layers are the scene's section at tile position (x, y)."""
    rng = np.random.default_rng([seed, index])
    depth = int(rng.integers(51, 960))
    if constant:
        value = int(rng.integers(0, 256))
        return SyntheticSample(np.full((size, size), value, np.uint8), np.zeros((size, size), bool), depth)
    section = _layered_section(rng, size) if scene is None else scene.crop(*position, size)
    mask = np.zeros((size, size), bool)
    if has_salt:
        while mask.sum() < MIN_SALT_PIXELS:
            mask = _salt_mask(rng, size)
        section = _salt_section(rng, section, mask)
    section = section + rng.uniform(0.05, 0.35) * rng.standard_normal(section.shape)
    if scene is None:
        gain = rng.uniform(18, 45)
        base = rng.uniform(100, 150)
    else:
        base, gain = scene.base, scene.gain
    image = np.clip(base + gain * section, 0, 255).astype(np.uint8)
    return SyntheticSample(image, mask, depth)


def image_png(image: np.ndarray) -> bytes:
    """8-bit RGB with R=G=B, as the competition stores images."""
    return png_bytes(np.repeat(image[..., None], 3, axis=2))


def mask_png(mask: np.ndarray) -> bytes:
    """16-bit {0, 65535} for salt, 8-bit zeros for empty masks, as the competition stores masks."""
    if mask.any():
        return png_bytes(mask.astype(np.uint16) * 65535)
    return png_bytes(np.zeros(mask.shape, np.uint8))


def _unique_ids(rng, count: int) -> list[str]:
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < count:
        image_id = rng.bytes(5).hex()
        if image_id not in seen:
            seen.add(image_id)
            ids.append(image_id)
    return ids


def _plan(rng, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Exactly round(2%) constant images and round(39%) empty masks overall, in random positions."""
    n_constant = int(round(CONSTANT_FRACTION * count))
    n_empty = max(int(round(EMPTY_FRACTION * count)), n_constant)
    order = rng.permutation(count)
    constant = np.zeros(count, bool)
    constant[order[:n_constant]] = True
    has_salt = np.ones(count, bool)
    has_salt[order[:n_empty]] = False
    return has_salt, constant


def write_preview(path: Path, samples: list[SyntheticSample], columns: int = 8) -> None:
    """A grid of images with the salt outline drawn in red, so a person can see what was made."""
    rows = max(1, (len(samples) + columns - 1) // columns)
    size = IMAGE_SIZE + 4
    grid = np.full((rows * size, columns * size, 3), 255, np.uint8)
    for i, sample in enumerate(samples):
        tile = np.repeat(sample.image[..., None], 3, axis=2)
        outline = sample.mask & ~ndimage.binary_erosion(sample.mask, border_value=0)
        tile[outline] = (255, 0, 0)
        r, c = divmod(i, columns)
        grid[r * size + 2 : r * size + 2 + IMAGE_SIZE, c * size + 2 : c * size + 2 + IMAGE_SIZE] = tile
    write_bytes(path, png_bytes(grid))


def synthesize(out: Path, n_train: int = 4000, n_test: int = 18000, seed: int = 0, force: bool = False, mosaic_side: int = MOSAIC_SIDE) -> Layout:
    """Write a complete synthetic competition folder (plus test_truth.csv, preview.png and, with mosaics,
    mosaic_truth.csv) to `out`."""
    if mosaic_side < 1:
        raise PipelineError(f"synth --mosaic-side {mosaic_side}: use 1 (every tile its own section) or more tiles per side")
    layout = Layout(Path(out))
    if layout.train_csv.exists() and not force:
        raise PipelineError(f"{layout.train_csv} already exists; synth will not overwrite a data folder (pass --force to replace it)")
    if n_train < 1 or n_test < 1:
        raise PipelineError("synth needs at least one train and one test image (--train N --test M)")
    if force:  # a smaller set must not inherit the PNGs of a larger earlier one
        for folder in ("train/images", "train/masks", "test/images"):
            for old in (layout.root / folder).glob("*.png"):
                old.unlink()
        for stale in (layout.test_truth, layout.sample_submission, layout.depths_csv, layout.root / "mosaic_truth.csv"):
            stale.unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    ids = _unique_ids(rng, n_train + n_test)
    test_ids = ids[n_train:]
    for folder in ("train/images", "train/masks", "test/images"):
        (layout.root / folder).mkdir(parents=True, exist_ok=True)
    has_salt, constant = _plan(rng, n_train + n_test)
    per_mosaic = mosaic_side * mosaic_side
    count = n_train + n_test
    slots = rng.permutation(count) if mosaic_side > 1 else np.arange(count)  # train and test tiles shuffled over the sections
    rows: dict[str, list] = {"train": [], "truth": [], "depth": [], "preview": [], "position": []}
    scene, scene_index = None, -1
    for index in np.argsort(slots, kind="stable"):  # section by section: each scene is made once
        index, image_id = int(index), ids[index]
        position = (0, 0)
        if mosaic_side > 1:
            mosaic, within = divmod(int(slots[index]), per_mosaic)
            position = (within % mosaic_side, within // mosaic_side)  # (x, y)
            if mosaic != scene_index:
                scene, scene_index = make_scene(seed, mosaic, mosaic_side), mosaic
            rows["position"].append((index, image_id, mosaic, position[0], position[1]))
        sample = make_sample(seed, index, bool(has_salt[index]), bool(constant[index]), scene=scene, position=position)
        rows["depth"].append((index, image_id, sample.depth))
        if index < n_train:
            write_bytes(layout.train_image(image_id), image_png(sample.image))
            write_bytes(layout.train_mask(image_id), mask_png(sample.mask))
            rows["train"].append((index, image_id, encode(sample.mask)))
            if index < 64:
                rows["preview"].append((index, sample))
        else:
            write_bytes(layout.test_image(image_id), image_png(sample.image))
            rows["truth"].append((index, image_id, encode(sample.mask)))
    train_rows, truth_rows, depth_rows, position_rows = ([row[1:] for row in sorted(rows[name], key=lambda r: r[0])]
                                                         for name in ("train", "truth", "depth", "position"))
    preview = [sample for _, sample in sorted(rows["preview"], key=lambda r: r[0])][:32]
    # CSVs last: train.csv's presence marks a complete folder
    if position_rows:
        write_table(layout.root / "mosaic_truth.csv", pd.DataFrame(columns=["id", "mosaic", "x", "y"], data=position_rows))
    write_table(layout.depths_csv, pd.DataFrame(columns=["id", "z"], data=depth_rows))
    write_table(layout.sample_submission, pd.DataFrame(columns=["id", "rle_mask"], data=[(i, "1 1") for i in sorted(test_ids)]))
    write_table(layout.test_truth, pd.DataFrame(columns=["id", "rle_mask"], data=truth_rows))
    write_preview(layout.root / "preview.png", preview)
    write_table(layout.train_csv, pd.DataFrame(columns=["id", "rle_mask"], data=train_rows))
    return layout

