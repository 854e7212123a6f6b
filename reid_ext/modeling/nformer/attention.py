"""Landmark Agent Attention with Reciprocal Neighbor Softmax, gathered (no N x N tensor).

Reference: H. Wang et al., "NFormer: Robust Person Re-identification with Neighbor
Transformer", CVPR 2022 (arXiv 2204.09331), method section (LAA, RNS); semantics follow the
official code (haochenheheda/NFormer @ c78cb84, its attention module):

    A~ = (q k_L^T)(q_L k^T) / sqrt(d_h)                       (per head)
    M_ij = [j in nbr(i)] * [i in nbr(j)],  M_ii = 1           (reciprocal top-k mask)
    out_i = sum_j softmax_{j: M_ij = 1}(A~_ij) v_j

The official code materialises A~ and M as dense (H, N, N) tensors. Only the entries with
M_ij = 1 are ever used, and they lie in the (N, kk) neighbour table, so here every row
gathers the landmark coordinates of its own neighbours: O(N*kk*l) time and O(N*kk + N*l)
memory, processed in row chunks. With the same landmarks this equals the dense formula
up to floating-point summation order.
"""
import math
import warnings

import torch

__all__ = ["reciprocal_neighbors", "landmark_agent_attention", "dense_landmark_agent_attention"]


def reciprocal_neighbors(neighbors, chunk_size=16384):
    """Reciprocal neighbour table of the official RNS mask.

    neighbors: (N, kk) int64, row i = indices of the kk nearest items of item i (by cosine
    similarity of the input features; usually item i itself is among them).
    Returns ``(index, keep)``, both (N, kk + 1): column 0 is the item itself (always kept,
    the diagonal of the official mask); column s + 1 is ``neighbors[:, s]``, kept iff the
    relation is mutual (j in nbr(i) and i in nbr(j)) and j != i (the self entry already
    sits in column 0). Memory O(chunk_size * kk^2) booleans at a time.
    """
    if neighbors.dim() != 2:
        raise ValueError(f"neighbors must be (N, kk), got shape {tuple(neighbors.shape)}")
    n = neighbors.size(0)
    neighbors = neighbors.long()
    rows = torch.arange(n, device=neighbors.device)
    keep = torch.empty(n, neighbors.size(1), dtype=torch.bool, device=neighbors.device)
    for s in range(0, n, chunk_size):
        nb = neighbors[s:s + chunk_size]  # (C, kk)
        r = rows[s:s + chunk_size, None]
        mutual = (neighbors[nb] == r[:, :, None]).any(-1)  # i in nbr(j), (C, kk)
        keep[s:s + chunk_size] = mutual & (nb != r)
    index = torch.cat([rows[:, None], neighbors], 1)
    keep = torch.cat([torch.ones_like(keep[:, :1]), keep], 1)
    return index, keep


