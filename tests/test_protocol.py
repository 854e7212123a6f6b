"""The protocol runner on the real VIPeR images: one short baseline run end to end
(train a few iterations from the ImageNet file, evaluate, results file), reuse, resume,
and the tables; the statistics of the tables on hand-made records."""
import dataclasses
import json
import os

import pytest

from reid_ext.protocol import report
from reid_ext.protocol.runner import Protocol, Variant, config_hash, plan, run_protocol

from conftest import ROOT
from test_viper import VIPER, needs_viper

SHORT = ("SOLVER.MAX_EPOCH", "1", "TEST.EVAL_PERIOD", "1", "SOLVER.WARMUP_ITERS", "5",
         "SOLVER.CHECKPOINT_PERIOD", "1", "DATALOADER.NUM_WORKERS", "0", "MODEL.DEVICE", "cpu")


def _protocol(tmp_path, opts=SHORT):
    v = Variant("base", "Baseline", "projects/VIPeR/configs/baseline.yml", opts=tuple(opts),
                splits=(0,))
    return Protocol("viper-test", [v], str(tmp_path / "results"), str(tmp_path / "logs"),
                    lambda s: ["DATASETS.VIPER.SPLIT", str(s), "SEED", str(s)], "VIPeRSplit")


@needs_viper
def test_baseline_trains_evaluates_and_is_reused_and_resumed(tmp_path):
    proto = _protocol(tmp_path)
    todo, reused = plan(proto, proto.variants)
    assert [j.key for j in todo] == ["base/split0"] and not reused
    datasets = os.path.dirname(VIPER)
    assert run_protocol(proto, todo, datasets, jobs=1, threads=2) == []
    path = tmp_path / "results" / "base" / "split0.json"
    rec = json.loads(path.read_text())
    m = rec["metrics"]
    assert set(report.METRICS) <= set(m) and rec["split"] == 0
    assert m["Rank-1"] <= m["Rank-5"] <= m["Rank-10"] <= m["Rank-20"] <= 100
    assert m["Rank-20"] > 15  # chance is 20/316 = 6.3: ImageNet features + 19 iterations
    assert rec["cpu_seconds"] > 0 and rec["config_hash"] == config_hash(proto, proto.variants[0], 0)
    assert rec["config_diff"]["SOLVER.MAX_EPOCH"] == 1 and not rec["resumed"]

    assert plan(proto, proto.variants) == ([], [str(path)])  # a finished run is reused
    other = _protocol(tmp_path, SHORT + ("SOLVER.BASE_LR", "0.001"))
    assert len(plan(other, other.variants)[0]) == 1  # another config is not

    # interrupted after its last checkpoint: the run resumes instead of starting again
    path.unlink()
    todo, _ = plan(proto, proto.variants)
    assert run_protocol(proto, todo, datasets, jobs=1, threads=2) == []
    again = json.loads(path.read_text())
    assert again["resumed"] and again["metrics"]["Rank-1"] == pytest.approx(m["Rank-1"])

    found, stale = report.collect(proto)
    lines = report.summary_rows(proto, found, [("Baseline", "base", "")])
    assert lines[0][1] == "1 (0)" and lines[0][2] == f"{m['Rank-1']:.1f}"


def _rec(split, **metrics):
    return {"split": split, "metrics": metrics, "variants": {}, "cpu_seconds": 60.0}


def test_tables_mean_std_and_paired_differences():
    found = {"base": {s: _rec(s, **{"Rank-1": r, "Rank-20": 70.0, "mAP": r + 10})
                      for s, r in enumerate([20.0, 22.0, 24.0])},
             "new": {s: _rec(s, **{"Rank-1": r, "Rank-20": 71.0, "mAP": r + 10})
                     for s, r in enumerate([21.0, 25.0])}}
    rows = report.summary_rows(None, found, [("B", "base", ""), ("N", "new", "")])
    assert rows[0][:3] == ["B", "3 (0–2)", "22.0 ± 2.0"] and rows[0][-1] == "1.0"
    assert rows[1][:3] == ["N", "2 (0, 1)", "23.0 ± 2.8"]
    paired = report.paired_rows(None, found, [("N − B", ("new", ""), ("base", ""))])
    # differences on the common splits 0 and 1: +1, +3
    assert paired[0] == ["N − B", "2", "+2.0 ± 1.4 (2/2 better)", "+1.0 ± 0.0 (2/2 better)",
                         "+2.0 ± 1.4 (2/2 better)"]
    splits, lines = report.per_split_rows(found, [("N", "new", "")])
    assert splits == [0, 1, 2] and lines == [["N", "21.0", "25.0", ""]]


