"""The NFormer module: a post-LN transformer whose attention is LAA + RNS.

Reference: H. Wang et al., "NFormer: Robust Person Re-identification with Neighbor
Transformer", CVPR 2022 (method section); layout of the official code (haochenheheda/NFormer @
c78cb84): 4 post-LN blocks [LAA/RNS attention -> +res -> LN -> GELU MLP (4x) -> +res ->
LN], dropout 0.1 on the attention output projection and the MLP output, then a BN neck
(bias frozen) and an optional bias-free classifier.

Defects of the official code fixed here (see projects/NFormer/README.md):
- the classifier has ``num_classes`` outputs (the official one is hard-wired to 751);
- every block is initialised on its own (the official blocks are deep copies of one);
- in eval mode the landmarks come from a generator seeded with ``eval_seed`` at every
  call, so the same input always gives the same output (official: Python ``random``);
- the input is L2-normalised (times ``input_scale``) in training and at test alike
  (official: raw features in training, L2-normalised ones at test);
- the mask is applied with -inf on the kept-row softmax (no -1e9 that overflows fp16);
- the attention is gathered (no N x N tensor), so N = 100k runs on one machine.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.neighbors import topk_similarity
from .attention import (dense_landmark_agent_attention, landmark_agent_attention,
                        reciprocal_neighbors)

__all__ = ["NFormer", "NFormerBlock", "nformer_neighbors", "dense_nformer_forward"]


def nformer_neighbors(x, topk, chunk=None):
    """(N, d) features -> (N, min(topk, N)) int64 indices of the cosine top-k (self included,
    exact, chunked; ties towards the smaller index). Computed without gradient."""
    return topk_similarity(x.detach(), x.detach(), topk, normalize=True, chunk=chunk)[1]


class NFormerAttention(nn.Module):
    def __init__(self, dim, num_heads, dropout):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"NFormer dim={dim} is not divisible by num_heads={num_heads} "
                             f"(MODEL.NFORMER.DIM / MODEL.NFORMER.NUM_HEADS)")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, landmarks, neighbors, reciprocal, chunk_size=None):
        n, dim = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).view(n, 3, h, dim // h).permute(1, 2, 0, 3)  # each (H, N, d_h)
        out = landmark_agent_attention(q, k, v, landmarks, neighbors, reciprocal, chunk_size)
        return self.drop(self.proj(out.transpose(0, 1).reshape(n, dim)))


class NFormerBlock(nn.Module):
    """Post-LN block: n = LN1(x + Attn(x)); out = LN2(n + MLP(n))."""

    def __init__(self, dim, num_heads, mlp_ratio=4, dropout=0.1):
        super().__init__()
        self.attn = NFormerAttention(dim, num_heads, dropout)
        self.ln1 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(mlp_ratio * dim, dim), nn.Dropout(dropout))
        self.ln2 = nn.LayerNorm(dim)

    def forward(self, x, landmarks, neighbors, reciprocal, chunk_size=None):
        x = self.ln1(x + self.attn(x, landmarks, neighbors, reciprocal, chunk_size))
        return self.ln2(x + self.mlp(x))


class NFormer(nn.Module):
    """Neighbour transformer over a set of N feature vectors.

    forward(x): x (N, dim) or (B, N, dim) -> same shape, the post-BN output feature
    (batch statistics in training, running ones in eval). ``forward_train`` also returns
    the pre-BN output (for the triplet loss) and the class logits.

    Args: dim, depth, num_heads, num_landmarks (l), topk (kk of the reciprocal mask),
    num_classes (0 = no classifier), mlp_ratio, dropout, eval_seed (landmark generator
    seed in eval mode), input_scale (the input is L2-normalised and multiplied by it;
    0 = no normalisation), chunk_size (rows per attention chunk, None = automatic),
    input_dim (0 = dim): for an encoder whose feature is not ``dim`` wide (e.g. a 1280-d
    MobileNetV2 without embedding), a bias-free linear layer input_dim -> dim, trained
    with the NFormer, maps the normalised input to the token size; the reciprocal
    neighbours are still those of the encoder features (as without it).
    """

    def __init__(self, dim=256, depth=4, num_heads=2, num_landmarks=5, topk=20, num_classes=0,
                 mlp_ratio=4, dropout=0.1, eval_seed=0, input_scale=16.0, chunk_size=None,
                 input_dim=0):
        super().__init__()
        if num_landmarks < 1 or topk < 1 or depth < 1:
            raise ValueError(f"NFormer needs num_landmarks >= 1, topk >= 1, depth >= 1; got "
                             f"{num_landmarks}, {topk}, {depth} (MODEL.NFORMER.*)")
        self.dim, self.num_landmarks, self.topk = dim, num_landmarks, topk
        self.eval_seed, self.input_scale, self.chunk_size = eval_seed, input_scale, chunk_size
        self.input_dim = input_dim or dim
        self.input_proj = (nn.Linear(self.input_dim, dim, bias=False) if self.input_dim != dim
                           else None)
        self.blocks = nn.ModuleList(NFormerBlock(dim, num_heads, mlp_ratio, dropout)
                                    for _ in range(depth))
        self.bnneck = nn.BatchNorm1d(dim)
        self.bnneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False) if num_classes > 0 else None
        self.reset_parameters()

    def reset_parameters(self):
        # official init (GPT style), drawn separately for every block
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.ones_(self.bnneck.weight)
        nn.init.zeros_(self.bnneck.bias)
        if self.input_proj is not None:  # row-orthonormal: the token keeps a part of the norm
            nn.init.orthogonal_(self.input_proj.weight)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def draw_landmarks(self, n, device):
        """(depth, l) landmark indices: torch's global RNG in training, a generator seeded
        with ``eval_seed`` in eval mode (same draw at every call)."""
        l = min(self.num_landmarks, n)
        depth = len(self.blocks)
        if self.training:
            keys = torch.rand(depth, n, device=device)
        else:
            gen = torch.Generator().manual_seed(self.eval_seed)
            keys = torch.rand(depth, n, generator=gen).to(device)
        return keys.topk(l, dim=1).indices  # l distinct positions per layer

    def encode(self, x, landmarks=None):
        """(N, input_dim) -> (N, dim) pre-BN output. ``landmarks``: optional (depth, l)
        indices."""
        if x.dim() != 2 or x.size(1) != self.input_dim:
            raise ValueError(f"NFormer input must be (N, {self.input_dim}), got {tuple(x.shape)} "
                             f"(MODEL.NFORMER.DIM, or MODEL.NFORMER.INPUT_DIM when set, must "
                             f"equal the encoder feature size)")
        if self.input_scale:
            x = F.normalize(x, dim=1) * self.input_scale
        neighbors = nformer_neighbors(x, self.topk)
        reciprocal = reciprocal_neighbors(neighbors)
        if self.input_proj is not None:
            x = self.input_proj(x)
        if landmarks is None:
            landmarks = self.draw_landmarks(x.size(0), x.device)
        for blk, lm in zip(self.blocks, landmarks):
            x = blk(x, lm, neighbors, reciprocal, self.chunk_size)
        return x

    def _sets(self, x):
        shape = (*x.shape[:-1], self.dim)
        if x.dim() == 3:
            return [self.encode(s) for s in x.unbind(0)], shape
        return [self.encode(x)], shape

    def forward(self, x):
        outs, shape = self._sets(x)
        return self.bnneck(torch.cat(outs)).view(shape)

    def forward_train(self, x):
        """-> dict(features=(..., dim) pre-BN, bn_features=(..., dim), logits=(..., C) or
        None), over (N, dim) or (B, N, dim) input; the BN sees all B*N tokens together."""
        outs, shape = self._sets(x)
        feats = torch.cat(outs)
        bn = self.bnneck(feats)
        logits = self.classifier(bn) if self.classifier is not None else None
        lead = shape[:-1]
        return {"features": feats.view(shape), "bn_features": bn.view(shape),
                "logits": None if logits is None else logits.view(*lead, -1)}

    @classmethod
    def from_config(cls, cfg, num_classes=0):
        c = cfg.MODEL.NFORMER
        return cls(dim=c.DIM, depth=c.DEPTH, num_heads=c.NUM_HEADS,
                   num_landmarks=c.NUM_LANDMARKS, topk=c.TOPK, num_classes=num_classes,
                   mlp_ratio=c.MLP_RATIO, dropout=c.DROPOUT, eval_seed=c.EVAL_SEED,
                   input_scale=c.INPUT_SCALE, chunk_size=c.CHUNK_SIZE or None,
                   input_dim=c.get("INPUT_DIM", 0))


@torch.no_grad()
def dense_nformer_forward(model, x, landmarks):
    """reid_ext's dense reference: ``model``'s eval forward with every attention computed
    densely (:func:`dense_landmark_agent_attention`: an N x N affinity and a dense
    reciprocal mask per layer), reid_ext's own second path, not the official code.
    x (N, dim); ``landmarks``: one (l,) index tensor per layer. For tests and benchmarks
    at small N only (tests/test_nformer_core.py checks it, and the model, against a
    loop-level restatement of the official attention)."""
    x = F.normalize(x, dim=1) * model.input_scale
    nb = topk_similarity(x, x, model.topk)[1]
    if model.input_proj is not None:
        x = model.input_proj(x)
    for blk, lm in zip(model.blocks, landmarks):
        a = blk.attn
        n, d = x.shape
        q, k, v = a.qkv(x).view(n, 3, a.num_heads, d // a.num_heads).permute(1, 2, 0, 3)
        out = dense_landmark_agent_attention(q, k, v, lm, nb)
        x = blk.ln1(x + a.proj(out.transpose(0, 1).reshape(n, d)))
        x = blk.ln2(x + blk.mlp(x))
    return model.bnneck(x)
