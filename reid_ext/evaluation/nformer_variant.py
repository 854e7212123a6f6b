"""NFormer at test time (``TEST.NFORMER.ENABLED``): one transductive pass over all
query + gallery features, ranked beside the encoder-only result.

Official procedure (haochenheheda/NFormer, its test path): encoder features of
query and gallery are concatenated, the NFormer (eval mode) runs over the whole set at once,
its post-BN output is L2-normalised and ranked. The NFormer weights are taken from the
evaluated model's ``nformer`` submodule (``NFormerBaseline``), else from the checkpoint at
``TEST.NFORMER.WEIGHTS`` (a fastreid checkpoint with ``nformer.*`` keys under "model", or a
bare NFormer state dict). Landmarks at eval come from the seeded generator of the module,
so the result is reproducible. Memory is O(N * (TOPK + d)) thanks to the gathered attention.
"""
import time

import torch
import torch.nn.functional as F
from fastreid.utils.compute_dist import build_dist

from .variants import EVAL_VARIANTS, VariantOutput


def load_nformer(cfg, model=None):
    """The NFormer to evaluate: ``model.nformer`` or one built from the config and loaded
    from TEST.NFORMER.WEIGHTS."""
    nformer = getattr(model, "nformer", None)
    if nformer is not None:
        return nformer
    path = cfg.TEST.NFORMER.WEIGHTS
    if not path:
        raise ValueError("TEST.NFORMER.ENABLED is True but the evaluated model has no .nformer "
                         "submodule (MODEL.META_ARCHITECTURE NFormerBaseline) and "
                         "TEST.NFORMER.WEIGHTS is empty")
    from ..modeling.nformer import NFormer
    state = torch.load(path, map_location="cpu", weights_only=False)
    state = state.get("model", state)
    if any(k.startswith("nformer.") for k in state):
        state = {k[len("nformer."):]: v for k, v in state.items() if k.startswith("nformer.")}
    cls_w = state.get("classifier.weight")
    nformer = NFormer.from_config(cfg, num_classes=0 if cls_w is None else cls_w.size(0))
    missing, unexpected = nformer.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise KeyError(f"TEST.NFORMER.WEIGHTS={path} does not match MODEL.NFORMER.*: missing "
                       f"{missing[:5]}, unexpected {unexpected[:5]}")
    device = next(model.parameters()).device if model is not None else torch.device("cpu")
    return nformer.to(device)


@torch.no_grad()
def run_nformer(nformer, feats):
    """(N, d) features -> (N, d) NFormer output (eval mode, mode restored afterwards)."""
    was_training = nformer.training
    nformer.eval()
    try:
        device = next(nformer.parameters()).device
        return nformer(feats.to(device)).float()
    finally:
        nformer.train(was_training)


@EVAL_VARIANTS.register()
def nformer_variant(cfg, query, gallery, model):
    if not cfg.TEST.NFORMER.ENABLED:
        return {}
    nformer = load_nformer(cfg, model)
    t0 = time.perf_counter()
    out = run_nformer(nformer, torch.cat([query.feats, gallery.feats]))
    out = F.normalize(out, dim=1).cpu()
    seconds = time.perf_counter() - t0
    nq = query.feats.size(0)
    dist = build_dist(out[:nq], out[nq:], cfg.TEST.METRIC)
    return {"NFormer": VariantOutput(dist=dist, metrics={"nformer_seconds": seconds})}
