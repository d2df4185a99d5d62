"""`ablate`: does plasticity help? Train every head with every seed on the same folds through the train,
infer and evaluate stages, then compare heads in pairs on the same seeds and the same images.

The control that isolates plasticity is `frozen`: the same head, parameters, tanh path and iterations with the
trace held at zero. Each plastic rule is compared with it; `frozen` is compared with `none` (the plain 1x1
head: what the plastic head's design costs before any plasticity). Per-image scores come from the held-out
test truth when the data has one (synthetic data, carved mini competitions), else from the OOF predictions at
threshold 0.5 (real competition data). Every run is stamped with the code commit and its resolved config;
runs of different code are not tabulated together unless asked.

Adaptation at test time, without retraining: `test_time` names ways to score each trained run again with a
non-plastic adaptation (adabn: BatchNorm statistics re-estimated on the test images), as run HEAD+adabn;
`also_test` scores each trained run on other data folders holding the same training images and other test
images (a `holdout --test-gain` carve: an amplitude shift), as run HEAD@NAME. Both share the trained weights
(RunDir.derive), so their pairs differ only in how the test images are read. A head READ_AS another (lifetime-adapt:
lifetime's training, its trace adapting at inference) is scored from that head's trained weights, not trained again.

A study outlives the machine it ran on: the tables are rewritten after every finished run, and a run already
recorded in OUT/runs.csv and OUT/image_scores.csv (committed under docs/, say) is kept, not trained again, so
the same command continues the grid elsewhere. `runs_dir` holds the run folders (weights), apart from OUT."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.config import READING_KEYS, RULES, apply_override, config_from_dict, load_config, to_dict, with_runtime  # noqa: E402
from pipeline.data.layout import Layout, training_set_difference  # noqa: E402
from pipeline.data.prep import prep  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.evaluation.report import read_metrics  # noqa: E402
from pipeline.fileio import atomic_path, write_json, write_table, write_text  # noqa: E402
from pipeline.models.factory import build_model, count_parameters  # noqa: E402
from pipeline.rundir import RunDir  # noqa: E402
from pipeline.study.paired import paired_runs  # noqa: E402
from pipeline.study.stats import COVERAGE_GROUPS, bootstrap_mean, coverage_group, holm, seed_tests  # noqa: E402
from pipeline.workflow import Outcome, Variant, score_run  # noqa: E402

# one entry per plasticity rule (from the config's declaration), plus the original Plastic-UNet's placement
HEADS = {rule: [f"model.head.rule={rule}"] for rule in RULES} | {
    "original-rows": ["model.head.rule=hebb", "model.head.placement=rows"],
    # the original Plastic-UNet itself: its placement and dynamics, trained at batch size 1
    "original": ["model.head.rule=hebb", "model.head.placement=original", "train.batch_size=1"],
    # its control: the same placement, dynamics and batch size with the trace held at zero (plasticity alone)
    "original-frozen": ["model.head.rule=frozen", "model.head.placement=original", "train.batch_size=1"],
    # the original project's long-term memory: a Hebbian trace consolidated over training, read at inference
    # as it was left (lifetime) or still learning, image after image (lifetime-adapt); trained identically
    "lifetime": ["model.head.rule=hebb", "model.head.episode=lifetime"],
    "lifetime-adapt": ["model.head.rule=hebb", "model.head.episode=lifetime", "model.head.inference_plasticity=adapt"],
}

# heads that are another head's training read another way: (trained head, recipe keys the trainer never reads).
# Validation keeps the lifetime trace as training left it (Trainer.validate), so lifetime-adapt's training is
# lifetime's, step for step; only prediction lets the trace learn, image after image
READ_AS = {"lifetime-adapt": ("lifetime", ("model.head.inference_plasticity=adapt",))}
assert all(o.split("=")[0] in READING_KEYS for _, keys in READ_AS.values() for o in keys), "READ_AS may change only READING_KEYS"

# non-plastic ways to adapt at test time, each scored on the same trained weights (runtime infer keys)
# (notta: the preset's TTA views taken away, what TTA adds read the other way round); ADAPTATIONS are the ones a
# plastic head is also compared against (the plain head so adapted: plasticity's adaptation vs the obvious one)
TEST_TIME = {"adabn": ("infer.adapt_bn=true",), "notta": ("infer.tta=[none]", "infer.tta_shift=0")}
ADAPTATIONS = ("adabn",)

REPO = Path(__file__).resolve().parents[2]


def code_version(root: Path = REPO) -> dict:
    """What identifies the code that runs: a hash of the package's source and presets (what the runs depend on;
    a commit that touches only docs leaves it unchanged) and, for reference, the git commit ('+dirty' when
    tracked files differ from it; 'unknown' outside git)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in (root / "pipeline").rglob("*") if p.suffix in (".py", ".yaml")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"code": digest.hexdigest()[:16], "commit": commit}


