"""Stage-2 NFormer training on a tiny SynthPerson: runs, logs, evaluates, checkpoints, resumes."""
import json
import os

import numpy as np
import torch

from reid_ext.config import get_cfg, merge_from_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg(out_dir, stage):
    cfg = get_cfg()
    merge_from_file(cfg, os.path.join(ROOT, "projects", "NFormer", "configs",
                                      f"SynthPerson-stage{stage}.yml"))
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "DATASETS.SYNTH.NUM_TRAIN_IDS", "16",
        "DATASETS.SYNTH.NUM_TEST_IDS", "6", "DATASETS.SYNTH.IMGS_PER_ID", "4",
        "DATASETS.SYNTH.SIZE", "[32, 16]", "INPUT.SIZE_TRAIN", "[32, 16]",
        "INPUT.SIZE_TEST", "[32, 16]", "INPUT.PADDING.SIZE", "2", "SOLVER.IMS_PER_BATCH", "16",
        "DATALOADER.NUM_WORKERS", "0", "TEST.IMS_PER_BATCH", "32", "SOLVER.LOG_PERIOD", "1",
        "OUTPUT_DIR", str(out_dir)])
    return cfg


def test_stage2_trains_evaluates_and_resumes(tmp_path, datasets_root):
    from fastreid.utils.checkpoint import Checkpointer
    from reid_ext.engine import Trainer, get_trainer_class
    from reid_ext.modeling.nformer import NFormerBaseline

    # a stage-1 checkpoint (an untrained encoder is enough to exercise stage 2)
    cfg1 = _cfg(tmp_path / "s1", 1)
    cfg1.MODEL.HEADS.NUM_CLASSES = 16
    enc = Trainer.build_model(cfg1)
    os.makedirs(cfg1.OUTPUT_DIR)
    Checkpointer(enc, cfg1.OUTPUT_DIR).save("model_final")
    stage1 = os.path.join(cfg1.OUTPUT_DIR, "model_final.pth")

    cfg2 = _cfg(tmp_path / "s2", 2)
    cfg2.merge_from_list(["MODEL.NFORMER.STAGE1_WEIGHTS", stage1, "SOLVER.NFORMER.MAX_EPOCH", "2",
                          "SOLVER.NFORMER.SEQ_LEN", "24", "SOLVER.NFORMER.SEQ_DIVISOR", "8",
                          "SOLVER.NFORMER.CHECKPOINT_PERIOD", "1",
                          "SOLVER.NFORMER.EVAL_PERIOD", "2", "SOLVER.NFORMER.BASE_LR", "1e-3",
                          "MODEL.NFORMER.TOPK", "6", "MODEL.NFORMER.NUM_LANDMARKS", "3"])
    trainer = get_trainer_class(cfg2)(cfg2)
    assert type(trainer).__name__ == "NFormerTrainer"
    trainer.resume_or_load(resume=False)
    model = trainer.model
    assert isinstance(model, NFormerBaseline)
    # the encoder is the stage-1 one, frozen; only NFormer parameters are optimised
    torch.testing.assert_close(model.backbone.conv1.weight, enc.backbone.conv1.weight)
    enc_before = {k: v.clone() for k, v in model.state_dict().items()
                  if not k.startswith("nformer.")}
    nf_before = {k: v.clone() for k, v in model.nformer.state_dict().items()}
    opt_params = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in model.nformer.parameters() if p.requires_grad}
    assert trainer.iters_per_epoch == 64 // 8 // 2

    results = trainer.train()
    assert "NFormer" in results and 0 <= results["NFormer"]["Rank-1"] <= 100
    assert "Rank-1" in results  # the encoder-only result beside it
    for k, v in model.state_dict().items():
        if not k.startswith("nformer.") and "num_batches_tracked" not in k:
            torch.testing.assert_close(v, enc_before[k], msg=f"encoder changed: {k}")
    assert any(not torch.equal(v, nf_before[k]) for k, v in model.nformer.state_dict().items())
    assert trainer.bank_feats.shape == (64, 256)

    out = cfg2.OUTPUT_DIR
    assert os.path.isfile(os.path.join(out, "model_final.pth"))
    with open(os.path.join(out, "metrics.json")) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    losses = [r for r in lines if "loss_nformer_triplet" in r]
    assert len(losses) >= 2 and all(np.isfinite(r["loss_nformer_cls"]) for r in losses)

    # --resume: a new trainer starts after the last saved epoch with the saved NFormer
    cfg3 = cfg2.clone()
    cfg3.defrost()
    cfg3.SOLVER.NFORMER.MAX_EPOCH = 3
    resumed = get_trainer_class(cfg3)(cfg3)
    resumed.resume_or_load(resume=True)
    assert resumed.start_epoch == 2
    for k, v in resumed.model.nformer.state_dict().items():
        torch.testing.assert_close(v, model.nformer.state_dict()[k])


def test_variant_reproducible_and_loads_weights_from_path(tmp_path):
    from reid_ext.evaluation import FeatureSet
    from reid_ext.evaluation.nformer_variant import nformer_variant
    from reid_ext.modeling.nformer import NFormer
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.NFORMER.DIM", "32", "MODEL.NFORMER.TOPK", "5",
                         "TEST.NFORMER.ENABLED", "True"])
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(6, 32, generator=g)
    pids = np.repeat(np.arange(6), 5)
    feats = centers[pids] + 0.5 * torch.randn(30, 32, generator=g)
    q = FeatureSet(feats[:6], pids[:6], np.zeros(6, int))
    gal = FeatureSet(feats[6:], pids[6:], np.ones(24, int))
    torch.manual_seed(0)
    nf = NFormer.from_config(cfg, num_classes=6)
    path = tmp_path / "nformer.pth"
    torch.save({"model": {"nformer." + k: v for k, v in nf.state_dict().items()}}, path)
    cfg.TEST.NFORMER.WEIGHTS = str(path)
    a = nformer_variant(cfg, q, gal, None)["NFormer"]
    holder = torch.nn.Module()
    holder.nformer = nf
    b = nformer_variant(cfg, q, gal, holder)["NFormer"]
    np.testing.assert_allclose(np.asarray(a.dist), np.asarray(b.dist), rtol=1e-5, atol=1e-6)
    assert nf.training  # mode restored
    cfg.TEST.NFORMER.ENABLED = False
    assert nformer_variant(cfg, q, gal, holder) == {}
