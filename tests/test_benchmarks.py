"""The benchmarks check their own premises: an empty batch or a non-finite loss stops them loudly."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_heads  # noqa: E402
from common import interleaved, paired_overhead, real_batch  # noqa: E402

from pipeline.config import load_config  # noqa: E402


def test_a_step_refuses_an_empty_batch_and_a_nan_loss():
    cfg = load_config("smoke", ["model.head.rule=hebb"])
    stepper = bench_heads.Stepper(cfg)
    images, masks = real_batch(cfg, 4)
    assert images.shape == (4, 1, 64, 64) and 0 < float(masks.mean()) < 1  # real images, some salt
    stepper.step(images, masks)
    with pytest.raises(RuntimeError, match="empty batch"):
        stepper.step(images[16:17], masks[16:17])  # the slice the old batch-1 loop ran past the end into
    with pytest.raises(RuntimeError, match="not finite"):
        stepper.step(images, masks * float("nan"))


def test_interleaved_rounds_give_median_min_max_per_side():
    calls = []
    timings = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3, warmup=1, shuffle=False)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up, then A B, A B, A B
    calls.clear()
    interleaved({name: (lambda n=name: calls.append(n)) for name in "abcd"}, rounds=6, warmup=0)
    rounds = [calls[i : i + 4] for i in range(0, 24, 4)]
    assert all(sorted(r) == list("abcd") for r in rounds)  # every side once per round
    assert len({tuple(r) for r in rounds}) > 1  # in changing orders
    for timing in timings.values():
        assert timing["rounds"] == 3 and timing["min_s"] <= timing["median_s"] <= timing["max_s"]
        assert len(timing["samples_s"]) == 3 and timing["median_s"] in timing["samples_s"]


def test_paired_overhead_is_the_median_of_per_round_ratios():
    # the machine slows down over the rounds; the head costs 10% in rounds 0 and 2 and nothing in round 1
    timings = {"none": {"samples_s": [1.0, 2.0, 4.0]}, "hebb": {"samples_s": [1.1, 2.0, 4.4]}}
    overhead = paired_overhead(timings, "none")
    assert overhead["hebb"]["median"] == pytest.approx(0.10)  # the ratio of medians would say 0% (2.0 / 2.0)
    assert overhead["hebb"]["min"] == pytest.approx(0.0) and overhead["hebb"]["max"] == pytest.approx(0.10)
    assert overhead["none"] == {"median": 0.0, "q1": 0.0, "q3": 0.0, "min": 0.0, "max": 0.0}


def test_full_size_folder_repeats_the_labelled_images_under_new_ids(tiny_data_template, tmp_path):
    import full_size
    import pandas as pd

    from pipeline.data.layout import Layout
    from pipeline.data.prep import prep

    source = tiny_data_template / "data"  # 90 labelled images
    out = full_size.build(source, tmp_path / "full", n_train=200, n_test=250)
    train = pd.read_csv(out / "train.csv", dtype=str, keep_default_na=False)
    test_ids = pd.read_csv(out / "sample_submission.csv", dtype=str)["id"]
    assert len(train) == 200 and train["id"].is_unique and len(test_ids) == 250 and test_ids.is_unique
    assert not set(train["id"]) & set(test_ids)  # no test id is also a train id
    assert train["id"].str.fullmatch("[0-9a-f]{10}").all()  # the competition's id form
    labels = pd.read_csv(source / "train.csv", dtype=str, keep_default_na=False)
    first = labels.sort_values("id").iloc[0]
    repeat = full_size.repeat_id(first["id"], 2)  # the 181st train image is the third copy of the first source id
    assert train.set_index("id").loc[repeat, "rle_mask"] == first["rle_mask"]
    src, dst = Layout(source), Layout(out)
    assert dst.train_mask(repeat).read_bytes() == src.train_mask(first["id"]).read_bytes()
    manifest = prep(out)  # a valid competition folder: prep reads every image and mask
    assert (manifest["train_images"], manifest["test_images"]) == (200, 250)


def test_ensemble_ceiling_averages_probabilities_in_the_carves_order(tmp_path):
    import ensemble_ceiling
    import numpy as np

    from pipeline.competition.rle import encode
    from pipeline.errors import PipelineError

    truth = np.zeros((2, 101, 101), bool)
    truth[0, 20:70, 20:70] = True  # image "a" has salt, image "b" none
    (tmp_path / "carve").mkdir()
    (tmp_path / "carve" / "test_truth.csv").write_text(f"id,rle_mask\na,{encode(truth[0])}\nb,\n")
    confident = np.zeros((2, 101, 101), np.float32)
    confident[0, 20:70, 20:70] = 0.9  # right on "a"
    confident[1, :10, :10] = 0.7  # a false mask on the empty "b": scores 0
    timid = np.full((2, 101, 101), 0.2, np.float32)  # predicts both empty: wrong on "a", right on "b"
    timid[1] = 0.0
    for name, probs in {"confident": confident, "timid": timid}.items():
        run = tmp_path / name
        run.mkdir()
        (run / "test_ids.csv").write_text("id\nb\na\n")  # the runs list the images in another order
        np.save(run / "test_probs.npy", probs[::-1])
    ids = ["a", "b"]
    probs = {name: ensemble_ceiling.run_probs(tmp_path / name, ids) for name in ("confident", "timid")}
    result = ensemble_ceiling.ceiling(truth, probs)
    assert result["alone"] == {"confident": 0.5, "timid": 0.5}
    # the mean is 0.55 on "a"'s salt and 0.35 on "b"'s false patch: both images right
    assert result["averaged"]["2"]["mean_over_subsets"] == 1.0
    rows = {row["coverage_class"]: row for row in result["by_coverage_class"]["rows"]}
    assert rows[0]["score"] == 0.0 and rows[3]["score"] == 1.0 and rows["all"]["images"] == 2
    with pytest.raises(PipelineError, match="other test images"):
        ensemble_ceiling.run_probs(tmp_path / "confident", ["a", "c"])


def test_score_losses_splits_the_lost_score_by_coverage_and_counts_the_empty_calls():
    import numpy as np
    import score_losses

    truth = np.zeros((4, 101, 101), bool)
    truth[0, :50, :] = True  # about half salt (class 5), found exactly
    truth[1, :5, :5] = True  # 25 px (class 1), predicted empty: loses 1 of 4
    predicted = truth.copy()
    predicted[1] = False
    predicted[3, :10, :10] = True  # a false mask on an empty image: loses 1 of 4
    result = score_losses.losses(truth, predicted)
    assert result["score"] == 0.5 and result["truly_empty"] == 0.5
    assert result["predicted_empty"] == 0.5 and result["non_empty_predicted_empty"] == 0.5 and result["empty_predicted_salt"] == 0.5
    assert result["score_with_every_empty_call_right"] == 0.75  # image 1 stays lost: calling it non-empty gives no mask
    rows = {row["coverage_class"]: row for row in result["by_coverage_class"]}
    assert rows[0] == {"coverage_class": 0, "images": 2, "score": 0.5, "lost": 0.25, "predicted_empty": 0.5}
    assert rows[1]["lost"] == 0.25 and rows[1]["predicted_empty"] == 1.0 and rows[5]["lost"] == 0.0


def test_cpu_label_names_the_model_and_its_widest_vector_extension():
    from common import cpu_extensions, cpu_label

    xeon = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor @ 2.10GHz, rev 1\nflags\t\t: fpu sse2 avx2 avx512f avx512bw amx_tile\n"
    epyc = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n"
    assert cpu_label(xeon) == "Intel Xeon Processor @ 2.10GHz rev 1 AVX-512"
    assert cpu_extensions(xeon) == ["amx_tile", "avx2", "avx512bw", "avx512f"]
    assert cpu_label(epyc) == "AMD EPYC AVX2"  # the label of the fresh-clone.csv rows measured on that machine
    assert cpu_label("flags\t\t: fpu sse2\n") == "unknown no-AVX2"


def test_train_speed_times_real_steps_of_the_preset():
    import bench_train_speed

    result = bench_train_speed.run("smoke", steps=3, warmup=1)
    assert result["timed_steps"] == 3 and result["step_s_median"] > 0
    assert result["img_per_s"] == pytest.approx(result["batch_size"] / result["step_s_median"])
    assert result["preset_steps"] is None and result["preset_training_minutes"] is None  # smoke counts epochs, not steps


def test_paired_train_speed_times_each_side_with_its_own_settings_in_turn():
    import bench_train_speed

    result = bench_train_speed.run_paired("smoke", steps=3, warmup=1, shared=("train.batch_size=8",), versus=("train.batch_size=4",))
    assert result["batch_size"] == {"a": 8, "b": 4}  # side b is the shared settings plus --vs, side a without
    assert result["timed_steps"] == 3 and all(seconds > 0 for seconds in result["step_s_median"].values())
    ratio = result["b_over_a"]
    assert ratio["min"] <= ratio["q1"] <= ratio["median"] <= ratio["q3"] <= ratio["max"] and ratio["min"] > 0
    assert result["b_steps_in_a_budget_minutes"] is None  # smoke counts epochs, not steps


def test_the_prepared_gpu_check_runs_every_section_in_dry_mode(tmp_path, monkeypatch):
    """benchmarks/gpu_check.py is run for the first time on a lent GPU, with minutes to spare: its dry mode runs
    every section on the CPU here, so it cannot rot before then."""
    import json

    import gpu_check

    monkeypatch.chdir(tmp_path)
    report = gpu_check.run(tmp_path / "check", cpu=True)
    sections = report["sections"]
    assert list(sections) == list(gpu_check.SECTIONS)
    assert not {name: s["error"] for name, s in sections.items() if "error" in s}
    assert json.loads((tmp_path / "check" / "gpu-check.json").read_text())["sections"].keys() == sections.keys()
    assert sections["correctness"]["fused_vs_plain_ok"] and sections["correctness"]["mixed_ok"] and sections["correctness"]["sync_free_steps"]
    assert sections["compile"]["grad_ok"] and sections["inference"]["finite"]
    assert all(row["losses_finite"] for row in sections["step"]["rows"])
    assert sections["feed"]["device"]["batches"] == sections["feed"]["loader"]["batches"] == 6
    assert abs(sections["feed"]["device"]["mean_input"] - sections["feed"]["loader"]["mean_input"]) < 0.5  # the same images, normalised alike
    assert all(job["rc"] == 0 for job in sections["cli"]["jobs"]), sections["cli"]["jobs"]
    assert "skipped" in sections["multi_gpu"]  # no second GPU here


def test_the_plasticity_study_scores_every_run_in_distribution_shifted_adapted_and_without_tta(tiny_data_template, tmp_path):
    import pandas as pd
    import plasticity_study

    from pipeline.study.ablate import hashed_id

    outputs = plasticity_study.study(tiny_data_template / "data", "random", 0, 1, "none,frozen", tmp_path / "work", 0.5, tmp_path / "out",
                                     config="smoke", sizes=(60, 30), overrides=("train.epochs=1",))
    runs = pd.read_csv(outputs["runs"])
    assert runs["head"].tolist() == [f"{h}{v}" for h in ("none", "frozen")
                                     for v in ("", "+adabn", "+notta", "@gain05", "+adabn@gain05", "+notta@gain05")]
    images = pd.read_csv(outputs["images"], dtype={"id": str})
    truth = pd.read_csv(tmp_path / "work" / "random0-smoke-data" / "test_truth.csv", dtype={"id": str})
    assert set(images["id"]) == set(truth["id"].map(hashed_id))  # the carve's 30 test images, ids hashed
    gain = tmp_path / "work" / "random0-smoke-gain05-data"
    assert (gain / "train.csv").read_text() == (tmp_path / "work" / "random0-smoke-data" / "train.csv").read_text()


def test_writing_a_result_re_renders_the_tables_that_read_it(tmp_path, monkeypatch):
    import common
    import readme_tables

    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    document = tmp_path / "README.md"
    document.write_text("# x\n\n<!-- table: full-size -->\n| stale |\n<!-- /table -->\n")
    monkeypatch.setattr(common, "RESULTS", results)
    monkeypatch.setattr(readme_tables, "ROOT", tmp_path)
    monkeypatch.setattr(readme_tables, "DOCUMENTS", [document])
    common.write_result("full-size-cpu", {"train_images": 4000, "test_images": 18000, "wall_s": 1263.0, "commit": "abc123",
                                          "stage_seconds": {"prep": 15.0, "train": 780.0, "infer": 456.0, "total": 1251.0}})
    assert "| 4,000 train + 18,000 test images | 21.1 min | infer 7.6 min, prep 0.2 min, train 13.0 min | abc123 |" in document.read_text()
    assert "stale" not in document.read_text()
    assert readme_tables.check_all() == []
