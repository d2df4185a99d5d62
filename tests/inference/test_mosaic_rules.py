"""Mosaic post-processing rules: what each does by hand, measured on OOF, applied by submit only when it helps."""

import numpy as np

from pipeline.inference.mosaic_rules import apply_rule, is_vertical, measure_rules, rule_mask


def _vertical(columns, size=6):
    mask = np.zeros((size, size), bool)
    mask[:, columns] = True
    return mask


def test_rule_masks_by_hand():
    full, empty = np.ones((6, 6), bool), np.zeros((6, 6), bool)
    assert rule_mask("below_full", full).all() and rule_mask("below_full", _vertical([0, 1])) is None
    assert is_vertical(_vertical([2, 3])) and not is_vertical(full) and not is_vertical(empty)
    bent = _vertical([2, 3])
    bent[0, 4] = True
    assert not is_vertical(bent)
    np.testing.assert_array_equal(rule_mask("continue_vertical", _vertical([2, 3])), _vertical([2, 3]))
    top_only = np.zeros((6, 6), bool)
    top_only[:, 1] = True
    top_only[:3, 2] = True  # not vertical: the rule does not fire
    assert rule_mask("continue_vertical", top_only) is None


def test_apply_rule_uses_the_tile_above_and_leaves_constant_tiles_alone():
    ids = ["a", "b", "c"]
    masks = np.zeros((3, 6, 6), bool)
    above = {"a": "t1", "b": "t2", "c": "t1"}
    known = {"t1": np.ones((6, 6), bool), "t2": _vertical([0])}
    out, changed = apply_rule("below_full", ids, masks, np.array([False, False, True]), above, known)
    assert changed == 1 and out[0].all() and not out[1].any() and not out[2].any()
    out, changed = apply_rule("continue_vertical", ids, masks, np.zeros(3, bool), above, known)
    assert changed == 1 and np.array_equal(out[1], _vertical([0]))
    assert not masks.any()  # the input is not changed in place


def test_measure_rules_applies_only_a_rule_that_raises_the_oof_score():
    ids = ["a", "b"]
    truth = np.stack([np.ones((6, 6), bool), np.zeros((6, 6), bool)])
    predicted = np.zeros((2, 6, 6), bool)
    above = {"a": "t1", "b": "t2"}
    known = {"t1": np.ones((6, 6), bool), "t2": _vertical([1])}
    result = measure_rules(ids, predicted, truth, np.zeros(2, bool), above, known)
    # below_full fills a (truth full: 0 -> 1): +0.5 over two images; continue_vertical paints b (truth empty: 1 -> 0)
    assert result["below_full"] == {"oof_images_changed": 1, "oof_gain": 0.5, "applied": True}
    assert result["continue_vertical"] == {"oof_images_changed": 1, "oof_gain": -0.5, "applied": False}


def _finished_run(workdir, rules: dict):
    """A run without training whose test probabilities are 0.97 on test tile 0 and 0.02 elsewhere, and a mosaic
    that puts test tile 1 directly below test tile 0."""
    import pandas as pd

    from pipeline.config import load_config, save_config
    from pipeline.data.prep import load_test_cache
    from pipeline.fileio import save_npy, write_json, write_table

    run = workdir / "runs" / "fake"
    save_config(load_config("smoke", ["data.data_dir=data"]), run / "config.yaml")
    test = load_test_cache(workdir / "data")
    assert not test.is_constant[:2].any()
    probs = np.full((len(test.ids), 101, 101), 0.02, np.float16)
    probs[0] = 0.97
    save_npy(run / "test_probs.npy", probs)
    write_table(run / "test_ids.csv", pd.DataFrame({"id": test.ids}))
    write_json(run / "postprocess.json", {"best_threshold": 0.5, "best_min_area": 0, "best_empty_threshold": None, "mosaic_rules": rules})
    rows = [(test.ids[0], "test", 0, 0, 0, 2), (test.ids[1], "test", 0, 0, 1, 2)]
    rows += [(i, "test", 1 + n, 0, 0, 1) for n, i in enumerate(test.ids[2:])]
    write_table(workdir / "data" / "mosaic.csv", pd.DataFrame(rows, columns=["id", "split", "mosaic", "x", "y", "size"]))
    return test.ids


def test_submit_applies_a_mosaic_rule_only_when_infer_marked_it_applied(workdir):
    from pipeline.competition.rle import decode
    from pipeline.fileio import read_table
    from pipeline.inference.submit import submit

    ids = _finished_run(workdir, {"below_full": {"applied": False}, "continue_vertical": {"applied": False}})
    summary = submit(workdir / "runs" / "fake", workdir / "subs")
    table = read_table(summary["path"], ("id", "rle_mask")).set_index("id")
    assert decode(table.loc[ids[0], "rle_mask"], (101, 101)).all() and table.loc[ids[1], "rle_mask"] == ""
    ids = _finished_run(workdir, {"below_full": {"applied": True}, "continue_vertical": {"applied": False}})
    summary = submit(workdir / "runs" / "fake", workdir / "subs")
    table = read_table(summary["path"], ("id", "rle_mask")).set_index("id")
    assert decode(table.loc[ids[1], "rle_mask"], (101, 101)).all()  # below a full tile: full
    assert summary["mosaic_rules"] == ["below_full"]
    assert (table.drop(index=[ids[0], ids[1]])["rle_mask"] == "").all()
