"""Paired variants, the one kind of study here: every variant runs with every seed through the same workflow,
seed-major (all variants of a seed before the next seed, so pairs complete early). Seed s gives every variant
the same training seed (initial weights, data order) and, when the study draws data per seed, the same data.
`ablate` (plastic heads) and benchmarks/real_dev.py (preset variants on carved real data) are two uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.rundir import RunDir
from pipeline.workflow import Outcome, Variant, run_variant


def paired_runs(variants: dict[str, Variant], seeds: list[int], out_dir: Path, folds: list[int] | None = None,
                data_for_seed: Callable[[int], tuple[Path, Path]] | None = None, done: set[tuple[str, int]] = frozenset(),
                refresh: bool = False) -> Iterator[tuple[str, int, Outcome]]:
    """Yields (variant name, seed, outcome), run folder OUT/NAME-seedS. `data_for_seed(seed)` -> (data folder,
    folds file) for studies that draw data per seed; `done` pairs are skipped (a resumed study)."""
    for seed in seeds:
        data = () if data_for_seed is None else tuple(f"data.{key}={path}" for key, path in zip(("data_dir", "folds_file"), data_for_seed(seed)))
        for name, variant in variants.items():
            if (name, seed) in done:
                continue
            seeded = Variant(variant.preset, variant.overrides + data + (f"train.seed={seed}",))
            yield name, seed, run_variant(seeded, RunDir(Path(out_dir) / f"{name}-seed{seed}"), folds, refresh=refresh)
