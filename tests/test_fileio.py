import pytest

from pipeline.fileio import write_csv, write_text


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "table.csv"
    write_text(target, "old\n")

    def rows():
        yield ["a", 1]
        raise KeyboardInterrupt  # the write is cut off half way

    with pytest.raises(KeyboardInterrupt):
        write_csv(target, ["name", "value"], rows())
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_written_files_get_ordinary_permissions(tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
