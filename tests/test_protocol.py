"""The protocol runner on the real VIPeR images: one short baseline run end to end
(train a few iterations from the ImageNet file, evaluate, results file), reuse, resume,
and the tables; the statistics of the tables on hand-made records."""
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
