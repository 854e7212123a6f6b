"""Config keys of NFormer (issue 6; see projects/NFormer/README.md)."""
from .keys import add_key


def add_nformer_config(cfg):
    # the NFormer module (reid_ext.modeling.nformer.NFormer)
    add_key(cfg, "MODEL.NFORMER.DIM", 256)  # token size = encoder feature size (EMBEDDING_DIM)
    add_key(cfg, "MODEL.NFORMER.DEPTH", 4)  # number of post-LN LAA/RNS blocks
    add_key(cfg, "MODEL.NFORMER.NUM_HEADS", 2)  # attention heads (d_h = DIM / NUM_HEADS)
    add_key(cfg, "MODEL.NFORMER.NUM_LANDMARKS", 5)  # landmark agents l per layer (official yml: 5)
    add_key(cfg, "MODEL.NFORMER.TOPK", 20)  # kk of the reciprocal cosine top-k mask (self included)
    add_key(cfg, "MODEL.NFORMER.MLP_RATIO", 4)  # feed-forward width = MLP_RATIO * DIM
    add_key(cfg, "MODEL.NFORMER.DROPOUT", 0.1)  # dropout on attention projection and MLP output
    add_key(cfg, "MODEL.NFORMER.EVAL_SEED", 0)  # seed of the eval-mode landmark generator
    add_key(cfg, "MODEL.NFORMER.INPUT_SCALE", 16.0)  # inputs L2-normalised times this (0 = raw)
    add_key(cfg, "MODEL.NFORMER.CHUNK_SIZE", 0)  # attention rows per chunk (0 = automatic)
    add_key(cfg, "MODEL.NFORMER.INPUT_DIM", 0)  # encoder feature size if not DIM: a learned linear map to DIM (0 = DIM)
    # stage 2 (reid_ext.engine.nformer.NFormerTrainer, ENGINE.TRAINER NFormerTrainer)
    add_key(cfg, "MODEL.NFORMER.STAGE1_WEIGHTS", "")  # stage-1 checkpoint (else MODEL.WEIGHTS)
    add_key(cfg, "SOLVER.NFORMER.MAX_EPOCH", 20)  # NFormer epochs (features re-extracted each)
    add_key(cfg, "SOLVER.NFORMER.BASE_LR", 1e-5)  # Adam learning rate (official 1e-5)
    add_key(cfg, "SOLVER.NFORMER.WEIGHT_DECAY", 0.0)  # Adam weight decay (official 0)
    add_key(cfg, "SOLVER.NFORMER.SEQ_LEN", 7000)  # features per training sequence (capped at N)
    add_key(cfg, "SOLVER.NFORMER.SEQS_PER_BATCH", 2)  # sequences per iteration
    add_key(cfg, "SOLVER.NFORMER.SEQ_DIVISOR", 30)  # sequences per epoch = N_feat // SEQ_DIVISOR
    add_key(cfg, "SOLVER.NFORMER.CE_EPSILON", 0.1)  # label smoothing of the NFormer CE loss
    add_key(cfg, "SOLVER.NFORMER.TRI_MARGIN", 0.3)  # batch-hard triplet margin (pre-BN output)
    add_key(cfg, "SOLVER.NFORMER.CHECKPOINT_PERIOD", 5)  # epochs between stage-2 checkpoints
    add_key(cfg, "SOLVER.NFORMER.EVAL_PERIOD", 5)  # epochs between stage-2 evaluations
    # test time (reid_ext.evaluation.nformer_variant)
    add_key(cfg, "TEST.NFORMER.ENABLED", False)  # also rank with the NFormer over query+gallery
    add_key(cfg, "TEST.NFORMER.WEIGHTS", "")  # NFormer checkpoint when the model has no .nformer
    return cfg