def test_replace_block_keeps_the_rest(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Title\n\ntext\n")
    report.replace_block(str(page), "t", "one")
    report.replace_block(str(page), "t", "two")
    text = page.read_text()
    assert text.startswith("# Title\n\ntext\n") and "two" in text and "one" not in text
    assert text.count("<!-- t:start -->") == 1


def _dep_protocol(tmp_path):
    base = Variant("base", "Baseline", "projects/VIPeR/configs/baseline.yml", opts=SHORT,
                   splits=(0,))
    rerank = Variant("rerank", "Baseline re-ranked", "projects/VIPeR/configs/baseline.yml",
                     opts=("MODEL.WEIGHTS", "{weights}", "TEST.LBR.ENABLED", "True") + SHORT,
                     splits=(0,), weights_from="base", eval_only=True)
    return Protocol("viper-test", [base, rerank], str(tmp_path / "results"),
                    str(tmp_path / "logs"),
                    lambda s: ["DATASETS.VIPER.SPLIT", str(s), "SEED", str(s)], "VIPeRSplit")


def test_a_run_on_another_runs_checkpoint_plans_and_hashes_it(tmp_path):
    from reid_ext.protocol.runner import run_opts
    proto = _dep_protocol(tmp_path)
    base, rerank = proto.variants
    opts = run_opts(proto, rerank, 0)
    assert opts[opts.index("MODEL.WEIGHTS") + 1] == str(tmp_path / "logs" / "base" / "split0" /
                                                         "model_final.pth")
    # asked alone, the eval-only run brings the training it needs, first
    todo, _ = plan(proto, [rerank])
    assert [(j.key, j.needs) for j in todo] == [("base/split0", ""), ("rerank/split0", "base/split0")]
    todo, _ = plan(proto, [rerank, base])  # planned once, in dependency order
    assert [j.key for j in todo] == ["base/split0", "rerank/split0"]
    # the dependant's hash follows its source's config
    other = Protocol("viper-test", [dataclasses.replace(base, opts=SHORT + ("SOLVER.BASE_LR", "0.001")),
                                    rerank], proto.results_dir, proto.logs_dir, proto.split_opts,
                     "VIPeRSplit")
    assert config_hash(other, rerank, 0) != config_hash(proto, rerank, 0)


@needs_viper
def test_eval_only_run_on_the_baseline_checkpoint(tmp_path):
    proto = _dep_protocol(tmp_path)
    todo, _ = plan(proto, [proto.variants[1]])
    assert run_protocol(proto, todo, os.path.dirname(VIPER), jobs=2, threads=1) == []
    base = json.loads((tmp_path / "results" / "base" / "split0.json").read_text())
    rerank = json.loads((tmp_path / "results" / "rerank" / "split0.json").read_text())
    assert rerank["metrics"]["mAP"] == pytest.approx(base["metrics"]["mAP"])  # same checkpoint
    assert "LBR" in rerank["variants"] and "LBR" not in base["variants"]
    # the checkpoint is on disk now: planning the eval-only run again needs no training
    (tmp_path / "results" / "rerank" / "split0.json").unlink()
    assert [j.key for j in plan(proto, [proto.variants[1]])[0]] == ["rerank/split0"]


def test_parameters_chosen_on_validation_are_read_on_test():
    def rec(split, **grid):
        return {"split": split, "metrics": {"mAP": 1.0}, "cpu_seconds": 1.0,
                "variants": {k.replace("_", " "): {"mAP": v, "Rank-1": v} for k, v in grid.items()}}
    found = {"val": {0: rec(0, LBR_a=5.0, LBR_b=7.0, other=99.0), 1: rec(1, LBR_a=4.0, LBR_b=4.0)},
             "test": {0: rec(0, LBR_a=50.0, LBR_b=30.0), 1: rec(1, LBR_a=20.0, LBR_b=40.0),
                      2: rec(2, LBR_a=1.0)}}
    out = report.select_on_validation(found, "test", "val", "LBR")
    assert sorted(out) == [0, 1]  # split 2 has no validation run
    assert out[0]["chosen"] == "LBR b" and out[0]["metrics"]["mAP"] == 30.0  # not the test's best
    assert out[1]["chosen"] == "LBR a" and out[1]["metrics"]["mAP"] == 20.0  # ties: grid order
