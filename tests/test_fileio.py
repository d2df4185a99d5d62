import os

import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.fileio import read_table, write_table, write_text


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "table.csv"
    write_text(target, "old\n")

    def cut_off(*args):
        raise KeyboardInterrupt  # the process is stopped between writing and renaming

    monkeypatch.setattr(os, "replace", cut_off)
    with pytest.raises(KeyboardInterrupt):
        write_table(target, pd.DataFrame({"name": ["a"], "value": [1]}))
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_written_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_tables_keep_ids_as_text_and_empty_rles_as_empty_strings(tmp_path):
    # ids that pandas would otherwise read as numbers, NaN or a date; an empty mask is an empty field
    path = tmp_path / "train.csv"
    write_text(path, "id,rle_mask\n007,1 2\n1e5,\nNA, 3 4 \nnan,\n")
    table = read_table(path, ("id", "rle_mask"))
    assert table["id"].tolist() == ["007", "1e5", "NA", "nan"]
    assert table["rle_mask"].tolist() == ["1 2", "", "3 4", ""]
    write_table(tmp_path / "copy.csv", table)
    assert (tmp_path / "copy.csv").read_text() == "id,rle_mask\n007,1 2\n1e5,\nNA,3 4\nnan,\n"


@pytest.mark.parametrize(("text", "message"), [
    ("name,rle_mask\na,\n", "expected columns id,rle_mask, found ['name', 'rle_mask']; fix the header"),
    ("id,rle_mask\na,\na,1 1\n", "1 duplicate id values; each id must appear once"),
    ("", "expected columns id,rle_mask, found None; fix the header"),
    ('id,rle_mask\n"a,\n', "cannot be read as CSV"),
])
def test_bad_tables_get_one_line_errors_naming_the_file(tmp_path, text, message):
    path = tmp_path / "train.csv"
    path.write_text(text)
    with pytest.raises(PipelineError, match="train.csv") as error:
        read_table(path, ("id", "rle_mask"))
    assert message in str(error.value) and "\n" not in str(error.value)
