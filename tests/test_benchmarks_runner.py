"""The benchmark page runner (``python -m reid_ext.benchmarks``) at test sizes: the page
it writes (machine header, one row per figure with its command and met / not met), a
failing benchmark reported in its row without stopping the others, and a row's command
reproducing the figure through the script's ``main`` (which returns a dict)."""
import dataclasses
import os
import re
import shlex

from reid_ext.benchmarks import hashing, report

from conftest import ROOT


def _rows(text, method):
    return [ln for ln in text.splitlines() if ln.startswith(f"| {method} |")]


def _cells(row):
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]


def test_runner_page_rows_commands_and_failures(tmp_path, datasets_root, monkeypatch):
    # nformer is made to fail (an argument its script does not know); it runs between others
    bad = dataclasses.replace(report.BENCHMARKS["nformer"], sizes={"tiny": ["--no-such-flag"]})
    monkeypatch.setitem(report.BENCHMARKS, "nformer", bad)
    out = tmp_path / "page" / "BENCHMARKS.md"
    out.parent.mkdir()
    viper = "<!-- viper:start -->\n## VIPeR\n\n| a | b |\n|---|---|\n| 1 | 2 |\n<!-- viper:end -->"
    out.write_text(f"# old page\n\n| old | row |\n\n{viper}\n")  # a block another tool owns
    readme = out.parent / "projects" / "SSR" / "README.md"
    readme.parent.mkdir(parents=True)
    readme.write_text("# SSR\n\n<!-- bench:hashing:start -->\nold figures\n<!-- bench:hashing:end -->\n\ntail\n")
    log = []
    outcomes = report.main(["--tiny", "--only", "adasp", "nformer", "hashing", "trainer_overhead",
                            "--out", str(out), "--note", "test note"], echo=log.append)
    assert [o.bench.name for o in outcomes] == ["adasp", "nformer", "hashing", "trainer_overhead"]
    assert [bool(o.error) for o in outcomes] == [False, True, False, False], \
        [(o.bench.name, o.error) for o in outcomes]
    assert any(line.startswith("[adasp] ") for line in log)  # the scripts' output is echoed
    text = out.read_text()

    # machine header
    header = text.split("| method |")[0]
    for part in ("**Machine:**", "cores", "RAM", "GPU: ", "Python 3.", "torch ", "numpy ", "faiss ",
                 "fastreid ", "**tiny**", "Load average", "CUDA rows: not measured"):
        assert part in header, part
    assert "old row" not in text and text.count(viper) == 1  # rewritten, the VIPeR block kept verbatim

    # one row per figure, each with its goal, ratio, status and command
    rows = {m: _rows(text, m) for m in ("AdaSP", "SSR hashing", "Trainer", "NFormer")}
    assert [len(rows[m]) for m in rows] == [1, 2, 1, 1]
    for method, script in (("AdaSP", "adasp"), ("SSR hashing", "hashing"), ("Trainer", "trainer_overhead")):
        for row in rows[method]:
            cells = _cells(row)
            assert len(cells) == 7, row
            assert re.search(r"\d", cells[3]) and cells[4], row  # a ratio and its numbers
            assert re.search(r"\bmet\b", cells[5]), row  # met / not met
            assert cells[6].startswith(f"`python -m reid_ext.benchmarks.{script} "), row
    assert "--batches 16" in _cells(rows["AdaSP"][0])[6]
    trainer = _cells(rows["Trainer"][0])
    assert "DefaultTrainer" in trainer[1] and "like for like" in trainer[3] and "s/iter" in trainer[4]
    assert "updated no weight" in trainer[4]  # fastreid's trainer on torch 2

    # the failed benchmark: its row names the error, the page goes on
    failed = _cells(rows["NFormer"][0])
    assert failed[5] == "**failed**" and "unrecognized arguments: --no-such-flag" in failed[4]
    assert "| nformer |" in text.split("## Run log")[1]

    # notes and links to the per-method pages, which exist
    assert "- test note" in text
    links = re.findall(r"\]\((docs/benchmarks/[a-z0-9_]+\.md)\)", text)
    assert "docs/benchmarks/trainer_overhead.md" in links and len(links) >= 6
    for link in links:
        assert os.path.isfile(os.path.join(ROOT, link)), link

    # the same run writes the generated blocks of the docs pages and of the READMEs that hold one
    docs = out.parent / "docs" / "benchmarks"
    hashing_doc = (docs / "hashing.md").read_text()
    block = hashing_doc.split("<!-- bench:hashing:start -->")[1].split("<!-- bench:hashing:end -->")[0]
    for row in rows["SSR hashing"]:
        assert _cells(row)[3] in block  # the page's figure, in the docs page
    assert "`python -m reid_ext.benchmarks.hashing " in block and "## Full ranking" in block
    assert "**Failed:**" in (docs / "nformer.md").read_text()
    text_readme = readme.read_text()
    assert "old figures" not in text_readme and text_readme.endswith("\n\ntail\n")
    assert _cells(rows["SSR hashing"][0])[3] in text_readme
    assert "](../../docs/benchmarks/hashing.md)" in text_readme

    # a row's command reproduces its figure; the script's main returns the results
    argv = shlex.split(_cells(rows["SSR hashing"][0])[6].strip("`"))[3:]
    res = hashing.main(argv)
    assert res["full"]["gallery"] == 3000 and res["topk"]["k"] == 10
    assert res["full"]["afr_bytes"] == 36 and res["full"]["float_s"] > 0
