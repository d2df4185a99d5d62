"""From cached arrays to network inputs: 101 px -> input_size (reflect-101 padding or resize), extra
channels, albumentations augmentation seeded per (seed, epoch, image) so any epoch can be replayed exactly."""

from __future__ import annotations

import random

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline.config import Config, DataConfig
from pipeline.data.layout import IMAGE_SIZE

PIXEL_MEAN, PIXEL_STD = 0.5, 0.25


def pad_widths(size: int, shift: int = 0) -> tuple[int, int]:
    """(before, after) padding that takes 101 px to `size`; `shift` moves the image that many px further down and
    right (a test-time view, infer.tta_shift), taking the padding from after to before."""
    if size < IMAGE_SIZE:
        raise ValueError(f"input_size {size} is below {IMAGE_SIZE}; use data.resize: true for smaller inputs")
    before = (size - IMAGE_SIZE) // 2 + shift
    after = size - IMAGE_SIZE - before
    if before < 0 or after < 0:
        raise ValueError(f"a shift of {shift} px leaves no room for a {IMAGE_SIZE} px image in {size} px")
    return before, after


def to_input_geometry(array: np.ndarray, cfg: DataConfig, is_mask: bool = False, shift: int = 0) -> np.ndarray:
    """101x101 image(s) or mask(s), one (H,W) or a stack (N,H,W), into the network's input_size geometry:
    reflect-101 padding (numpy's 'reflect': the edge pixel is not repeated) or a bilinear resize. The one
    place that knows the geometry; to_original_geometry undoes it. `shift`: see pad_widths (padding only)."""
    stack = array if array.ndim == 3 else array[None]
    if cfg.resize:
        if shift:
            raise ValueError("a shifted placement needs padding (data.resize false)")
        size = (cfg.input_size, cfg.input_size)
        if is_mask:
            out = np.stack([cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) > 0.5 for m in stack])
        else:
            out = np.stack([cv2.resize(m, size, interpolation=cv2.INTER_LINEAR) for m in stack])
    else:
        before, after = pad_widths(cfg.input_size, shift)
        out = np.pad(stack.astype(np.uint8) if is_mask else stack, ((0, 0), (before, after), (before, after)), mode="reflect")
        if is_mask:
            out = out.astype(bool)
    return out if array.ndim == 3 else out[0]


