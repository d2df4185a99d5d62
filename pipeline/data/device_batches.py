"""Training batches made where the network runs: a fold's images and masks held on the device as tensors and
augmented there, batch by batch, with the same transforms and the same distribution as the albumentations path
of dataset.py (horizontal flip, then a shift/scale/rotation with reflect-101 borders, then brightness/contrast,
then an optional random crop), in the same data order as the DataLoader's DistributedSampler.

On a GPU the loader path spends ~0.5 ms of CPU per image (padding and albumentations) and its workers cannot keep
up with a whole step; here a batch costs a few kernels (one grid_sample for the warp). train.augment_on picks the
path (auto: this one on CUDA, the loader on CPU, whose scores stay bit-exact)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.config import AugmentConfig, Config
from pipeline.data.dataset import depth_feature, normalise, pad_widths, row_coordinates, to_input_geometry
from pipeline.data.layout import IMAGE_SIZE


def _uniform(generator: torch.Generator, n: int, low: float, high: float, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device, dtype=torch.float64)


def affine_matrices(shift_x: torch.Tensor, shift_y: torch.Tensor, scale_x: torch.Tensor, scale_y: torch.Tensor, degrees: torch.Tensor,
                    size: int) -> torch.Tensor:
    """(B,3,3) forward maps from source to destination pixel coordinates, composed as albumentations' Affine does
    (geometric.functional.create_affine_transformation_matrix, no shear): to the centre (size/2 - 0.5), scale,
    rotate, translate (whole pixels), back."""
    centre = size / 2 - 0.5
    radians = torch.deg2rad(torch.remainder(degrees, 360))
    cos, sin = torch.cos(radians), torch.sin(radians)
    m = torch.zeros(len(degrees), 3, 3, dtype=torch.float64, device=degrees.device)
    # rotate @ scale, then the centre shift folded into the translation column
    m[:, 0, 0], m[:, 0, 1] = cos * scale_x, sin * scale_y
    m[:, 1, 0], m[:, 1, 1] = -sin * scale_x, cos * scale_y
    m[:, 0, 2] = centre + shift_x - (m[:, 0, 0] + m[:, 0, 1]) * centre
    m[:, 1, 2] = centre + shift_y - (m[:, 1, 0] + m[:, 1, 1]) * centre
    m[:, 2, 2] = 1
    return m


def warp(batch: torch.Tensor, matrices: torch.Tensor, mode: str) -> torch.Tensor:
    """(B,S,S) float warped by forward maps `matrices` (B,3,3) as cv2.warpAffine with BORDER_REFLECT_101 would:
    each output pixel samples the source at the inverse map; grid_sample's reflection with align_corners=True
    mirrors about the edge pixels' centres, which is reflect-101."""
    size = batch.shape[-1]
    inverse = torch.linalg.inv(matrices)[:, :2].float()  # (B,2,3): inverted in float64, applied in float32 (1e-5 px)
    axis = torch.arange(size, dtype=torch.float32, device=batch.device)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack([xs, ys, torch.ones_like(xs)]).reshape(3, -1)  # (3, S*S) in (x, y, 1)
    source = (inverse @ points).reshape(len(batch), 2, size, size).permute(0, 2, 3, 1)  # (B,S,S,2) as (x, y)
    grid = (source / (size - 1) * 2 - 1).to(batch.dtype)
    return F.grid_sample(batch[:, None], grid, mode=mode, padding_mode="reflection", align_corners=True)[:, 0]