def hashed_id(image_id: str) -> str:
    """An image id as a stable 12-hex-digit key (the pairing needs only the same key for the same image): real
    competition ids stay out of a committed image_scores.csv (ablate --hash-ids)."""
    return hashlib.sha256(f"plastic-salt:{image_id}".encode()).hexdigest()[:12]


def image_scores(outcome: Outcome) -> tuple[pd.DataFrame, str]:
    """Per-image scores of a finished run (id, score, coverage_class) and what they score: the submission
    against the held-out truth when there is one, else the OOF predictions at threshold 0.5."""
    if outcome.test_result is not None:
        result = outcome.test_result
        return pd.DataFrame({"id": result["ids"], "score": result["scores"], "coverage_class": result["coverage_class"]}), "test"
    oof = outcome.oof_untuned
    return pd.DataFrame({"id": oof["oof"].ids, "score": oof["scores"], "coverage_class": oof["coverage_class"]}), "oof"


def mean_train_speed(run_dir: Path) -> float:
    return float(np.mean([row["train_img_per_s"] for rows in read_metrics(run_dir).values() for row in rows]))


def record(config: str, head: str, seed: int, outcome: Outcome, version: dict, hash_ids: bool = False) -> tuple[dict, pd.DataFrame]:
    """One finished run of the grid: its stamp (the code that made it, kept when it already had one), per-image
    scores (ids hashed with `hash_ids`) and the row of runs.csv."""
    run = outcome.run
    cfg = run.load_config()
    write_json(run.provenance, {"version": version, "config": to_dict(cfg)})
    scores, scored_on = image_scores(outcome)
    write_table(run.root / "image_scores.csv", scores)
    if hash_ids:
        scores = scores.assign(id=scores["id"].map(hashed_id))
    return {
        "head": head,
        "seed": seed,
        "oof_metric": outcome.oof_score_untuned,
        "test_metric": float(scores["score"].mean()) if scored_on == "test" else None,
        "scored_on": scored_on,
        "train_img_per_s": mean_train_speed(run.root),
        "parameters": count_parameters(build_model(cfg)),
        "code": version["code"],
        "commit": version["commit"],
    }, scores.assign(head=head, seed=seed)


def variant_name(head: str, adapt: str | None = None, test_set: str | None = None) -> str:
    return head + (f"+{adapt}" if adapt else "") + (f"@{test_set}" if test_set else "")


def test_time_pairs(heads: list[str], test_time: list[str], test_sets: list[str | None]) -> list[tuple[str, str]]:
    """The pairs on each test set (None: the data folder's own): the heads' usual pairs; each head with a
    test-time adaptation vs the same head without; each plastic head vs the plain head adapted (plasticity's
    adaptation against the obvious non-plastic one)."""
    pairs = []
    for test_set in test_sets:
        pairs += [(variant_name(h, None, test_set), variant_name(r, None, test_set)) for h, r in comparison_pairs(heads)]
        for adapt in test_time:
            pairs += [(variant_name(h, adapt, test_set), variant_name(h, None, test_set)) for h in heads]
            if "none" in heads and adapt in ADAPTATIONS:
                pairs += [(variant_name(h, None, test_set), variant_name("none", adapt, test_set)) for h in heads if h not in ("none", "frozen")]
    return pairs


def derived_variants(test_time: list[str], also_test: dict[str, Path]) -> list[tuple[str | None, str | None]]:
    """(adaptation, test set) of every way a trained run is scored besides its own plain one."""
    return [(adapt, test_set) for test_set in [None, *also_test] for adapt in [None, *test_time] if (adapt, test_set) != (None, None)]