def to_original_geometry(probs: torch.Tensor, cfg: DataConfig, shift: int = 0) -> torch.Tensor:
    """(N,1,S,S) network-geometry probabilities back to (N,101,101) (`shift`: the placement they were predicted at)."""
    if cfg.resize:
        probs = torch.nn.functional.interpolate(probs.float(), size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
        return probs[:, 0]
    before, _ = pad_widths(cfg.input_size, shift)
    return probs[:, 0, before : before + IMAGE_SIZE, before : before + IMAGE_SIZE]


def normalise(grey):
    """Grey levels 0..255 (a float array or tensor) as the network sees them."""
    return (grey / 255.0 - PIXEL_MEAN) / PIXEL_STD


def depth_feature(depth):
    """The depth input channel's value for a depth z (a float, array or tensor)."""
    return depth / 1000.0 - 0.5


def row_coordinates(size: int, shift: int = 0) -> np.ndarray:
    """The row-coordinate input channel's values, top to bottom; with the image `shift` px lower in the canvas
    the coordinates move with it (each image row keeps its value; the line goes on past -1 above)."""
    if not shift:
        return np.linspace(-1, 1, size, dtype=np.float32)
    return (-1.0 + 2.0 * (np.arange(size) - shift) / (size - 1)).astype(np.float32)


def extra_channels(depth: float, cfg: DataConfig, size: int | None = None, shift: int = 0) -> list[np.ndarray]:
    size = size or cfg.input_size  # a training crop is smaller
    channels = []
    if cfg.depth_channel:
        channels.append(np.full((size, size), depth_feature(depth), np.float32))
    if cfg.coord_channel:
        channels.append(np.repeat(row_coordinates(size, shift)[:, None], size, axis=1))
    return channels


def to_tensor(image: np.ndarray, depth: float, cfg: DataConfig) -> torch.Tensor:
    grey = normalise(image.astype(np.float32))
    return torch.from_numpy(np.stack([grey] + extra_channels(depth, cfg, size=image.shape[0])))


def batch_inputs(images: np.ndarray, depth: np.ndarray, cfg: DataConfig, shift: int = 0) -> torch.Tensor:
    """Network inputs for a stack of un-augmented images at once (the same values as SaltDataset's items;
    `shift`: the image placed that many px lower and further right, see pad_widths)."""
    grey = normalise(to_input_geometry(images, cfg, shift=shift).astype(np.float32))
    if not (cfg.depth_channel or cfg.coord_channel):
        return torch.from_numpy(grey[:, None])
    extras = np.stack([np.stack(extra_channels(float(d), cfg, shift=shift)) for d in depth])  # (N, extra channels, S, S)
    return torch.from_numpy(np.concatenate([grey[:, None], extras], axis=1))


def build_augmentation(cfg: Config, record: bool = False) -> A.Compose:
    """The training augmentation; `record` adds the list of transforms that fired to each output (tests)."""
    aug = cfg.augment
    crop = [] if aug.crop is None else [A.RandomCrop(height=aug.crop, width=aug.crop, p=1.0)]
    if aug.crop is not None and aug.crop_within == "image":  # first cut the canvas back to the image, then the random window
        before, _ = pad_widths(cfg.data.input_size)
        crop.insert(0, A.Crop(x_min=before, y_min=before, x_max=before + IMAGE_SIZE, y_max=before + IMAGE_SIZE, p=1.0))
    return A.Compose(
        [
            A.HorizontalFlip(p=aug.hflip),
            A.Affine(
                translate_percent=(-aug.shift, aug.shift),
                scale=(1 - aug.scale, 1 + aug.scale),
                rotate=(-aug.rotate, aug.rotate),
                border_mode=cv2.BORDER_REFLECT_101,
                p=aug.affine,
            ),
            A.RandomBrightnessContrast(brightness_limit=aug.brightness_limit, contrast_limit=aug.contrast_limit, p=aug.brightness_contrast),
            *crop,
        ],
        save_applied_params=record,
    )


def seed_augmentation(transform: A.Compose, seed: int, epoch: int, index: int) -> None:
    """One numpy and one Python generator shared by every transform of the pipeline, seeded by (seed, epoch, index).

    Compose.set_random_seed would give each transform its own identically seeded generator, so every
    transform would draw the same numbers and fire together; shared generators draw in sequence."""
    entropy = np.random.SeedSequence([seed, epoch, index])
    numpy_generator = np.random.default_rng(entropy)
    python_generator = random.Random(int(entropy.generate_state(1, np.uint64)[0]))
    transform.set_random_state(numpy_generator, python_generator)


class SaltDataset(Dataset):
    """Items are dicts: image (C,S,S) float32, and with masks: mask (1,S,S) float32, empty (scalar float32),
    and with `with_original_mask` the 101x101 mask the competition metric compares against (bool)."""

    def __init__(self, images: np.ndarray, depth: np.ndarray, cfg: Config, masks: np.ndarray | None = None, augment: bool = False,
                 with_original_mask: bool = False):
        self.images, self.depth, self.masks, self.cfg = images, depth, masks, cfg
        self.transform = build_augmentation(cfg) if augment else None
        self.with_original_mask = with_original_mask and masks is not None
        # in shared memory, so persistent DataLoader workers see the epoch the main process sets
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        image = to_input_geometry(self.images[index], self.cfg.data)
        mask = None if self.masks is None else to_input_geometry(self.masks[index], self.cfg.data, is_mask=True).astype(np.uint8)
        if self.transform is not None:
            seed_augmentation(self.transform, self.cfg.train.seed, self.epoch, index)
            out = self.transform(image=image, mask=mask) if mask is not None else self.transform(image=image)
            image, mask = out["image"], out.get("mask", mask)
        item = {"image": to_tensor(image, float(self.depth[index]), self.cfg.data)}
        if mask is not None:
            item["mask"] = torch.from_numpy(mask[None].astype(np.float32))
            # the aux head's target: a crop can leave out all of an image's salt
            empty = mask.sum() == 0 if self.cfg.augment.crop is not None and self.transform is not None else self.masks[index].sum() == 0
            item["empty"] = torch.tensor(float(empty))
        if self.with_original_mask:
            item["original_mask"] = torch.from_numpy(np.asarray(self.masks[index], dtype=bool))
        return item