def augment_batch(images: torch.Tensor, masks: torch.Tensor, aug: AugmentConfig, generator: torch.Generator,
                  record: bool = False) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, dict]:
    """Grey levels `images` (B,S,S) float in 0..255 and `masks` (B,S,S) float 0/1, in the input geometry, through
    dataset.build_augmentation's transforms with its probabilities and ranges, each image drawing its own. Values
    are rounded and clipped to 0..255 after each transform, as the uint8 path does. `record` also returns which
    transforms fired per image (tests)."""
    n, size, device = len(images), images.shape[-1], images.device

    def fires(p: float) -> torch.Tensor:
        return torch.rand(n, generator=generator, device=device) < p

    flipped = fires(aug.hflip)
    images = torch.where(flipped[:, None, None], images.flip(-1), images)
    masks = torch.where(flipped[:, None, None], masks.flip(-1), masks)

    # every image is warped and the firing ones kept: asking whether any fired would wait for the GPU each batch
    warped = fires(aug.affine)
    # translate_percent draws a share of the side, truncated to whole pixels (int()); scale x and y apart
    shift_x = torch.trunc(_uniform(generator, n, -aug.shift, aug.shift, device) * size)
    shift_y = torch.trunc(_uniform(generator, n, -aug.shift, aug.shift, device) * size)
    scale_x = _uniform(generator, n, 1 - aug.scale, 1 + aug.scale, device)
    scale_y = _uniform(generator, n, 1 - aug.scale, 1 + aug.scale, device)
    degrees = _uniform(generator, n, -aug.rotate, aug.rotate, device)
    matrices = affine_matrices(shift_x, shift_y, scale_x, scale_y, degrees, size)
    images = torch.where(warped[:, None, None], warp(images, matrices, "bilinear").round().clamp(0, 255), images)
    masks = torch.where(warped[:, None, None], warp(masks, matrices, "nearest"), masks)

    adjusted = fires(aug.brightness_contrast)
    alpha = 1 + _uniform(generator, n, -aug.contrast_limit, aug.contrast_limit, device).to(images.dtype)
    beta = _uniform(generator, n, -aug.brightness_limit, aug.brightness_limit, device).to(images.dtype) * 255  # brightness_by_max
    new_images = (images * alpha[:, None, None] + beta[:, None, None]).round().clamp(0, 255)
    images = torch.where(adjusted[:, None, None], new_images, images)

    if aug.crop is not None:
        # crop_within image: the windows lie inside the 101 px image the padding surrounds (dataset.build_augmentation)
        low, side = (pad_widths(size)[0], IMAGE_SIZE) if aug.crop_within == "image" else (0, size)
        top = low + torch.randint(0, side - aug.crop + 1, (n,), generator=generator, device=device)
        left = low + torch.randint(0, side - aug.crop + 1, (n,), generator=generator, device=device)
        offsets = torch.arange(aug.crop, device=device)
        rows, cols = (top[:, None] + offsets)[:, :, None], (left[:, None] + offsets)[:, None, :]
        batch = torch.arange(n, device=device)[:, None, None]
        images, masks = images[batch, rows, cols], masks[batch, rows, cols]
    if record:
        return images, masks, {"hflip": flipped, "affine": warped, "brightness_contrast": adjusted}
    return images, masks


def batch_generator(seed: int, epoch: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    """A generator on `device` seeded by (seed, epoch, step, rank): any batch of any epoch can be replayed."""
    entropy = np.random.SeedSequence([seed, epoch, step, rank]).generate_state(1, np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(entropy) & (2**63 - 1))


class DeviceBatches:
    """An iterable of training batches (dicts: image (B,C,S,S), mask (B,1,S,S), empty (B,)) like the trainer's
    DataLoader, drawn in DistributedSampler's order (seed + epoch, drop_last, this rank's share) and augmented on
    `device`. len() is the steps per epoch."""

    def __init__(self, images: np.ndarray, depth: np.ndarray, masks: np.ndarray, cfg: Config, device: torch.device, batch_size: int,
                 seed: int, rank: int = 0, world_size: int = 1):
        self.cfg, self.device, self.batch_size, self.seed, self.rank, self.world_size = cfg, device, batch_size, seed, rank, world_size
        self.images = torch.from_numpy(to_input_geometry(images, cfg.data).astype(np.float32)).to(device)
        self.masks = torch.from_numpy(to_input_geometry(masks, cfg.data, is_mask=True).astype(np.float32)).to(device)
        self.depth = torch.from_numpy(np.asarray(depth, dtype=np.float64)).to(device)  # float64 as dataset.extra_channels computes it
        self.empty = torch.from_numpy(np.asarray(masks).reshape(len(masks), -1).sum(axis=1) == 0).to(device)
        self.per_rank = len(images) // world_size  # DistributedSampler(drop_last=True)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_rank // self.batch_size  # DataLoader(drop_last=True)

    def order(self) -> torch.Tensor:
        """This rank's image indices for the epoch: DistributedSampler's permutation (shuffle, drop_last)."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        indices = torch.randperm(len(self.images), generator=generator)[: self.per_rank * self.world_size]
        return indices[self.rank :: self.world_size]

    def inputs(self, grey: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Network inputs from augmented grey levels, as dataset.to_tensor makes them (extra channels at the
        batch's side: a crop is smaller)."""
        data, size = self.cfg.data, grey.shape[-1]
        channels = [normalise(grey)]
        if data.depth_channel:
            channels.append(depth_feature(depth).float()[:, None, None].expand(-1, size, size))
        if data.coord_channel:
            coord = torch.from_numpy(row_coordinates(size)).to(grey.device)[:, None].expand(size, size)
            channels.append(coord.expand(len(grey), size, size))
        return torch.stack(channels, dim=1)

    def __iter__(self):
        order = self.order().to(self.device)
        for step in range(len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            generator = batch_generator(self.seed, self.epoch, step, self.rank, self.device)
            grey, mask = augment_batch(self.images[index], self.masks[index], self.cfg.augment, generator)
            # the aux head's target: a crop can leave out all of an image's salt
            empty = mask.flatten(1).sum(1) == 0 if self.cfg.augment.crop is not None else self.empty[index]
            yield {"image": self.inputs(grey, self.depth[index]), "mask": mask[:, None], "empty": empty.float()}

