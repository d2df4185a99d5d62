"""The benchmarks check their own premises: an empty batch or a non-finite loss stops them loudly."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_heads  # noqa: E402
from common import interleaved, paired_overhead, real_batch  # noqa: E402

from pipeline.config import load_config  # noqa: E402


def test_a_step_refuses_an_empty_batch_and_a_nan_loss():
    cfg = load_config("smoke", ["model.head.rule=hebb"])
    stepper = bench_heads.Stepper(cfg)
    images, masks = real_batch(cfg, 4)
    assert images.shape == (4, 1, 64, 64) and 0 < float(masks.mean()) < 1  # real images, some salt
    stepper.step(images, masks)
    with pytest.raises(RuntimeError, match="empty batch"):
        stepper.step(images[16:17], masks[16:17])  # the slice the old batch-1 loop ran past the end into
    with pytest.raises(RuntimeError, match="not finite"):
        stepper.step(images, masks * float("nan"))


def test_interleaved_rounds_give_median_min_max_per_side():
    calls = []
    timings = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3, warmup=1, shuffle=False)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up, then A B, A B, A B
    calls.clear()
    interleaved({name: (lambda n=name: calls.append(n)) for name in "abcd"}, rounds=6, warmup=0)
    rounds = [calls[i : i + 4] for i in range(0, 24, 4)]
    assert all(sorted(r) == list("abcd") for r in rounds)  # every side once per round
    assert len({tuple(r) for r in rounds}) > 1  # in changing orders
    for timing in timings.values():
        assert timing["rounds"] == 3 and timing["min_s"] <= timing["median_s"] <= timing["max_s"]
        assert len(timing["samples_s"]) == 3 and timing["median_s"] in timing["samples_s"]


def test_paired_overhead_is_the_median_of_per_round_ratios():
    # the machine slows down over the rounds; the head costs 10% in rounds 0 and 2 and nothing in round 1
    timings = {"none": {"samples_s": [1.0, 2.0, 4.0]}, "hebb": {"samples_s": [1.1, 2.0, 4.4]}}
    overhead = paired_overhead(timings, "none")
    assert overhead["hebb"]["median"] == pytest.approx(0.10)  # the ratio of medians would say 0% (2.0 / 2.0)
    assert overhead["hebb"]["min"] == pytest.approx(0.0) and overhead["hebb"]["max"] == pytest.approx(0.10)
    assert overhead["none"] == {"median": 0.0, "q1": 0.0, "q3": 0.0, "min": 0.0, "max": 0.0}
