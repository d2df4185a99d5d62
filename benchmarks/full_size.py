"""How long `./run.sh` takes on a folder the size of the real competition (4,000 train, 18,000 test images) on
this machine, from a fresh clone, as a new user would run it.

    .venv/bin/python benchmarks/full_size.py --dev ../shared/tgs-real-dev --out /tmp/plastic-salt-full

builds OUT/data in the competition layout from a labelled folder (the real dev set has 2,000 labelled images:
its images are repeated under new ids, as symlinks, to reach --train train and --test unlabelled test images;
the repeats make the scores meaningless, only the time counts), clones this repository at HEAD into OUT/repo
(reusing this checkout's .venv), runs `DATA=OUT/data ./run.sh` there and writes
benchmarks/results/full-size-cpu.json: wall time, the time of each stage, the data's size and the preset.
The data never enters the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
from common import ROOT, write_result

from pipeline.data.layout import Layout, read_depths
from pipeline.fileio import read_table


def repeat_id(image_id: str, copy: int) -> str:
    """The id itself for the first copy, else a new id of the competition's form (10 hex digits)."""
    return image_id if copy == 0 else hashlib.sha1(f"{image_id}/{copy}".encode()).hexdigest()[:10]


def build(dev: Path, out: Path, n_train: int, n_test: int) -> Path:
    src, dst = Layout(dev), Layout(out)
    if dst.train_csv.exists():
        return out
    labels = read_table(src.train_csv, ("id", "rle_mask"))
    depths = read_depths(src.depths_csv)
    ids = sorted(labels["id"])
    rle_of = dict(zip(labels["id"], labels["rle_mask"]))
    for folder in ("train/images", "train/masks", "test/images"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    train_rows, test_ids, depth_rows = [], [], []
    for k in range(n_train):
        source, new = ids[k % len(ids)], repeat_id(ids[k % len(ids)], k // len(ids))
        dst.train_image(new).symlink_to(src.train_image(source).resolve())
        dst.train_mask(new).symlink_to(src.train_mask(source).resolve())
        train_rows.append((new, rle_of[source]))
        depth_rows.append((new, depths[source]))
    for k in range(n_test):
        # test copies start after the train copies, so no test id is also a train id
        source, new = ids[k % len(ids)], repeat_id(ids[k % len(ids)], 1000 + k // len(ids))
        dst.test_image(new).symlink_to(src.train_image(source).resolve())
        test_ids.append(new)
        depth_rows.append((new, depths[source]))
    pd.DataFrame(depth_rows, columns=["id", "z"]).to_csv(dst.depths_csv, index=False)
    pd.DataFrame({"id": test_ids, "rle_mask": "1 1"}).to_csv(out / "sample_submission.csv", index=False)
    pd.DataFrame(train_rows, columns=["id", "rle_mask"]).to_csv(dst.train_csv, index=False)  # last: marks the folder complete
    return out


def run(dev: Path, out: Path, n_train: int, n_test: int) -> dict:
    data = build(dev, out / "data", n_train, n_test)
    repo = out / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    (repo / ".venv").symlink_to(ROOT / ".venv")
    started = time.perf_counter()
    with open(out / "log.txt", "w") as log:
        subprocess.run(["./run.sh"], cwd=repo, env={**os.environ, "DATA": str(data)}, stdout=log, stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - started
    summary = json.loads(next((repo / "runs").glob("*/summary.json")).read_text())
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    return {"commit": commit, "train_images": n_train, "test_images": n_test, "wall_s": wall,
            "stage_seconds": summary.get("stage_seconds", {}), "run": summary.get("run"),
            "command": f"DATA={data} ./run.sh (fresh clone)"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, required=True, help="a labelled Kaggle layout (the real dev set)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/plastic-salt-full"))
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=18000)
    args = parser.parse_args()
    write_result("full-size-cpu", run(args.dev.resolve(), args.out, args.train, args.test))