def score_derived(outcome: Outcome, name: str, seed: int, recipe: tuple[str, ...], adapt: str | None, test_dir: Path | None,
                  runs_dir: Path, folds) -> Outcome:
    """The trained run `outcome` scored again as run NAME: read with `recipe` keys the trainer never reads
    (READ_AS), a test-time adaptation and/or on another test folder."""
    values = to_dict(outcome.run.load_config())
    for override in recipe:
        apply_override(values, override)
    if test_dir is not None:
        apply_override(values, f"data.data_dir={Path(test_dir).resolve()}")
    cfg = with_runtime(config_from_dict(values), list(TEST_TIME[adapt]) if adapt else [], "ablate --test-time")
    derived = outcome.run.derive(Path(runs_dir) / f"{name}-seed{seed}", cfg)
    return score_run(derived, allow_partial=folds is not None)


def trained_heads(heads: list[str]) -> dict[str, list[str]]:
    """{head that is trained: the requested heads read from its weights}, in the order asked."""
    readings: dict[str, list[str]] = {}
    for head in heads:
        readings.setdefault(READ_AS.get(head, (head,))[0], []).append(head)
    return readings


def recorded(out_dir: Path) -> tuple[dict[tuple[str, int], dict], pd.DataFrame]:
    """The runs an earlier pass of the study recorded in OUT (rows of runs.csv, per-image scores), by (name, seed)."""
    runs, images = out_dir / "runs.csv", out_dir / "image_scores.csv"
    if not (runs.exists() and images.exists()):
        return {}, pd.DataFrame()
    rows = pd.read_csv(runs, dtype={"code": str, "commit": str, "head": str})
    table = pd.read_csv(images, dtype={"id": str, "head": str})
    kept = {}
    for row in rows.to_dict("records"):
        row["seed"] = int(row["seed"])
        row["test_metric"] = None if pd.isna(row["test_metric"]) else float(row["test_metric"])
        kept[(row["head"], row["seed"])] = row
    missing = sorted(set(kept) - set(zip(table["head"], table["seed"].astype(int))))
    if missing:
        raise PipelineError(f"{images}: no per-image scores for run {missing[0][0]} seed {missing[0][1]} of {runs}; restore the file, "
                            "or delete both to rerun the study")
    return kept, table


def comparison_pairs(heads: list[str]) -> list[tuple[str, str]]:
    """(head, reference): each plastic head vs frozen (plasticity alone) when frozen ran, oja vs hebb (the rule's
    claim), and frozen vs none (the head's design); without frozen, each head vs none. A head NAME-adapt is compared with NAME (the same
    trained network, the trace frozen or adapting at inference) when NAME ran, and with its own control NAME-frozen
    when that ran (original-frozen: the original Plastic-UNet's, at its batch size 1 too). The original is also
    compared with this project's hebb head."""
    pairs = []
    for head in heads:
        if head in ("none", "frozen") or head.endswith("-frozen"):
            continue
        if f"{head}-frozen" in heads:
            pairs.append((head, f"{head}-frozen"))
        elif head.endswith("-adapt") and head.removesuffix("-adapt") in heads:
            pairs.append((head, head.removesuffix("-adapt")))
        elif "frozen" in heads:
            pairs.append((head, "frozen"))
        elif "none" in heads:
            pairs.append((head, "none"))
    if "original" in heads and "hebb" in heads:  # the original design (its placement, batch 1) against this project's
        pairs.append(("original", "hebb"))
    if "oja" in heads and "hebb" in heads:  # the seed project's claim: "Oja gives a considerable boost over Hebb"
        pairs.append(("oja", "hebb"))
    if "frozen" in heads and "none" in heads:
        pairs.append(("frozen", "none"))
    return pairs