def _default_chunk(h, kk, l, d, budget_bytes=64 * 2 ** 20):
    per_row = 4 * h * kk * (l + 2 * d + 4)
    return max(1, budget_bytes // per_row)


def landmark_agent_attention(q, k, v, landmarks, neighbors, reciprocal=None, chunk_size=None):
    """LAA + RNS (NFormer, CVPR 2022, method section), exact official semantics, gathered.

    q, k, v: (H, N, d_h) per-head queries, keys, values (any float dtype, any device).
    landmarks: (l,) int64 token indices used as landmark agents (shared by all heads).
    neighbors: (N, kk) int64, each item's kk nearest items by cosine similarity of the
        input features (itself included).
    reciprocal: optional ``reciprocal_neighbors(neighbors)`` result, to share it between
        layers (it depends only on ``neighbors``).
    chunk_size: rows processed at once (default: about 64 MB of temporaries).
    Returns (H, N, d_h): out_i = sum over kept j of softmax(A~_ij) v_j with
    A~_ij = (q_i . k_L^T)(q_L . k_j^T) / sqrt(d_h); never builds an N x N tensor.
    Differentiable (the gathers back-propagate as scatter-adds).
    """
    if q.dim() != 3 or k.shape != q.shape or v.shape[:2] != q.shape[:2]:
        raise ValueError(f"q, k, v must be (H, N, d_h) with equal H, N; got q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}, v {tuple(v.shape)}")
    h, n, dh = q.shape
    if landmarks.dim() != 1 or landmarks.numel() == 0:
        raise ValueError(f"landmarks must be a non-empty (l,) index tensor, got shape "
                         f"{tuple(landmarks.shape)}")
    if neighbors.dim() != 2 or neighbors.size(0) != n:
        raise ValueError(f"neighbors must be (N={n}, kk), got shape {tuple(neighbors.shape)}")
    index, keep = reciprocal if reciprocal is not None else reciprocal_neighbors(neighbors)
    if index.shape != (n, neighbors.size(1) + 1) or keep.shape != index.shape:
        raise ValueError(f"reciprocal must be (index, keep) of shape (N, kk + 1) = "
                         f"{(n, neighbors.size(1) + 1)}, got {tuple(index.shape)}, "
                         f"{tuple(keep.shape)}")
    landmarks = landmarks.to(q.device)
    scale = 1.0 / math.sqrt(dh)
    w1 = q @ k[:, landmarks].transpose(1, 2)  # (H, N, l): q_i . k_L
    w2 = (k @ q[:, landmarks].transpose(1, 2)) * scale  # (H, N, l): (q_L . k_j) / sqrt(d_h)
    kk1 = index.size(1)
    chunk = chunk_size or _default_chunk(h, kk1, landmarks.numel(), v.size(2))
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad
                                               or v.requires_grad)
    outs, weights = [], []
    for s in range(0, n, chunk):
        idx = index[s:s + chunk]  # (C, kk+1)
        logits = (w1[:, s:s + chunk, None, :] * w2[:, idx]).sum(-1)  # (H, C, kk+1)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # fp16 -> fp32
        logits = logits.masked_fill(~keep[s:s + chunk], float("-inf"))
        attn = logits.softmax(-1).to(v.dtype)  # excluded entries get exactly 0
        if needs_grad:
            outs.append(torch.matmul(attn.unsqueeze(-2), v[:, idx]).squeeze(-2))
        else:
            weights.append(attn)
    if needs_grad:
        return torch.cat(outs, 1)
    # inference: the (N, N) attention as a CSR matrix with kk+1 entries per row times v
    # (no gathered (H, N, kk+1, d_h) copy of v); the same sums as the gathered path
    attn = torch.cat(weights, 1)
    crow = torch.arange(0, n * kk1 + 1, kk1, device=v.device)
    col = index.reshape(-1).to(v.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return torch.stack([torch.sparse_csr_tensor(crow, col, attn[i].reshape(-1), (n, n))
                            @ v[i] for i in range(h)])


def dense_landmark_agent_attention(q, k, v, landmarks, neighbors):
    """reid_ext's dense second path (builds (H, N, N) tensors): a slow reference.

    The official formula written densely, as the official code computes it, but reid_ext's
    code, not the official one: tests/test_nformer_core.py checks it against a loop-level
    restatement. Same arguments and result as :func:`landmark_agent_attention`; the mask is
    ``M = M^k * (M^k)^T`` with the diagonal forced to 1, applied with masked fill.
    """
    h, n, dh = q.shape
    aff = (q @ k[:, landmarks].transpose(1, 2)) @ (q[:, landmarks] @ k.transpose(1, 2))
    aff = aff / math.sqrt(dh)
    mk = torch.zeros(n, n, dtype=torch.bool, device=q.device)
    mk[torch.arange(n, device=q.device)[:, None], neighbors] = True
    mask = mk & mk.T
    mask.fill_diagonal_(True)
    attn = aff.masked_fill(~mask, float("-inf")).softmax(-1)
    return attn @ v
