"""Spectral Feature Transformation (SFT), functional core.

Luo, Chen, Wang, Zhang, "Spectral Feature Transformation for Person
Re-identification", ICCV 2019 (arXiv 1811.11405); official code LuckyDC/sft-reid
(``utils/components.py``). Spec: ``shared/specs/sft-lbr.md`` section 1.

Each embedding of a mini-batch is replaced by an affinity-weighted average of all
embeddings of that batch::

    X_hat = rownorm(X)                 # L2 per row
    T     = softmax_rows(X_hat X_hat^T / sigma)   # diagonal (self-loop) kept
    X'    = T X                        # applied to the *un-normalised* X

Gradients flow through T (no stop-gradient), as in the official code.
"""
import torch
import torch.nn.functional as F


def sft_transition(x, sigma=0.1):
    """The row-stochastic SFT matrix T of a batch.

    x: (B, D) features (any float dtype, any device). Returns T (B, B), rows sum to 1,
    T[i, j] = exp(cos(x_i, x_j) / sigma) / sum_m exp(cos(x_i, x_m) / sigma).
    A zero row of ``x`` has cosine 0 to everything (F.normalize's eps), not NaN.
    """
    if x.dim() != 2:
        raise ValueError(f"spectral_feature_transform: x must be (B, D), got shape {tuple(x.shape)}")
    if not sigma > 0:
        raise ValueError(f"spectral_feature_transform: sigma (MODEL.HEADS.SFT.SIGMA) must be > 0, "
                         f"got {sigma}")
    xn = F.normalize(x, dim=1)
    return torch.softmax(xn @ xn.t() / sigma, dim=1)


def spectral_feature_transform(x, sigma=0.1):
    """SFT of a batch: ``T @ x`` (see module docstring).

    x: (B, D) un-normalised features, e.g. globally pooled backbone output.
    sigma: temperature of the softmax over cosine similarities (official: 0.1).
    Returns (B, D), same dtype and device as ``x``; differentiable w.r.t. ``x``
    both directly and through the affinities.
    """
    return sft_transition(x, sigma) @ x
