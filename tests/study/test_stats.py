import numpy as np
import pytest
from scipy import stats as scipy_stats

from pipeline.study.stats import bootstrap_mean, coverage_group, holm, seed_tests


def test_holm_step_down_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_paired_seed_tests_by_hand():
    differences = np.array([0.01, 0.02, 0.03, 0.015, 0.025])
    result = seed_tests(differences)
    # t = mean / (sd / sqrt(n)) = 0.02 / (0.0079057 / 2.2361) = 5.657 on 4 degrees of freedom
    assert result["t_p"] == pytest.approx(2 * scipy_stats.t.sf(0.02 / (np.sqrt(6.25e-5) / np.sqrt(5)), 4))
    assert result["t_p"] == pytest.approx(0.00481, abs=5e-5)
    assert result["wilcoxon_p"] == pytest.approx(2 / 32)  # all five ranks positive: exact two-sided p
    assert result["better"] == 5 and result["mean"] == pytest.approx(0.02)
    # the same numbers as scipy's paired test on the two heads' scores
    base = np.array([0.70, 0.71, 0.69, 0.72, 0.70])
    assert result["t_p"] == pytest.approx(scipy_stats.ttest_rel(base + differences, base).pvalue)


def test_bootstrap_interval_covers_the_true_mean_and_is_as_wide_as_theory():
    values = np.random.default_rng(1).normal(0.05, 0.1, 2000)
    result = bootstrap_mean(values, resamples=4000, seed=0)
    assert result["ci_low"] < 0.05 < result["ci_high"]
    assert result["ci_high"] - result["ci_low"] == pytest.approx(2 * 1.96 * 0.1 / np.sqrt(2000), rel=0.1)
    assert result["p"] == pytest.approx(1 / 4000)  # zero is 22 standard errors away
    for seed in range(3):  # near zero: the bootstrap p-value is the normal-theory one
        sample = np.random.default_rng(seed + 10).normal(0.002, 0.1, 2000)
        theory = 2 * scipy_stats.norm.sf(abs(sample.mean()) / (sample.std(ddof=1) / np.sqrt(len(sample))))
        assert bootstrap_mean(sample, resamples=20_000)["p"] == pytest.approx(theory, abs=0.02)
    assert bootstrap_mean(np.zeros(50)) == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p": 1.0, "images": 50}


def test_coverage_groups():
    assert coverage_group(np.array([0, 1, 3, 4, 10])).tolist() == [
        "empty", "small (coverage <= 30%)", "small (coverage <= 30%)", "large (coverage > 30%)", "large (coverage > 30%)"]