def compare(results: list[dict], per_image: pd.DataFrame, pairs: list[tuple[str, str]], resamples: int = 10_000) -> list[dict]:
    """One row per pair: per-seed paired tests, the per-image bootstrap (overall and by coverage group), and
    Holm-adjusted per-image p-values across the pairs."""
    metric = "test_metric" if all(r["test_metric"] is not None for r in results) else "oof_metric"
    by_seed = {(r["head"], r["seed"]): r[metric] for r in results}
    table = per_image.pivot_table(index=["seed", "id"], columns="head", values="score")
    coverage = per_image.drop_duplicates(["seed", "id"]).set_index(["seed", "id"])["coverage_class"].reindex(table.index)
    rows = []
    for head, reference in pairs:
        seeds = sorted(s for (h, s) in by_seed if h == head and (reference, s) in by_seed)
        seed_diffs = np.array([by_seed[(head, s)] - by_seed[(reference, s)] for s in seeds])
        paired = table[[head, reference]].dropna()
        diffs = (paired[head] - paired[reference]).groupby(level="id").mean()  # per image, mean over seeds
        image_class = coverage.loc[paired.index].groupby(level="id").first().reindex(diffs.index).to_numpy()
        row = {"head": head, "reference": reference, **{f"seed_{k}": v for k, v in seed_tests(seed_diffs).items()}}
        overall = bootstrap_mean(diffs.to_numpy(), resamples)
        row.update({f"image_{k}": v for k, v in overall.items()})
        groups = coverage_group(image_class.astype(int))
        for name in COVERAGE_GROUPS:
            chosen = diffs.to_numpy()[groups == name]
            group = bootstrap_mean(chosen, resamples) if chosen.size else {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "images": 0}
            key = name.split(" ")[0]
            row.update({f"{key}_mean": group["mean"], f"{key}_ci_low": group["ci_low"], f"{key}_ci_high": group["ci_high"], f"{key}_images": group["images"]})
        rows.append(row)
    for row, adjusted in zip(rows, holm([r["image_p"] for r in rows])):
        row["image_p_holm"] = adjusted
    return rows


def summarise(results: list[dict]) -> list[dict]:
    rows = []
    for head in dict.fromkeys(r["head"] for r in results):
        runs = [r for r in results if r["head"] == head]
        oof = np.array([r["oof_metric"] for r in runs])
        test = np.array([r["test_metric"] for r in runs if r["test_metric"] is not None])
        rows.append({
            "head": head,
            "runs": len(runs),
            "oof_mean": float(oof.mean()),
            "oof_std": float(oof.std(ddof=1)) if len(oof) > 1 else 0.0,
            "test_mean": float(test.mean()) if test.size else float("nan"),
            "test_std": float(test.std(ddof=1)) if test.size > 1 else 0.0,
            "train_img_per_s": float(np.mean([r["train_img_per_s"] for r in runs])),
            "parameters": runs[0]["parameters"],
        })
    return rows


def _p(value: float) -> str:
    return "" if value is None or np.isnan(value) else f"{value:.3g}"


def to_markdown(rows: list[dict], comparisons: list[dict], command: str, commits: list[str], scored_on: str) -> str:
    lines = [
        f"Command: `{command}`", "", f"Code: {', '.join(commits)}. Per-image scores: {'held-out test images' if scored_on == 'test' else 'OOF images, threshold 0.5'}.", "",
        "| head | runs | OOF metric (thr 0.5) | test metric (OOF-tuned) | train img/s | parameters |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['head']} | {r['runs']} | {r['oof_mean']:.4f} ± {r['oof_std']:.4f} | {r['test_mean']:.4f} ± {r['test_std']:.4f} "
                     f"| {r['train_img_per_s']:.0f} | {r['parameters']:,} |")
    if comparisons:
        lines += ["", "Paired comparisons (head minus reference; per seed: mean scores, per image: score differences averaged over seeds, "
                  "95% bootstrap CI over images, Holm across the comparisons):", "",
                  "| head - reference | seeds better | per-seed mean diff | paired t p | Wilcoxon p | per-image mean diff [95% CI] | p | Holm p | empty | small | large |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in comparisons:
            groups = " | ".join(f"{c[k + '_mean']:+.4f} [{c[k + '_ci_low']:+.4f}, {c[k + '_ci_high']:+.4f}] ({c[k + '_images']})" if c[k + "_images"] else "-"
                                for k in ("empty", "small", "large"))
            lines.append(f"| {c['head']} - {c['reference']} | {c['seed_better']}/{c['seed_seeds']} | {c['seed_mean']:+.4f} | {_p(c['seed_t_p'])} "
                         f"| {_p(c['seed_wilcoxon_p'])} | {c['image_mean']:+.4f} [{c['image_ci_low']:+.4f}, {c['image_ci_high']:+.4f}] "
                         f"| {_p(c['image_p'])} | {_p(c['image_p_holm'])} | {groups} |")
    return "\n".join(lines) + "\n"


def plot(comparisons: list[dict], rows: list[dict], results: list[dict], path: Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 0.9 + 0.45 * max(len(rows), len(comparisons), 4)), layout="constrained")
    names = [r["head"] for r in rows]
    metric = "test_metric" if all(r["test_metric"] is not None for r in results) else "oof_metric"
    for i, name in enumerate(names):  # points, not bars from zero: the differences are a few thousandths
        seeds = [r[metric] for r in results if r["head"] == name]
        left.scatter(seeds, [i] * len(seeds), color="black", s=12, zorder=3)
        left.plot([np.mean(seeds)] * 2, [i - 0.3, i + 0.3], color="tab:blue", linewidth=2)
    left.set_yticks(range(len(names)), names)
    left.invert_yaxis()
    left.set(xlabel=metric.replace("_", " "), title="per head (dots: seeds; bar: mean)")
    labels = [f"{c['head']} - {c['reference']}" for c in comparisons]
    means = np.array([c["image_mean"] for c in comparisons])
    errors = np.array([[c["image_mean"] - c["image_ci_low"] for c in comparisons], [c["image_ci_high"] - c["image_mean"] for c in comparisons]])
    right.errorbar(means, range(len(labels)), xerr=errors if len(labels) else None, fmt="o", capsize=4)
    right.axvline(0, color="grey", linestyle=":")
    right.set_yticks(range(len(labels)), labels)
    right.invert_yaxis()  # top to bottom in the table's order
    right.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
    right.set(xlabel="mean per-image score difference, 95% bootstrap CI", title="paired comparisons")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=90)
    plt.close(figure)


