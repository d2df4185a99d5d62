"""The faults a long run meets, each injected where it happens: a full disk in the middle of a file, a second
writer on the same run, SIGINT and SIGKILL during training, a checkpoint cut short, a temporary file left by an
earlier crash. Each ends in a one-line `error:` (or the interrupted line), loses nothing already written, and the
run still resumes to the bit-exact result of an unbroken one."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.fileio import write_table, write_text
from pipeline.models.checkpoints import load_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
SMOKE = ["--config", "smoke", "--fold", "0", "--set", "train.device=cpu", "--set", "train.tensorboard=false"]


def cli(capsys, *argv, code=0):
    result = main(list(argv))
    captured = capsys.readouterr()
    assert result == code, captured.err
    return captured.out + captured.err


def one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def weights(path: Path) -> dict:
    return load_checkpoint(path)["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert torch.equal(value, second[key]), key


@pytest.fixture
def full_disk(monkeypatch):
    """Make writes fail with ENOSPC half-way through the file, for targets whose name contains `match`, from
    the `after`-th such write on (what a disk that fills up during a run does); set ["freed"] to stop."""
    real = Path.write_bytes
    real_save, real_savez = np.save, np.savez

    def install(match: str, after: int = 1):
        seen = {"writes": 0}

        def failing(name: str) -> bool:
            if match not in name or seen.get("freed"):
                return False
            seen["writes"] += 1
            return seen["writes"] >= after

        def write_bytes(self, data):
            if failing(self.name):
                with open(self, "wb") as handle:
                    handle.write(bytes(data)[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, data)

        def numpy_writer(real_writer):
            def write(file, *args, **kwargs):
                if failing(Path(getattr(file, "name", str(file))).name):
                    file.write(b"\x93NUMPY partial")
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real_writer(file, *args, **kwargs)
            return write

        monkeypatch.setattr(Path, "write_bytes", write_bytes)
        monkeypatch.setattr(np, "save", numpy_writer(real_save))
        monkeypatch.setattr(np, "savez", numpy_writer(real_savez))
        return seen

    return install


def test_a_full_disk_mid_file_is_one_line_with_the_size_and_keeps_the_old_file(tmp_path, full_disk):
    target = tmp_path / "table.csv"
    write_text(target, "old\n")
    full_disk("table.csv")
    with pytest.raises(PipelineError) as error:
        write_table(target, pd.DataFrame({"id": ["a"] * 100_000}))
    message = str(error.value)
    assert message.startswith(f"cannot write {target}: no space left on device (needs ~0.2 MB, ") and "MB free)" in message
    assert "\n" not in message
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]  # no .tmp left


@pytest.mark.parametrize(("code", "reason"), [(errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system")])
def test_no_permission_and_a_read_only_disk_are_one_line_too(tmp_path, monkeypatch, code, reason):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    with pytest.raises(PipelineError, match=f"cannot write {tmp_path / 'x.txt'}: {reason}; make {tmp_path} writable"):
        write_text(tmp_path / "x.txt", "x")


def test_a_full_disk_during_prep_is_one_line_and_the_cache_stays_as_it_was(workdir, capsys, full_disk):
    cache = workdir / "data" / "cache"
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    full_disk(".npz")
    out = cli(capsys, "prep", "--data", "data", "--force", code=2)
    assert "no space left on device" in one_error_line(out) and "data/cache/" in one_error_line(out)
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == before  # nothing half-written, nothing lost


def test_a_checkpoint_write_that_fails_keeps_the_previous_last_pt_and_the_run_resumes_bit_exactly(workdir, capsys, full_disk):
    cli(capsys, "train", "--run", "unbroken", *SMOKE, "--set", "train.epochs=3")
    writes = full_disk("last.pt", after=2)  # epoch 1's last.pt lands, epoch 2's does not
    line = one_error_line(cli(capsys, "train", "--run", "r", *SMOKE, "--set", "train.epochs=3", code=2))
    assert "cannot write runs/r/fold_0/last.pt: no space left on device (needs ~" in line and writes["writes"] == 2
    assert load_checkpoint(workdir / "runs" / "r" / "fold_0" / "last.pt")["epoch"] == 1  # the previous one, intact
    assert not list((workdir / "runs" / "r" / "fold_0").glob(".*.tmp"))
    writes["freed"] = True
    cli(capsys, "train", "--run", "r", "--resume", "--fold", "0")
    assert_same_weights(workdir / "runs" / "unbroken" / "fold_0" / "last.pt", workdir / "runs" / "r" / "fold_0" / "last.pt")


def hold_lock(workdir: Path, run: str) -> subprocess.Popen:
    """Another process that holds the run's writer lock until it is killed."""
    code = ("import sys, time; from pipeline.fileio import run_lock\n"
            f"with run_lock('runs/{run}', 'train'):\n    print('held', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=workdir, env=ENV, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_is_refused_naming_the_holder_and_readers_never_block(workdir, capsys):
    cli(capsys, "train", "--run", "r", *SMOKE, "--set", "train.epochs=1")
    cli(capsys, "infer", "--run", "r", "--allow-partial")
    holder = hold_lock(workdir, "r")
    try:
        for stage in (["train", "--run", "r", "--resume", "--fold", "0"], ["infer", "--run", "r", "--force", "--allow-partial"], ["submit", "--run", "r"]):
            line = one_error_line(cli(capsys, *stage, code=2))
            assert f"run runs/r is in use by pid {holder.pid} (train, started 20" in line and "another --run" in line
        assert "OOF score" in cli(capsys, "evaluate", "--run", "r")  # a reader
        cli(capsys, "report", "--run", "r")
    finally:
        holder.send_signal(signal.SIGKILL)  # kill -9: the OS drops the lock, nothing stale is left
        holder.wait()
        holder.stdout.close()
    assert "submit: " in cli(capsys, "submit", "--run", "r")


def test_two_trainings_started_at_once_on_one_run_one_trains_the_other_is_refused(workdir):
    # long enough (10 epochs) that the second start always meets the first still training
    command = [sys.executable, "-m", "pipeline", "train", "--run", "same", *SMOKE, "--set", "train.epochs=10"]
    processes = [subprocess.Popen(command, cwd=workdir, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted((p.wait(timeout=300), p.stderr.read(), p.pid) for p in processes)
    for p in processes:
        p.stdout.close(), p.stderr.close()
    (winner, _, winner_pid), (loser, message, _) = results
    assert (winner, loser) == (0, 2), message
    assert one_error_line(message).startswith(f"error: run runs/same is in use by pid {winner_pid} (train, started ")
    assert load_checkpoint(workdir / "runs" / "same" / "fold_0" / "last.pt")["epoch"] == 10


def test_sigint_in_the_middle_of_training_says_nothing_is_lost_and_resume_is_bit_exact(workdir, capsys):
    # 12 short epochs: on a loaded machine this process may wake a few epochs after epoch 1's checkpoint lands,
    # and the signal must still find training running
    epochs = 12
    overrides = ["--set", f"train.epochs={epochs}", "--set", "train.max_steps_per_epoch=6"]
    command = [sys.executable, "-m", "pipeline", "train", "--run", "stopped", *SMOKE, *overrides]
    last = workdir / "runs" / "stopped" / "fold_0" / "last.pt"
    # the child gets SIGINT's default action back: a suite started in the background by a non-interactive shell
    # (`./run.sh test &`, nohup) inherits SIGINT ignored, and Python then leaves it ignored, so Ctrl-C's signal
    # would never arrive. The with-block closes the pipe whatever happens, so a failure is reported here and not as
    # an unclosed file in whichever test runs next.
    with subprocess.Popen(command, cwd=workdir, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as process:
        deadline = time.time() + 120
        while not last.exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)  # during epoch 2 or soon after (epoch 1's checkpoint has just landed)
        code = process.wait(timeout=120)
        stderr = process.stderr.read()
    done = load_checkpoint(last)["epoch"] if last.exists() else None
    assert code == 130, f"exit {code} after epoch {done} of {epochs}: {stderr[-500:]}"
    assert "interrupted: files already written are intact" in stderr
    assert 1 <= done < epochs
    cli(capsys, "train", "--run", "stopped", "--resume", "--fold", "0")
    cli(capsys, "train", "--run", "unbroken", *SMOKE, *overrides)
    assert_same_weights(workdir / "runs" / "unbroken" / "fold_0" / "last.pt", last)


def stopped_after_one_epoch(workdir: Path, run: str) -> Path:
    """A run of 2 epochs stopped after the first, as a crash would leave it: its last.pt."""
    from pipeline.config import load_config
    from pipeline.training import trainer

    def stop(training, row):
        raise trainer.InterruptTraining

    cfg = load_config("smoke", ["train.epochs=2", "train.device=cpu", "train.tensorboard=false"])
    with pytest.raises(trainer.InterruptTraining):
        trainer.train(cfg, workdir / "runs" / run, folds=[0], callbacks=(stop,))
    return workdir / "runs" / run / "fold_0" / "last.pt"


@pytest.mark.parametrize("keep", [0.0, 0.001, 0.33, 0.9, 0.9999])
def test_a_checkpoint_cut_short_anywhere_is_one_line_on_resume(workdir, capsys, keep):
    last = stopped_after_one_epoch(workdir, "r")
    data = last.read_bytes()
    last.write_bytes(data[: int(len(data) * keep)])
    line = one_error_line(cli(capsys, "train", "--run", "r", "--resume", "--fold", "0", code=2))
    assert line.startswith("error: checkpoint runs/r/fold_0/last.pt cannot be read (") and line.endswith("delete it and train again")


def test_temporary_files_left_by_an_earlier_crash_are_ignored(workdir, capsys):
    cli(capsys, "train", "--run", "unbroken", *SMOKE, "--set", "train.epochs=2")
    fold = stopped_after_one_epoch(workdir, "r").parent
    (fold / ".last.pt.x1y2z3.tmp").write_bytes(b"half a checkpoint")  # what a crash mid-write leaves
    (workdir / "data" / "cache" / ".train.npz.a1b2c3.tmp").write_bytes(b"half a cache")
    assert "up to date" in cli(capsys, "prep", "--data", "data")
    cli(capsys, "train", "--run", "r", "--resume", "--fold", "0")
    assert_same_weights(workdir / "runs" / "unbroken" / "fold_0" / "last.pt", fold / "last.pt")
    cli(capsys, "infer", "--run", "r", "--allow-partial")
