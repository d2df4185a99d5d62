"""`report`: PNG plots a competitor wants to see, gathered in runs/NAME/report/index.html."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from pipeline.competition.coverage import score_table  # noqa: E402
from pipeline.evaluation.evaluate import evaluate_run  # noqa: E402
from pipeline.fileio import atomic_path, read_table, write_text  # noqa: E402
from pipeline.rundir import RunDir  # noqa: E402

# plots keep their pixels up to the page width and shrink beyond it; long paths wrap: nothing overflows a 1280 px window
PAGE_STYLE = ("body{font-family:sans-serif;max-width:1240px;margin:0 auto;padding:0 16px}"
              "img{max-width:100%;height:auto}h1,h2,p,li{overflow-wrap:anywhere}")
HEAD_STATS = ("head_eta", "head_alpha_abs", "head_trace_abs", "head_lifetime_abs")


def read_metrics(run_dir: Path) -> dict[int, list[dict]]:
    curves = {}
    for fold in RunDir(run_dir).folds():
        if fold.metrics.exists():
            table = read_table(fold.metrics, unique=False)
            curves[fold.number] = [{k: float(v) for k, v in row.items() if v != ""} for row in table.to_dict("records")]
    return curves


def validated_epochs(rows: list[dict]) -> list[dict]:
    """A fold's metrics rows of the epochs that were validated (train.val_every skips the others)."""
    return [row for row in rows if "val_metric" in row]


def _save(figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)


def plot_learning_curves(curves, path: Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for fold, rows in curves.items():
        epochs = [r["epoch"] for r in rows]
        colour = f"C{fold % 10}"  # one colour per fold: its train (dashed) and validation lines match
        left.plot(epochs, [r["train_loss"] for r in rows], "--", color=colour, label=f"fold {fold} train")
        validated = validated_epochs(rows)
        left.plot([r["epoch"] for r in validated], [r["val_loss"] for r in validated], color=colour, label=f"fold {fold} val")
        right.plot([r["epoch"] for r in validated], [r["val_metric"] for r in validated], marker="o", color=colour, label=f"fold {fold}")
    left.set(xlabel="epoch", ylabel="loss", title="loss")
    right.set(xlabel="epoch", ylabel="competition metric (threshold 0.5)", title="validation metric")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    _save(figure, path)


def plot_threshold_curve(post: dict, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 4))
    thresholds = [c["threshold"] for c in post["curve"]]
    axis.plot(thresholds, [c["score_min_area_0"] for c in post["curve"]], label="no minimum area")
    axis.plot(thresholds, [c["score_best_min_area"] for c in post["curve"]], label="best minimum area")
    axis.axvline(post["best_threshold"], color="grey", linestyle=":")
    axis.set(xlabel="probability threshold", ylabel="OOF competition metric", title=f"chosen: {post['best_threshold']}, min area {post['best_min_area']}")
    axis.legend()
    _save(figure, path)


def plot_by_coverage(scores, classes, path: Path) -> None:
    rows = [r for r in score_table(scores, classes) if r["coverage_class"] != "all"]
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.bar([str(r["coverage_class"]) for r in rows], [r["score"] for r in rows])
    for i, r in enumerate(rows):
        axis.text(i, r["score"] + 0.01, str(r["images"]), ha="center", fontsize=7)
    axis.set(xlabel="coverage class (0 = empty, k = coverage in ((k-1)/10, k/10])", ylabel="OOF metric", ylim=(0, 1.08), title="OOF metric by coverage class (bar labels: images)")
    _save(figure, path)


def _outline(mask):
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def plot_overlays(oof, masks, scores, path: Path, best: bool, count: int = 8) -> None:
    salt = np.flatnonzero(oof.truth.reshape(len(oof.truth), -1).any(axis=1) | masks.reshape(len(masks), -1).any(axis=1))
    pool = salt if salt.size else np.arange(len(scores))
    order = pool[np.argsort(scores[pool], kind="stable")]
    chosen = order[::-1][:count] if best else order[:count]
    figure, axes = plt.subplots(1, max(len(chosen), 1), figsize=(2.2 * max(len(chosen), 1), 2.6), squeeze=False)
    for axis, index in zip(axes[0], chosen):
        rgb = np.repeat(oof.images[index][..., None], 3, axis=2).copy()
        rgb[_outline(oof.truth[index])] = (0, 255, 0)
        rgb[_outline(masks[index])] = (255, 0, 0)
        axis.imshow(rgb)
        axis.set_title(f"{oof.ids[index]}\n{scores[index]:.2f}", fontsize=7)
        axis.axis("off")
    figure.suptitle(f"{'best' if best else 'worst'} OOF images (green truth, red prediction)", fontsize=9)
    _save(figure, path)


