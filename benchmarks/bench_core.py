"""RLE, metric and prep speed on competition-sized synthetic data.

Goals: encode + decode of 18,000 masks < 1 s; metric on 4,000 images < 1 s; prep of 22,000 images < 60 s.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import best_of, write_result

from pipeline.competition.metric import per_image_scores
from pipeline.competition.rle import decode_many, encode_many
from pipeline.data.prep import prep
from pipeline.data.synth import _salt_mask, synthesize


def realistic_masks(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.stack([_salt_mask(rng, 101) for _ in range(200)])
    masks = base[rng.integers(0, 200, count)]
    masks[rng.random(count) < 0.39] = False
    return masks


def run(n_train: int = 4000, n_test: int = 18000) -> dict:
    masks = realistic_masks(18000)
    ids = [str(i) for i in range(len(masks))]
    rles = encode_many(masks)
    assert np.array_equal(decode_many(rles, ids), masks)
    encode_s = best_of(lambda: encode_many(masks))
    decode_s = best_of(lambda: decode_many(rles, ids))
    predicted, truth = realistic_masks(4000, 1), realistic_masks(4000, 2)
    metric_s = best_of(lambda: per_image_scores(predicted, truth))
    workdir = Path(tempfile.mkdtemp(prefix="bench-prep-"))
    try:
        started = time.perf_counter()
        synthesize(workdir / "data", n_train, n_test, seed=0)
        synth_s = time.perf_counter() - started
        started = time.perf_counter()
        manifest = prep(workdir / "data")
        prep_s = time.perf_counter() - started
        started = time.perf_counter()
        prep(workdir / "data")
        noop_s = time.perf_counter() - started
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "rle_encode_decode_18000_s": encode_s + decode_s,
        "rle_encode_18000_s": encode_s,
        "rle_decode_18000_s": decode_s,
        "metric_4000_s": metric_s,
        "prep_images": manifest["train_images"] + manifest["test_images"],
        "prep_s": prep_s,
        "prep_noop_s": noop_s,
        "synth_s": synth_s,
        "goals": {"rle_encode_decode_18000_s": 1.0, "metric_4000_s": 1.0, "prep_s": 60.0},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=18000)
    args = parser.parse_args()
    write_result("core", run(args.train, args.test))
