import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.competition.rle import encode
from pipeline.evaluation.evaluate import evaluate_submission, format_table
from pipeline.errors import PipelineError
from pipeline.fileio import read_table, write_table


def truth_rows(path):
    table = read_table(path, ("id", "rle_mask"))
    return list(zip(table["id"], table["rle_mask"]))


def test_truth_against_itself_scores_one(workdir, capsys):
    truth = workdir / "data" / "test_truth.csv"
    assert main(["evaluate", "--submission", str(truth), "--truth", str(truth)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "score 1.0000"


def test_all_empty_submission_scores_the_empty_fraction(workdir):
    truth = workdir / "data" / "test_truth.csv"
    rows = truth_rows(truth)
    write_table(workdir / "empty.csv", pd.DataFrame([(i, "") for i, _ in rows], columns=["id", "rle_mask"]))
    result = evaluate_submission(workdir / "empty.csv", truth)
    empty_fraction = np.mean([rle == "" for _, rle in rows])
    assert result["scores"].mean() == pytest.approx(empty_fraction)
    assert format_table(result).splitlines()[-1] == f"score {empty_fraction:.4f}"


def test_a_shifted_mask_scores_by_its_iou(tmp_path):
    mask = np.zeros((101, 101), bool)
    mask[:, :50] = True
    shifted = np.zeros_like(mask)
    shifted[:, 10:50] = True  # IoU 40/50 = 0.8 -> thresholds 0.50..0.75 pass: 0.6
    write_table(tmp_path / "truth.csv", pd.DataFrame([("a", encode(mask))], columns=["id", "rle_mask"]))
    write_table(tmp_path / "sub.csv", pd.DataFrame([("a", encode(shifted))], columns=["id", "rle_mask"]))
    assert evaluate_submission(tmp_path / "sub.csv", tmp_path / "truth.csv")["scores"].tolist() == [0.6]


def test_id_mismatch_is_a_clear_error(tmp_path):
    write_table(tmp_path / "truth.csv", pd.DataFrame([("a", ""), ("b", "")], columns=["id", "rle_mask"]))
    write_table(tmp_path / "sub.csv", pd.DataFrame([("a", ""), ("c", "")], columns=["id", "rle_mask"]))
    with pytest.raises(PipelineError, match="1 truth ids are not in the submission \\(first: b\\); 1 submission ids are not in the truth"):
        evaluate_submission(tmp_path / "sub.csv", tmp_path / "truth.csv")


def test_malformed_rle_in_a_submission(tmp_path, capsys):
    write_table(tmp_path / "truth.csv", pd.DataFrame([("a", "")], columns=["id", "rle_mask"]))
    write_table(tmp_path / "sub.csv", pd.DataFrame([("a", "3 2 1")], columns=["id", "rle_mask"]))
    assert main(["evaluate", "--submission", str(tmp_path / "sub.csv"), "--truth", str(tmp_path / "truth.csv")]) == 2
    assert "sub.csv: id a: RLE has an odd count" in capsys.readouterr().err
