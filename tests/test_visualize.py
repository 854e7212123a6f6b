"""reid-visualize: the rank-list core on hand-made images, then the commands on a tiny model
trained on SynthPerson (rank pictures checked pixel by pixel against the identities in the
file names and against the evaluation's Rank-1/5, curves against metrics.json)."""
import glob
import json
import os
from importlib.metadata import entry_points

import numpy as np
import pytest
from fastreid.engine import default_argument_parser
from PIL import Image

import reid_ext.visualize.c2f_attention as c2f_attention
from reid_ext.evaluation.rank import evaluate_ranking
from reid_ext.visualize.cli import main
from reid_ext.visualize.curves import (DPI, PANEL_SIZE, grid_shape, group_tags, read_metrics_json,
                                       read_scalars, select_tags)
from reid_ext.visualize.rank_list import (BACKGROUND, GRAY, GREEN, QUERY, RED, RankRow,
                                          draw_rank_list, draw_rank_rows, rank_layout, rank_rows)

from conftest import ROOT

QUICKSTART = os.path.join(ROOT, "configs", "quickstart.yml")
SSR = os.path.join(ROOT, "projects", "SSR", "configs", "synthperson.yml")
DATA = ["MODEL.DEVICE", "cpu", "DATASETS.SYNTH.NUM_TRAIN_IDS", "8", "DATASETS.SYNTH.NUM_TEST_IDS",
        "6", "DATASETS.SYNTH.IMGS_PER_ID", "4", "DATASETS.SYNTH.NUM_CAMS", "3",
        "DATASETS.SYNTH.SIZE", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]",
        "DATALOADER.NUM_WORKERS", "0", "TEST.IMS_PER_BATCH", "32"]
TRAIN = ["INPUT.SIZE_TRAIN", "[64, 32]", "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE",
         "4", "SOLVER.WARMUP_ITERS", "2", "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.MAX_EPOCH", "2",
         "TEST.EVAL_PERIOD", "1", "SOLVER.LOG_PERIOD", "3"]
LBR = ["TEST.LBR.ENABLED", "True", "TEST.LBR.TOPN", "10"]


def solid(color, size=(20, 40)):
    return Image.new("RGB", size, color)


def frame_pixels(pic, box, border):
    """Middle pixel of each of the four frame edges."""
    x0, y0, x1, y1 = box
    xm, ym, b = (x0 + x1) // 2, (y0 + y1) // 2, border // 2
    points = ((xm, y0 + b), (xm, y1 - 1 - b), (x0 + b, ym), (x1 - 1 - b, ym))
    return [pic.getpixel(p) for p in points]


def name_ids(path):
    """(pid, camera) from a Market-style file name 0012_c3s1_000450_00.jpg."""
    pid, cam = os.path.basename(path).split("_")[:2]
    return int(pid), int(cam[1:cam.index("s")])


# --------------------------------------------------------------------------- functional core
def test_rank_rows_skips_same_camera_matches_and_flags_identities():
    q_pids, q_cams = np.array([1, 2]), np.array([0, 1])
    g_pids = np.array([1, 2, 1, 3, 1, 2])
    g_cams = np.array([0, 0, 1, 1, 2, 1])
    ranking = np.array([[0, 1, 2, 3, 4, 5],   # query 0: item 0 is pid 1 in camera 0 -> left out
                        [5, 4, 3, 2, 1, 0]])  # query 1: item 5 is pid 2 in camera 1 -> left out
    rows = rank_rows(ranking, q_pids, q_cams, g_pids, g_cams, topk=3)
    assert rows[0][0].tolist() == [1, 2, 3] and rows[0][1].tolist() == [False, True, False]
    assert rows[1][0].tolist() == [4, 3, 2] and rows[1][1].tolist() == [False, False, False]
    # rows follow `queries`: here the ranking of query 1 only, top 4
    (idx, m), = rank_rows(ranking[1:], q_pids, q_cams, g_pids, g_cams, topk=4, queries=[1])
    assert idx.tolist() == [4, 3, 2, 1] and m.tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="2 rows but 1 queries"):
        rank_rows(ranking, q_pids, q_cams, g_pids, g_cams, queries=[0])