def stamp(run_dir: Path) -> dict | None:
    """The code version a run was stamped with when it finished (None: not finished yet)."""
    path = RunDir(run_dir).provenance
    return json.loads(path.read_text())["version"] if path.exists() else None


def check_test_folders(data_dir: Path, also_test: dict[str, Path]) -> None:
    """Each extra test folder holds the training set of `data_dir` (else its scores would not be of the same
    trained runs), prepared for inference."""
    for name, folder in also_test.items():
        why = training_set_difference(Layout(data_dir), Layout(folder))
        if why:
            raise PipelineError(f"ablate --also-test {name}={folder}: not the same training set as {data_dir} ({why}); carve it with the same "
                                "holdout --seed/--test/--train as the data folder and change only its test images (--test-gain, --test-gamma)")
        prep(Path(folder))


def ablate(config: str, heads: list[str], seeds: int, folds, overrides: list[str], out_dir: Path, data_dir: str | None = None,
           allow_mixed_code: bool = False, test_time: list[str] = (), also_test: dict[str, Path] | None = None,
           runs_dir: Path | None = None, hash_ids: bool = False) -> dict:
    unknown = [h for h in heads if h not in HEADS]
    if unknown:
        raise PipelineError(f"ablate: unknown head '{unknown[0]}'; choose from {', '.join(HEADS)}")
    test_time, also_test = list(test_time), dict(also_test or {})
    unknown = [t for t in test_time if t not in TEST_TIME]
    if unknown:
        raise PipelineError(f"ablate: unknown --test-time '{unknown[0]}'; choose from {', '.join(TEST_TIME)}")
    if seeds < 1:
        raise PipelineError("ablate: --seeds must be at least 1")
    if data_dir:
        overrides = overrides + [f"data.data_dir={data_dir}"]
    if also_test:
        check_test_folders(Path(load_config(config, overrides).data.data_dir), also_test)
    out_dir, runs_dir = Path(out_dir), Path(runs_dir or out_dir)
    readings, derived = trained_heads(heads), derived_variants(test_time, also_test)
    names = {head: [variant_name(h, a, t) for h in readings[head] for a, t in [(None, None), *derived]] for head in readings}
    grid = [(name, seed) for seed in range(seeds) for head in readings for name in names[head]]
    kept, table = recorded(out_dir)
    results = {key: kept[key] for key in grid if key in kept}
    per_image = {(h, int(s)): part for (h, s), part in table.groupby(["head", "seed"])} if len(table) else {}
    per_image = {key: part for key, part in per_image.items() if key in results}
    done = {(head, seed) for head in readings for seed in range(seeds) if all((n, seed) in results for n in names[head])}
    variants = {head: Variant(config, tuple(overrides) + tuple(HEADS[head])) for head in readings}
    folds_text = "all" if folds is None else ",".join(map(str, folds))
    command = f"python -m pipeline ablate --config {config} --heads {','.join(heads)} --seeds {seeds} --fold {folds_text}" + "".join(f" --set {o}" for o in overrides if not o.startswith("data.data_dir"))
    command += (f" --test-time {','.join(test_time)}" if test_time else "") + "".join(f" --also-test {n}=DIR" for n in also_test)
    command += " --hash-ids" if hash_ids else ""
    pairs = test_time_pairs(heads, test_time, [None, *also_test]) if (test_time or also_test) else comparison_pairs(heads)

    def keep(name: str, seed: int, outcome: Outcome) -> None:
        if (name, seed) in results:
            return
        version = stamp(runs_dir / f"{name}-seed{seed}") or code_version()
        results[(name, seed)], per_image[(name, seed)] = record(config, name, seed, outcome, version, hash_ids)
        print(f"ablate: {name} seed {seed}: OOF {results[(name, seed)]['oof_metric']:.4f} test {results[(name, seed)]['test_metric']}", flush=True)

    outputs = None
    if done:
        print(f"ablate: {len(done)} trained runs already recorded in {out_dir / 'runs.csv'}, kept", flush=True)
    for head, seed, outcome in paired_runs(variants, list(range(seeds)), runs_dir, folds, done=done):
        for reading in readings[head]:
            read = outcome if reading == head else score_derived(outcome, reading, seed, READ_AS[reading][1], None, None, runs_dir, folds)
            keep(reading, seed, read)
            for adapt, test_set in derived:
                name = variant_name(reading, adapt, test_set)
                if (name, seed) not in results:
                    keep(name, seed, score_derived(read, name, seed, (), adapt, also_test.get(test_set), runs_dir, folds))
        outputs = write_outputs(out_dir, config, grid, results, per_image, pairs, command, allow_mixed_code)
    return outputs or write_outputs(out_dir, config, grid, results, per_image, pairs, command, allow_mixed_code)


