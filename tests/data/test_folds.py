import re
import numpy as np
import pytest

from pipeline.data.folds import assign_folds, make_folds, read_folds
from pipeline.data.prep import load_train_cache
from pipeline.errors import PipelineError


def test_stratified_on_coverage_class():
    classes = np.repeat(np.arange(11), 50)
    folds = assign_folds(classes, np.zeros(classes.size), k=5, seed=0)
    for cls in range(11):
        assert np.bincount(folds[classes == cls], minlength=5).tolist() == [10] * 5


def test_depth_round_robin():
    depth = np.array([500, 100, 300, 200, 400, 600])
    folds = assign_folds(np.zeros(6, int), depth, k=3, seed=0, by="depth")
    assert folds.tolist() == [1, 0, 2, 1, 0, 2]


def test_invalid_k():
    with pytest.raises(PipelineError, match="k must be between 2"):
        assign_folds(np.zeros(10, int), np.zeros(10), k=1, seed=0)


def test_folds_file_is_part_of_an_experiments_identity(workdir):
    path = workdir / "folds" / "folds.csv"
    before = path.read_text()
    assert make_folds(workdir / "data", path, k=3, seed=42) == read_folds(path)  # same split: fine
    with pytest.raises(PipelineError, match="different split.*--force"):
        make_folds(workdir / "data", path, k=4, seed=42)
    assert path.read_text() == before
    assignment = make_folds(workdir / "data", path, k=4, seed=42, force=True)
    assert set(assignment.values()) == {0, 1, 2, 3}
    assert set(assignment) == set(load_train_cache(workdir / "data").ids)


def test_a_folds_file_without_its_columns_is_a_clear_error(tmp_path):
    from pipeline.data.folds import read_folds
    from pipeline.errors import PipelineError

    (tmp_path / "folds.csv").write_text("image,split\na,0\n")
    with pytest.raises(PipelineError, match=r"folds.csv: expected columns id,fold"):
        read_folds(tmp_path / "folds.csv")


def test_a_missing_folds_file_names_the_command_that_writes_it(tmp_path):
    """`folds --data DIR` alone writes folds/folds.csv, not DIR/folds.csv: the fix must carry --out."""
    from pipeline.data.folds import read_folds
    from pipeline.errors import PipelineError

    missing = tmp_path / "carve" / "folds.csv"
    with pytest.raises(PipelineError, match=rf"--out {re.escape(str(missing))}` first"):
        read_folds(missing)