def test_rank_rows_first_hit_agrees_with_the_evaluation_protocol():
    rng = np.random.default_rng(0)
    q_pids, q_cams = rng.integers(0, 5, 40), rng.integers(0, 3, 40)
    g_pids, g_cams = rng.integers(0, 5, 60), rng.integers(0, 3, 60)
    ranking = np.argsort(rng.random((40, 60)), axis=1)
    cmc, _, _ = evaluate_ranking(ranking, q_pids, g_pids, q_cams, g_cams)
    rows = rank_rows(ranking, q_pids, q_cams, g_pids, g_cams, topk=5)
    valid = [((g_pids == p) & (g_cams != c)).any() for p, c in zip(q_pids, q_cams)]
    r1 = np.mean([m[0] for (_, m), v in zip(rows, valid) if v])
    r5 = np.mean([m.any() for (_, m), v in zip(rows, valid) if v])
    assert r1 == pytest.approx(cmc[0]) and r5 == pytest.approx(cmc[4])


def test_draw_rank_list_frames_green_for_matches_red_otherwise(tmp_path):
    colors = [(200, 200, 0), (0, 0, 255), (120, 60, 30), (255, 0, 255)]
    paths = []
    for i, c in enumerate(colors):  # real files for some tiles, PIL images for the others
        paths.append(str(tmp_path / f"g{i}.png"))
        solid(c).save(paths[-1])
    solid((10, 200, 200)).save(tmp_path / "q.png")
    gallery = [paths[0], solid(colors[1]), paths[2], solid(colors[3])]
    matches = [True, False, None, True]
    out = tmp_path / "pics" / "one.png"
    img = draw_rank_list(str(tmp_path / "q.png"), gallery, matches, out_path=str(out),
                         labels=["a", "b", "c", "d"], row_label="plain", tile=(60, 30))
    pic = Image.open(out).convert("RGB")
    lay = rank_layout(1, 4, tile=(60, 30), row_titles=True, header=False)
    assert pic.size == img.size == lay.size
    assert frame_pixels(pic, lay.frame_box(0, 0), lay.border) == [QUERY] * 4
    for j, (want, c) in enumerate(zip((GREEN, RED, GRAY, GREEN), colors), start=1):
        assert frame_pixels(pic, lay.frame_box(0, j), lay.border) == [want] * 4, j
        x0, y0, x1, y1 = lay.tile_box(0, j)
        tile = np.asarray(pic.crop((x0, y0, x1, y1)))
        assert tile.shape == (60, 30, 3) and (tile == c).all(), j  # the image, unframed
    # beside a frame is background
    x0, y0, x1, _ = lay.frame_box(0, 1)
    assert pic.getpixel((x0 - 1, y0 + 5)) == BACKGROUND == pic.getpixel((x1, y0 + 5))


def test_draw_rank_rows_stacks_rows_of_different_lengths(tmp_path):
    q = solid((10, 10, 10))
    rows = [RankRow([solid((0, 0, 200))] * 3, [False, True, False], name="plain"),
            ([solid((0, 0, 200))] * 2, [True, True], None, "LBR")]
    pic = draw_rank_rows(q, rows, title="query 0", tile=(40, 20))
    lay = rank_layout(2, 3, tile=(40, 20), row_titles=True, header=True)
    assert pic.size == lay.size
    first = [frame_pixels(pic, lay.frame_box(0, j), lay.border) for j in (1, 2, 3)]
    assert first == [[RED] * 4, [GREEN] * 4, [RED] * 4]
    second = [frame_pixels(pic, lay.frame_box(1, j), lay.border) for j in (1, 2)]
    assert second == [[GREEN] * 4, [GREEN] * 4]
    x0, y0, x1, y1 = lay.frame_box(1, 3)  # row 2 has no third item
    assert (np.asarray(pic.crop((x0, y0, x1, y1))) == BACKGROUND).all()
    with pytest.raises(ValueError, match="row 0: 2 gallery images but 1 match flags"):
        draw_rank_rows(q, [([q, q], [True])])
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        draw_rank_list(q, [str(tmp_path / "nope.jpg")], [True])