def plot_head_stats(curves, path: Path) -> bool:
    present = [s for s in HEAD_STATS if any(s in r for rows in curves.values() for r in rows)]
    if not present:
        return False
    figure, axes = plt.subplots(1, len(present), figsize=(4 * len(present), 3.5), squeeze=False)
    for axis, stat in zip(axes[0], present):
        for fold, rows in curves.items():
            axis.plot([r["epoch"] for r in rows if stat in r], [r[stat] for r in rows if stat in r], label=f"fold {fold}")
        axis.set(xlabel="epoch", title=stat.replace("head_", ""))
        axis.legend(fontsize=7)
    figure.suptitle("plastic head over training: eta, mean |alpha|, mean |Hebb| after the episode, |lifetime trace|", fontsize=9)
    _save(figure, path)
    return True


def headline(run: RunDir) -> str:
    """The local test score and the submission path first (from summary.json), as a competitor wants them."""
    path = run.summary
    if not path.exists():
        return "local test score: not computed (no summary.json: run `python -m pipeline summary --run NAME --submission S --truth T`)"
    summary = json.loads(path.read_text())
    if "test" not in summary:
        return "local test score: none (no truth file; Kaggle scores the submission)"
    test = summary["test"]
    return f"local test score {test['score']:.4f} on {test['images']} images (all-empty {test['all_empty_score']:.4f}); submission: {test['submission']}"


def artefact_links(run: RunDir, out: Path) -> list[tuple[str, str]]:
    """(label, href relative to the report folder) for the run's files that exist: config, post-processing,
    summary, each fold's metrics, and the scored submission (summary.json's path, relative to the cwd)."""
    files = [run.config, run.postprocess, run.summary, *run.metrics_files()]
    links = [(str(path.relative_to(run.root)), os.path.relpath(path, out)) for path in files if path.exists()]
    summary = run.summary
    submission = json.loads(summary.read_text()).get("test", {}).get("submission") if summary.exists() else None
    if submission and Path(submission).exists():
        links.insert(0, (f"submission {Path(submission).name}", os.path.relpath(Path(submission).resolve(), out.resolve())))
    return links


def report(run_dir: Path, force: bool = False) -> Path:
    run = RunDir(run_dir)
    run_dir, cfg, out = run.root, run.load_config(), run.report
    index = out / "index.html"
    inputs = run.metrics_files() + [p for p in (run.postprocess, run.summary) if p.exists()]
    if not force and index.exists() and inputs and index.stat().st_mtime > max(p.stat().st_mtime for p in inputs):
        return index
    out.mkdir(parents=True, exist_ok=True)
    curves = read_metrics(run)
    evaluated = evaluate_run(run)
    oof, masks, scores, post = evaluated["oof"], evaluated["masks"], evaluated["scores"], evaluated["postprocess"]
    sections = [("Learning curves", "learning_curves.png")]
    plot_learning_curves(curves, out / "learning_curves.png")
    tuned = json.loads(run.postprocess.read_text()) if run.postprocess.exists() else {}
    if len(tuned.get("curve", [])) > 1:  # one threshold (a preset's fixed post-processing) draws no curve
        plot_threshold_curve(tuned, out / "threshold.png")
        sections.append(("OOF metric vs threshold", "threshold.png"))
    plot_by_coverage(scores, oof.coverage_class, out / "coverage.png")
    sections.append(("OOF metric by coverage class", "coverage.png"))
    plot_overlays(oof, masks, scores, out / "best.png", best=True)
    plot_overlays(oof, masks, scores, out / "worst.png", best=False)
    sections += [("Best OOF images", "best.png"), ("Worst OOF images", "worst.png")]
    if plot_head_stats(curves, out / "plastic_head.png"):
        sections.append(("Plastic head statistics", "plastic_head.png"))
    head = cfg.model.head
    summary = (
        f"run {run_dir.name}: encoder {cfg.model.encoder}, head rule {head.rule} ({head.placement}, {head.episode} episodes), "
        f"{len(curves)} folds, OOF score {scores.mean():.4f} at threshold {post.threshold}, min area {post.min_area}"
    )
    body = "\n".join(f"<h2>{html.escape(title)}</h2>\n<img src=\"{name}\" alt=\"{html.escape(title)}\">" for title, name in sections)
    items = "".join(f"<li><a href=\"{html.escape(href)}\">{html.escape(label)}</a></li>" for label, href in artefact_links(run, out))
    body += f"\n<h2>Files</h2>\n<ul>{items}</ul>"
    page = (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(run_dir.name)}</title>\n<style>{PAGE_STYLE}</style></head>\n<body>\n"
            f"<h1>{html.escape(headline(run))}</h1>\n<p>{html.escape(summary)}</p>\n{body}\n</body></html>\n")
    write_text(out / "index.html", page)
    return out / "index.html"
