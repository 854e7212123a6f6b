"""reid-reproduce: the published rows, the dry run, and a run on present/missing data."""
import csv
import os

import pytest

from reid_ext.reproduce import ROWS, UNPUBLISHED, Row
from reid_ext.reproduce.__main__ import main
from reid_ext.reproduce.harness import build_check, load_config, lookup, resolve, select

from test_training import TINY


def test_every_published_row_is_listed():
    by_paper = {}
    for r in ROWS:
        by_paper.setdefault(r.paper, []).append(r)
    assert {p: len(v) for p, v in by_paper.items()} == {"AdaSP": 18, "SFT": 10, "NFormer": 6}
    value = {(r.paper, r.dataset, r.variant, r.metric): r.published for r in ROWS}
    # spot checks against ../shared/specs (AdaSP README table, SFT paper, NFormer listing)
    assert value[("AdaSP", "MSMT17", "SP-H", "mAP")] == 61.0
    assert value[("AdaSP", "VehicleID-medium", "SP-LH", "Rank-1")] == 81.9
    assert value[("AdaSP", "VeRi", "AdaSP", "mAP")] == 77.6
    assert value[("SFT", "Market1501", "SFT", "mAP")] == 82.7
    assert value[("SFT", "DukeMTMC", "SFT", "Rank-1")] == 86.3
    assert value[("SFT", "Market1501", "SFT+LBR (repro)", "mAP")] == 87.28
    assert value[("NFormer", "MSMT17", "NFormer", "Rank-1")] == 77.3
    assert value[("NFormer", "Market1501", "NFormer", "mAP")] == 91.1
    assert len({r.id for r in ROWS}) == len(ROWS)
    assert set(UNPUBLISHED) == {"C2F", "SSR"}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_row_points_at_its_config_and_result(row):
    assert os.path.exists(resolve(row.config))
    cfg = load_config(row.config)
    assert row.test_set in cfg.DATASETS.TESTS
    switch = {None: True, "LBR": cfg.TEST.LBR.ENABLED, "NFormer": cfg.TEST.NFORMER.ENABLED}
    assert switch[row.result_variant], f"{row.config} does not report {row.result_variant}"
    if row.paper == "AdaSP":
        assert cfg.MODEL.LOSSES.ADASP.TYPE == row.variant.lower()
    for req in row.requires:
        assert load_config(req).OUTPUT_DIR in cfg.MODEL.NFORMER.STAGE1_WEIGHTS


def test_select_by_id_number_paper_dataset():
    assert select(ROWS, ["1"]) == [ROWS[0]]
    assert select(ROWS, [ROWS[5].id]) == [ROWS[5]]
    assert {r.paper for r in select(ROWS, paper="nformer")} == {"NFormer"}
    assert all("Market" in r.dataset for r in select(ROWS, paper="SFT", dataset="market"))
    with pytest.raises(KeyError, match="unknown row"):
        select(ROWS, ["no/such/row"])


def test_lookup_plain_and_variant():
    row = Row("SFT", "Market1501", "SFT+LBR", "mAP", 87.28, "x.yml", "Market1501", "LBR")
    res = {"Market1501": {"mAP": 80.0, "LBR": {"mAP": 85.5}}}
    assert lookup(res, row) == 85.5
    assert lookup(res, Row("SFT", "Market1501", "SFT", "mAP", 1, "x.yml", "Market1501")) == 80.0
    assert lookup(res, Row("SFT", "Duke", "SFT", "mAP", 1, "x.yml", "DukeMTMC")) is None


def test_dry_run_prints_rows_and_builds(capsys):
    assert main(["--dry-run", "--paper", "SFT"]) == 0
    out = capsys.readouterr().out
    assert "| 1 | `sft/market1501/sft/rank-1` | SFT | Market1501 | SFT | Rank-1 | 93.4 |" in out
    assert out.count("ok (") >= 10 and "FAILED" not in out
    assert "projects/C2F/configs/veri_c2f.yml" in out  # unpublished papers' configs too
    assert "10 published rows" in out


def test_build_check_reports_a_broken_config(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("MODEL:\n  META_ARCHITECTURE: NoSuchArch\n")
    assert build_check(str(bad)).startswith("FAILED: KeyError")


def test_run_trains_present_rows_and_skips_missing(datasets_root, tmp_path):
    rows = (Row("Demo", "SynthPerson", "quickstart", "Rank-1", 50.0, "configs/quickstart.yml",
                "SynthPerson"),
            Row("Demo", "SynthPerson", "quickstart", "mAP", 40.0, "configs/quickstart.yml",
                "SynthPerson"),
            Row("SFT", "Market1501", "SFT", "mAP", 82.7, "projects/SFT/configs/market1501.yml",
                "Market1501"))
    out = tmp_path / "report"
    opts = TINY + ["SOLVER.MAX_EPOCH", "1", "TEST.EVAL_PERIOD", "1",
                   "OUTPUT_DIR", str(tmp_path / "run")]
    assert main(["--run", "--out", str(out), "--opts", *opts], rows=rows) == 0
    with open(out / "reproduce.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["status"] for r in table[:2]] == ["ok", "ok"]  # one training for both rows
    r1 = float(table[0]["ours"])
    assert 0 <= r1 <= 100 and float(table[0]["difference"]) == pytest.approx(r1 - 50.0, abs=0.01)
    assert table[2]["status"].startswith("skipped: dataset Market1501 not found")
    assert table[2]["ours"] == ""
    assert (tmp_path / "run" / "results.json").exists()
    md = (out / "reproduce.md").read_text()
    assert "| Demo | SynthPerson | quickstart | Rank-1 | 50 |" in md
    # a finished row is reused, not retrained
    mtime = os.path.getmtime(tmp_path / "run" / "results.json")
    assert main(["--run", "1", "--out", str(out), "--opts", *opts], rows=rows) == 0
    assert os.path.getmtime(tmp_path / "run" / "results.json") == mtime
