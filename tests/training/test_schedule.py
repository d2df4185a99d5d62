import pytest

from pipeline.training.schedule import lr_multiplier


def test_warmup_then_cosine():
    values = [lr_multiplier(step, 100, 10, 1, 0.01) for step in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0)
    assert values[55] == pytest.approx(0.01 + 0.99 * 0.5, abs=1e-9)  # half way through the cosine
    assert all(a >= b for a, b in zip(values[10:], values[11:]))  # never rises after warm-up
    assert values[-1] < 0.02


def test_restarts_return_to_the_peak():
    values = [lr_multiplier(step, 100, 0, 4, 0.0) for step in range(100)]
    assert [values[i] for i in (0, 25, 50, 75)] == [1.0, 1.0, 1.0, 1.0]
    assert values[24] < 0.01


def test_cycle_ends_for_snapshots():
    from pipeline.config import OptimConfig
    from pipeline.training.schedule import cycle_end_epochs

    restarts = OptimConfig(schedule="restarts", cycles=3, warmup_epochs=0)
    assert cycle_end_epochs(steps_per_epoch=10, epochs=9, cfg=restarts) == [3, 6, 9]
    assert cycle_end_epochs(steps_per_epoch=10, epochs=8, cfg=OptimConfig(schedule="cosine", warmup_epochs=1)) == [8]
