"""`ablate`: does plasticity help? Train every head with every seed on the same folds through the train,
infer and evaluate stages, then tabulate OOF and held-out test scores, speed and size per head."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from pipeline.config import RULES, load_config  # noqa: E402
from pipeline.data.layout import Layout  # noqa: E402
from pipeline.evaluation.evaluate import evaluate_run, evaluate_submission  # noqa: E402
from pipeline.fileio import PipelineError, atomic_path, read_table, write_table, write_text  # noqa: E402
from pipeline.inference.infer import infer  # noqa: E402
from pipeline.inference.submit import submit  # noqa: E402
from pipeline.models.factory import build_model, count_parameters  # noqa: E402
from pipeline.training.trainer import train  # noqa: E402

# one entry per plasticity rule (from the config's declaration), plus the original Plastic-UNet's placement
HEADS = {rule: [f"model.head.rule={rule}"] for rule in RULES} | {
    "original-rows": ["model.head.rule=hebb", "model.head.placement=rows"],
    # the original Plastic-UNet itself: its placement and dynamics, trained at batch size 1
    "original": ["model.head.rule=hebb", "model.head.placement=original", "train.batch_size=1"],
}


def test_score(run_dir: Path, truth_path: Path) -> float | None:
    """Score of the run's submission (written by the submit stage) against a truth file (synthetic data only)."""
    if not truth_path.exists():
        return None
    submission = submit(run_dir, run_dir / "submissions")["path"]
    return float(evaluate_submission(Path(submission), truth_path)["scores"].mean())


def mean_train_speed(run_dir: Path) -> float:
    speeds = []
    for path in run_dir.glob("fold_*/metrics.csv"):
        speeds += read_table(path, ("train_img_per_s",), unique=False)["train_img_per_s"].astype(float).tolist()
    return float(np.mean(speeds))


def run_one(config: str, head: str, seed: int, folds, overrides: list[str], run_dir: Path) -> dict:
    cfg = load_config(config, overrides + HEADS[head] + [f"train.seed={seed}"])
    train(cfg, run_dir, folds, resume=True)
    oof = evaluate_run(run_dir, tuned=False)  # threshold 0.5: nothing tuned on the images being scored
    infer(run_dir, allow_partial=folds is not None)
    return {
        "head": head,
        "seed": seed,
        "oof_metric": float(oof["scores"].mean()),
        "test_metric": test_score(run_dir, Layout(Path(cfg.data.data_dir)).test_truth),
        "train_img_per_s": mean_train_speed(run_dir),
        "parameters": count_parameters(build_model(cfg)),
    }


def summarise(results: list[dict]) -> list[dict]:
    baseline = [r["oof_metric"] for r in results if r["head"] == "none"]
    rows = []
    for head in dict.fromkeys(r["head"] for r in results):
        runs = [r for r in results if r["head"] == head]
        oof = np.array([r["oof_metric"] for r in runs])
        test = np.array([r["test_metric"] for r in runs if r["test_metric"] is not None])
        p_value = float("nan")
        if head != "none" and len(baseline) > 1 and len(oof) > 1:
            p_value = float(stats.ttest_ind(oof, baseline, equal_var=False).pvalue)
        rows.append({
            "head": head,
            "runs": len(runs),
            "oof_mean": float(oof.mean()),
            "oof_std": float(oof.std(ddof=1)) if len(oof) > 1 else 0.0,
            "test_mean": float(test.mean()) if test.size else float("nan"),
            "test_std": float(test.std(ddof=1)) if test.size > 1 else 0.0,
            "p_vs_none": p_value,
            "train_img_per_s": float(np.mean([r["train_img_per_s"] for r in runs])),
            "parameters": runs[0]["parameters"],
        })
    return rows


def to_markdown(rows: list[dict], command: str) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        "| head | runs | OOF metric (thr 0.5) | test metric (OOF-tuned) | Welch p vs none (OOF) | train img/s | parameters |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p_value = "" if np.isnan(r["p_vs_none"]) else f"{r['p_vs_none']:.3f}"
        lines.append(
            f"| {r['head']} | {r['runs']} | {r['oof_mean']:.4f} ± {r['oof_std']:.4f} | {r['test_mean']:.4f} ± {r['test_std']:.4f} "
            f"| {p_value} | {r['train_img_per_s']:.0f} | {r['parameters']:,} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: list[dict], rows: list[dict], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(8, 4))
    names = [r["head"] for r in rows]
    axis.bar(names, [r["oof_mean"] for r in rows], yerr=[r["oof_std"] for r in rows], alpha=0.5, capsize=4, label="mean ± sd")
    for i, name in enumerate(names):
        seeds = [r["oof_metric"] for r in results if r["head"] == name]
        axis.scatter([i] * len(seeds), seeds, color="black", s=12, zorder=3)
    low = min(r["oof_metric"] for r in results)
    axis.set(ylabel="OOF competition metric (threshold 0.5)", ylim=(max(0, low - 0.05), min(1, max(r["oof_metric"] for r in results) + 0.03)),
             title="plastic heads vs the plain head (dots: seeds)")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)


def ablate(config: str, heads: list[str], seeds: int, folds, overrides: list[str], out_dir: Path, data_dir: str | None = None) -> dict:
    unknown = [h for h in heads if h not in HEADS]
    if unknown:
        raise PipelineError(f"ablate: unknown head '{unknown[0]}'; choose from {', '.join(HEADS)}")
    if seeds < 1:
        raise PipelineError("ablate: --seeds must be at least 1")
    if data_dir:
        overrides = overrides + [f"data.data_dir={data_dir}"]
    results = []
    for head in heads:
        for seed in range(seeds):
            result = run_one(config, head, seed, folds, overrides, out_dir / f"{head}-seed{seed}")
            results.append(result)
            print(f"ablate: {head} seed {seed}: OOF {result['oof_metric']:.4f} test {result['test_metric']}", flush=True)
    rows = summarise(results)
    folds_text = "all" if folds is None else ",".join(map(str, folds))
    command = f"python -m pipeline ablate --config {config} --heads {','.join(heads)} --seeds {seeds} --fold {folds_text}" + "".join(f" --set {o}" for o in overrides if not o.startswith("data.data_dir"))
    outputs = {"csv": out_dir / "ablation.csv", "markdown": out_dir / "ablation.md", "plot": out_dir / "ablation.png", "runs": out_dir / "runs.csv"}
    write_table(outputs["runs"], pd.DataFrame(results))
    write_table(outputs["csv"], pd.DataFrame(rows))
    write_text(outputs["markdown"], to_markdown(rows, command))
    plot(results, rows, outputs["plot"])
    return outputs