def write_outputs(out_dir: Path, config: str, grid: list[tuple[str, int]], results: dict, per_image: dict, pairs: list[tuple[str, str]],
                  command: str, allow_mixed_code: bool) -> dict:
    """The study's tables, figure and markdown from the runs recorded so far, in grid order; a pair is compared
    once both of its heads have a run."""
    ordered = [results[key] for key in grid if key in results]
    versions = sorted({r["code"] for r in ordered})
    if len(versions) > 1 and not allow_mixed_code:
        raise PipelineError(f"ablate: the runs in {out_dir} were made with different code (source hashes {', '.join(versions)}); rerun them "
                            "in a new --out folder, or pass --allow-mixed-code to tabulate them anyway")
    commits = sorted({f"{r['commit']} (source {r['code']})" for r in ordered})
    present = {r["head"] for r in ordered}
    table = pd.concat([per_image[key] for key in grid if key in results], ignore_index=True)
    comparisons = compare(ordered, table, [(h, r) for h, r in pairs if h in present and r in present])
    outputs = {"csv": out_dir / "ablation.csv", "comparisons": out_dir / "comparisons.csv", "markdown": out_dir / "ablation.md",
               "plot": out_dir / "ablation.png", "runs": out_dir / "runs.csv", "images": out_dir / "image_scores.csv"}
    rows = summarise(ordered)
    write_table(outputs["runs"], pd.DataFrame(ordered))
    write_table(outputs["images"], table)
    write_table(outputs["csv"], pd.DataFrame(rows))
    write_table(outputs["comparisons"], pd.DataFrame(comparisons) if comparisons else pd.DataFrame(columns=["head", "reference"]))
    write_text(outputs["markdown"], to_markdown(rows, comparisons, command, commits, ordered[0]["scored_on"]))
    plot(comparisons, rows, ordered, outputs["plot"])
    return outputs


def gpu_command(heads: list[str], seeds: int) -> str:
    """The command that answers the question on real data with the GPU recipe."""
    return f"./run.sh ablate --config gpu-full --heads {','.join(heads)} --seeds {max(seeds, 5)} --fold 0"