def test_group_tags_puts_variants_beside_the_plain_metric():
    tags = ["lr", "loss_cls", "total_loss", "cls_accuracy", "time", "Rank-1", "LBR/Rank-1", "mAP",
            "LBR/mAP", "metric", "hash256/ms/query", "hash256/Rank-1"]
    groups = group_tags(select_tags(tags))
    assert list(groups) == ["loss", "lr", "cls_accuracy", "Rank-1", "mAP"]
    assert groups["loss"] == [("total_loss", "total_loss"), ("loss_cls", "loss_cls")]
    assert groups["Rank-1"] == [("Rank-1", "plain"), ("LBR/Rank-1", "LBR"),
                                ("hash256/Rank-1", "hash256")]
    assert select_tags(tags, ["time", "loss_*"]) == ["loss_cls", "time"]
    assert grid_shape(5) == (2, 3) and grid_shape(2) == (1, 2)


def test_cli_dispatch_and_console_script(tmp_path, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(c2f_attention, "main", lambda argv: seen.append(argv))
    main(["attention", "--config-file", "x.yml", "--pixel", "1", "2"])
    assert seen == [["--config-file", "x.yml", "--pixel", "1", "2"]]
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("reid-visualize") == "reid_ext.visualize.cli:main"
    with pytest.raises(SystemExit) as e:
        main(["curves", "--logdir", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"--logdir {tmp_path}: no tensorboard event file" in err
    with pytest.raises(SystemExit) as e:  # a variant whose switch is off names the key
        main(["ranks", "--config-file", QUICKSTART, "--out", str(tmp_path), "--variants", "plain",
              "lbr", "MODEL.DEVICE", "cpu"])
    assert e.value.code == 2 and "TEST.LBR.ENABLED True" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["ranks", "--config-file", QUICKSTART, "--out", str(tmp_path), "--variants", "afr",
              "MODEL.DEVICE", "cpu"])
    assert "TEST.HASH.ENABLED True and TEST.HASH.AFR_W > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["ranks", "--config-file", QUICKSTART, "MODEL.DEVICE", "cpu", "--out", str(tmp_path)])
    assert "--out must come before the KEY VALUE overrides" in capsys.readouterr().err


# --------------------------------------------------------------------------- on a trained model
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch (4-iteration) quickstart on a tiny SynthPerson, LBR evaluated."""
    from reid_ext.train_net import main as train_main
    root = tmp_path_factory.mktemp("vis")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTREID_DATASETS", str(root / "datasets"))
        out = root / "run"
        args = default_argument_parser().parse_args(
            ["--config-file", QUICKSTART, *DATA, *TRAIN, *LBR, "OUTPUT_DIR", str(out)])
        res = train_main(args)
        yield out, res


def test_curves_of_the_training(trained, tmp_path):
    run, _ = trained
    png = tmp_path / "curves.png"
    main(["curves", "--logdir", str(run), "--out", str(png)])
    scalars, source = read_scalars(str(run))
    assert "tfevents" in source
    # the tensorboard events hold what fastreid's JSON writer wrote
    js = read_metrics_json(str(run / "metrics.json"))
    for tag in ("total_loss", "loss_cls", "loss_triplet", "lr"):
        np.testing.assert_array_equal(scalars[tag][0], js[tag][0])
        np.testing.assert_allclose(scalars[tag][1], js[tag][1], rtol=1e-6)
    assert scalars["total_loss"][0].tolist() == [1, 2, 3]  # end of epoch 0, LOG_PERIOD, last
    groups = group_tags(select_tags(scalars))
    assert list(groups)[:2] == ["loss", "lr"] and {"Rank-1", "mAP", "mINP"} <= set(groups)
    assert [label for _, label in groups["Rank-1"]] == ["plain", "LBR"]
    # every evaluation (after epoch 0, and the final one) reaches the event files
    assert scalars["Rank-1"][0].tolist() == [1, 3]
    rows, cols = grid_shape(len(groups))
    pic = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert pic.shape[:2] == (round(rows * PANEL_SIZE[1] * DPI), round(cols * PANEL_SIZE[0] * DPI))
    blue = (np.abs(pic - (31, 119, 180)).sum(-1) < 30)  # matplotlib's first line colour
    h, w = pic.shape[0] // rows, pic.shape[1] // cols
    for k in range(rows * cols):  # a curve in each used panel, nothing in the spare cells
        cell = blue[(k // cols) * h:(k // cols + 1) * h, (k % cols) * w:(k % cols + 1) * w]
        assert (cell.sum() > 20) == (k < len(groups)), k


def test_rank_pictures_plain_and_lbr(trained, tmp_path):
    run, res = trained
    out = tmp_path / "ranks"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTREID_DATASETS", str(run.parent / "datasets"))
        main(["ranks", "--config-file", QUICKSTART, "--out", str(out), "--num-queries", "100",
              "--variants", "plain", "lbr", "--topk", "5", *DATA, *LBR,
              "MODEL.WEIGHTS", str(run / "model_final.pth")])
    summary = json.loads((out / "ranks.json").read_text())
    assert summary["rankings"] == ["plain", "LBR"] and summary["tile"] == [128, 64]
    queries = summary["queries"]
    gallery_files = glob.glob(str(run.parent / "datasets" / "SynthPerson" / "*" /
                                  "bounding_box_test" / "*.jpg"))
    assert len(queries) == 6 and len(gallery_files) > 5
    lay = rank_layout(2, 5, tile=(128, 64), row_titles=True, header=True)
    hits = {"plain": [], "LBR": []}
    for q in queries:
        pic = Image.open(q["png"]).convert("RGB")
        assert pic.size == lay.size
        qpid, qcam = name_ids(q["path"])
        for r, name in enumerate(("plain", "LBR")):
            row = q["rows"][name]
            assert len(row["gallery"]) == 5
            assert frame_pixels(pic, lay.frame_box(r, 0), lay.border) == [QUERY] * 4
            for j, path in enumerate(row["gallery"], start=1):
                pid, cam = name_ids(path)
                assert (pid, cam) != (qpid, qcam)  # same identity and camera: left out
                want = GREEN if pid == qpid else RED
                seen = frame_pixels(pic, lay.frame_box(r, j), lay.border)
                assert seen == [want] * 4, (q["png"], r, j)
                x0, y0, x1, y1 = lay.tile_box(r, j)  # and the tile is that gallery image
                shown = np.asarray(pic.crop((x0, y0, x1, y1))).astype(int)
                ref = np.asarray(Image.open(path).convert("RGB").resize((64, 128), Image.BILINEAR))
                assert np.abs(shown - ref).mean() < 1.0
            valid = any(name_ids(g)[0] == qpid and name_ids(g)[1] != qcam for g in gallery_files)
            if valid:
                hits[name].append([name_ids(g)[0] == qpid for g in row["gallery"]])
    # Rank-1 / Rank-5 read off the pictures are the evaluation's (final model = model_final.pth)
    for name, result in (("plain", res), ("LBR", res["LBR"])):
        h = np.array(hits[name])
        assert 100 * h[:, 0].mean() == pytest.approx(result["Rank-1"])
        assert 100 * h.any(1).mean() == pytest.approx(result["Rank-5"])


def test_rank_pictures_with_afr_rows(trained, tmp_path, capsys):
    run, _ = trained
    out = tmp_path / "afr"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTREID_DATASETS", str(run.parent / "datasets"))
        main(["ranks", "--config-file", SSR, "--out", str(out), "--queries", "4", "1",
              "--variants", "plain", "afr", "--topk", "3", *DATA, "INPUT.SIZE_TEST", "[96, 32]",
              "TEST.HASH.AFR_W", "10", "OUTPUT_DIR", str(tmp_path / "o")])
    assert "randomly initialised" in capsys.readouterr().err  # no MODEL.WEIGHTS
    summary = json.loads((out / "ranks.json").read_text())
    assert summary["rankings"][0] == "plain" and "+AFR(w=10)" in summary["rankings"][1]
    assert [q["index"] for q in summary["queries"]] == [4, 1]
    assert not (tmp_path / "o").exists()  # no hash codes exported into OUTPUT_DIR
    lay = rank_layout(2, 3, tile=summary["tile"], row_titles=True, header=True)
    for q in summary["queries"]:
        pic = Image.open(q["png"]).convert("RGB")
        assert pic.size == lay.size and q["png"].endswith(f"query_{q['index']:04d}.png")
        qpid = name_ids(q["path"])[0]
        for r, name in enumerate(summary["rankings"]):
            for j, path in enumerate(q["rows"][name]["gallery"], start=1):
                want = GREEN if name_ids(path)[0] == qpid else RED
                assert frame_pixels(pic, lay.frame_box(r, j), lay.border) == [want] * 4
