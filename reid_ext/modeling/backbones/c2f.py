"""C2F: coarse-to-fine sparse self-attention, and the dense "original self-attention".

Reference: Fuxiang Huang, Xuefeng Lv, Lei Zhang, "Coarse-to-fine sparse self-attention
for vehicle re-identification", Knowledge-Based Systems 270 (2023) 110526. Only the
abstract is public and the official repository (fuxianghuang1/CFSA) holds no code, so
the structure below is *our reading* of the abstract (fixed by reid_ext issue 5; see
projects/C2F/README.md):

* 1x1 projections give multi-head queries, keys and values of inner width C/2.
* Coarse stage: the map is cut into non-overlapping p x p patches (bottom/right padding
  when H or W is not a multiple of p); q, k, v are average-pooled per patch into patch
  tokens; multi-head attention among all patch tokens (global context); each patch's
  result is broadcast back to the pixels of that patch.
* Fine stage: multi-head attention among the p x p pixels of each patch, with the
  pixel values enhanced by the coarse result (``v + coarse``).
* Output: 1x1 projection back to C, a norm layer whose scale and shift start at zero,
  added to the input: a freshly inserted block is exactly the identity.

Padding never leaks into the attention: the patch pooling divides by the number of
*real* pixels in each patch (count-aware average), and in the fine stage the padded
pixels are masked out as keys (an additive -inf float mask; each window always holds at
least one real pixel because padding is < p). Padded query rows are cropped away.

Because every pixel of a window carries the same coarse vector and softmax rows sum to
one, the fine stage on ``v + coarse`` equals ``fine(v) + coarse``; we still compute it
literally (the cost is identical) so the code reads as the design.

Cost per head: O((HW/p^2)^2 d + HW p^2 d) for C2F versus O((HW)^2 d) for full attention.
All attention products go through ``torch.nn.functional.scaled_dot_product_attention``
and are laid out so that it picks a fused kernel (CPU flash, CUDA flash / memory-efficient)
rather than its math fallback: the fused kernels want 4-D contiguous (batch, heads, tokens,
d) inputs and no boolean or broadcast mask. So the fine stage runs on windows
``(B*heads, L, p*p, d)`` (the L windows in the heads slot), made by one copy of q, k and v
that the coarse stage pools from too, and its padding mask is an expanded float mask.
In training, :class:`C2FAttention` keeps only those window copies for backward and
recomputes both (cheap) stages there, so it stores less than fused full attention.

Tensor layout of the functional cores: ``(B, heads, H, W, d)`` ("head maps").
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from fastreid.layers import get_norm

__all__ = [
    "split_heads", "merge_heads", "pad_to_multiple", "patch_pool", "patch_partition",
    "coarse_attention", "fine_attention", "c2f_attention", "full_attention",
    "coarse_attention_weights", "fine_attention_weights",
    "C2FAttention", "FullSelfAttention",
]


# ----------------------------------------------------------------------------------
# functional cores
# ----------------------------------------------------------------------------------
def _check_head_map(name, t):
    if t.dim() != 5:
        raise ValueError(f"{name} must be a head map (B, heads, H, W, d), got shape {tuple(t.shape)}")


def split_heads(x, num_heads):
    """(B, heads*d, H, W) -> (B, heads, H, W, d)."""
    b, c, h, w = x.shape
    if c % num_heads:
        raise ValueError(f"channels {c} of shape {tuple(x.shape)} not divisible by num_heads={num_heads}")
    return x.view(b, num_heads, c // num_heads, h, w).permute(0, 1, 3, 4, 2)


def merge_heads(x):
    """(B, heads, H, W, d) -> (B, heads*d, H, W)."""
    b, nh, h, w, d = x.shape
    return x.permute(0, 1, 4, 2, 3).reshape(b, nh * d, h, w)


def pad_to_multiple(x, p):
    """Zero-pad a head map (B, heads, H, W, d) at the bottom/right to multiples of ``p``.

    Returns ``(padded, pad_h, pad_w)``; ``pad_h, pad_w < p``.
    """
    h, w = x.shape[2], x.shape[3]
    pad_h, pad_w = (-h) % p, (-w) % p
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    return x, pad_h, pad_w


def _valid_mask(h, w, p, device):
    """Boolean (Hp, Wp) map, True on real pixels of an (h, w) map padded to multiples of p."""
    hp, wp = h + (-h) % p, w + (-w) % p
    rows = torch.arange(hp, device=device) < h
    cols = torch.arange(wp, device=device) < w
    return rows[:, None] & cols[None, :]


def patch_partition(x, p):
    """(B, heads, Hp, Wp, d) with Hp, Wp multiples of p -> (B, heads, L, p*p, d), L = (Hp/p)(Wp/p).

    Patch order is row-major over the patch grid; pixel order inside a patch row-major.
    """
    b, nh, hp, wp, d = x.shape
    gh, gw = hp // p, wp // p
    x = x.reshape(b, nh, gh, p, gw, p, d).permute(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, nh, gh * gw, p * p, d)


def patch_unpartition(x, gh, gw, p):
    """Inverse of :func:`patch_partition`: (B, heads, gh*gw, p*p, d) -> (B, heads, gh*p, gw*p, d)."""
    b, nh, _, _, d = x.shape
    x = x.reshape(b, nh, gh, gw, p, p, d).permute(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, nh, gh * p, gw * p, d)


def _window_key_mask(h, w, p, device):
    """(L, 1, p*p) boolean: True where the key pixel of a window is real (None if no padding).

    Broadcasts against (B*heads, L, p*p queries, p*p keys).
    """
    if h % p == 0 and w % p == 0:
        return None
    valid = _valid_mask(h, w, p, device)[None, None, :, :, None]
    return patch_partition(valid, p)[0, 0, :, :, 0][:, None, :]


def _windows(x, p):
    """Head map (B, heads, H, W, d) -> contiguous windows (B*heads, L, p*p, d).

    Zero-padded at the bottom/right to multiples of p; L = ceil(H/p)*ceil(W/p) windows,
    row-major over the patch grid, pixels row-major inside a window. One copy.
    """
    b, nh, _, _, d = x.shape
    xp, _, _ = pad_to_multiple(x, p)
    return patch_partition(xp, p).reshape(b * nh, -1, p * p, d).contiguous()


def _unwindows(xw, b, h, w, p):
    """Inverse of :func:`_windows`: (B*heads, L, p*p, d) -> head map (B, heads, H, W, d), cropped.

    One copy, into channel-first order: the head map is a permuted view of a contiguous
    (B, heads, d, H, W) tensor, so :func:`merge_heads` is then a view (no second copy).
    """
    gh, gw = -(-h // p), -(-w // p)
    d = xw.shape[-1]
    x = xw.reshape(b, -1, gh, gw, p, p, d).permute(0, 1, 6, 2, 4, 3, 5)
    x = x.reshape(b, x.shape[1], d, gh * p, gw * p)
    if gh * p != h or gw * p != w:
        x = x[..., :h, :w]
    return x.permute(0, 1, 3, 4, 2)


def _pool_windows(xw, h, w, p):
    """Count-aware mean of each window: (B*heads, L, p*p, d) -> (B*heads, L, d).

    Padded pixels are zero, so the sum runs over the real pixels; it is divided by
    their number (p*p except in the bottom/right windows of a padded map).
    """
    sums = xw.sum(dim=2)
    if h % p == 0 and w % p == 0:
        return sums / float(p * p)
    valid = _valid_mask(h, w, p, xw.device).to(xw.dtype)[None, None, :, :, None]
    counts = patch_partition(valid, p).sum(dim=3)[0]  # (L, 1)
    return sums / counts


def _coarse_windows(qw, kw, vw, b, h, w, p):
    """Coarse stage on windows: (B*heads, L, p*p, d) each -> patch-token result (B*heads, L, d)."""
    tq, tk, tv = (_pool_windows(t, h, w, p) for t in (qw, kw, vw))
    bh, n, d = tq.shape
    # 4-D (B, heads, L, d) contiguous: what the fused kernels accept
    tq, tk, tv = (t.reshape(b, bh // b, n, d) for t in (tq, tk, tv))
    return F.scaled_dot_product_attention(tq, tk, tv).reshape(bh, n, d)


def _fine_windows(qw, kw, vw, h, w, p):
    """Fine stage on windows: attention among the p*p pixels of each window, padded keys
    masked out. (B*heads, L, p*p, d) each -> (B*heads, L, p*p, d)."""
    valid = _window_key_mask(h, w, p, qw.device)  # (L, 1, p*p) or None
    mask = None
    if valid is not None:
        # additive float mask, expanded (not broadcast) to 4-D: the CPU flash kernel
        # accepts it, a boolean or a broadcast mask would send SDPA to its math path
        mask = torch.zeros(valid.shape, dtype=qw.dtype, device=qw.device)
        mask = mask.masked_fill(~valid, float("-inf")).expand(qw.shape[0], -1, qw.shape[2], -1)
    return F.scaled_dot_product_attention(qw, kw, vw, attn_mask=mask)


def patch_pool(x, p):
    """Count-aware average pooling of a head map into patch tokens.

    x: (B, heads, H, W, d), any H, W >= 1. Returns (B, heads, L, d) with
    L = ceil(H/p) * ceil(W/p): the mean of the *real* pixels of each p x p patch
    (padded pixels are neither summed nor counted).
    """
    _check_head_map("x", x)
    b, nh, h, w, d = x.shape
    return _pool_windows(_windows(x, p), h, w, p).reshape(b, nh, -1, d)


def coarse_attention(q, k, v, p):
    """Coarse stage: global multi-head attention among patch tokens, broadcast back to pixels.

    q, k, v: (B, heads, H, W, d). Each is count-aware average-pooled into
    L = ceil(H/p)*ceil(W/p) patch tokens (:func:`patch_pool`); token queries attend to
    all token keys (softmax(q k^T / sqrt(d)) v, fused kernel); the (B, heads, L, d)
    result is copied to every pixel of its patch. Returns (B, heads, H, W, d).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        _check_head_map(name, t)
    b, _, h, w, _ = q.shape
    wins = [_windows(t, p) for t in (q, k, v)]
    tokens = _coarse_windows(*wins, b, h, w, p)  # (B*heads, L, d)
    return _unwindows(tokens[:, :, None, :].expand(-1, -1, p * p, -1), b, h, w, p)


def fine_attention(q, k, v, p):
    """Fine stage: multi-head attention among the p x p pixels of each patch.

    q, k, v: (B, heads, H, W, d). The map is padded to multiples of p, cut into
    L = ceil(H/p)*ceil(W/p) windows of p*p pixels, and each pixel attends to the real
    pixels of its own window (padded keys are masked out). Returns (B, heads, H, W, d).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        _check_head_map(name, t)
    b, _, h, w, _ = q.shape
    out = _fine_windows(*(_windows(t, p) for t in (q, k, v)), h, w, p)
    return _unwindows(out, b, h, w, p)


def _c2f_windows(qw, kw, vw, b, h, w, p):
    """Both stages on windows (B*heads, L, p*p, d): ``fine(q, k, v + coarse)``, same layout out."""
    coarse = _coarse_windows(qw, kw, vw, b, h, w, p)  # (B*heads, L, d)
    return _fine_windows(qw, kw, vw + coarse[:, :, None, :], h, w, p)


def c2f_attention(q, k, v, p, recompute=False):
    """Coarse-to-fine sparse attention (C2F): ``fine(q, k, v + coarse(q, k, v))``.

    q, k, v: (B, heads, H, W, d) (any strides); p: patch size. Returns (B, heads, H, W, d).
    q, k, v are cut into windows once (one copy each); both stages work on the windows,
    and the coarse result is added to every pixel of its window's values.
    ``recompute``: under autograd, keep only the three window copies for backward and
    recompute the two attention stages there (their outputs, log-sum-exps and the
    coarse tokens are not stored); the stages are cheap next to the projections.
    Cost O((HW/p^2)^2 d + HW p^2 d) per head; memory O(HW d) (fused kernels, no
    attention map stored).
    """
    if not isinstance(p, int) or p < 1:
        raise ValueError(f"patch size must be a positive int, got {p!r}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        _check_head_map(name, t)
    b, _, h, w, _ = q.shape
    qw, kw, vw = (_windows(t, p) for t in (q, k, v))
    if recompute and torch.is_grad_enabled():
        out = checkpoint(_c2f_windows, qw, kw, vw, b, h, w, p, use_reentrant=False,
                         preserve_rng_state=False)
    else:
        out = _c2f_windows(qw, kw, vw, b, h, w, p)
    return _unwindows(out, b, h, w, p)


def full_attention(q, k, v, materialize=False):
    """Exact multi-head attention over all H*W positions (the "original self-attention").

    q, k, v: (B, heads, H, W, d) (any strides). Returns (B, heads, H, W, d).
    ``materialize=False``: the fused kernel on contiguous (B, heads, HW, d) copies (CPU
    flash, CUDA flash / memory-efficient: no (HW)^2 map stored; with a strided last
    dimension SDPA would silently take its math path, which stores it);
    ``materialize=True`` computes softmax(q k^T / sqrt(d)) v explicitly, storing the
    (B, heads, HW, HW) map, as classic non-local code does.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        _check_head_map(name, t)
    b, nh, h, w, d = q.shape
    fq, fk, fv = (t.reshape(b, nh, h * w, d).contiguous() for t in (q, k, v))
    if materialize:
        attn = torch.softmax(fq @ fk.transpose(-1, -2) * (1.0 / math.sqrt(d)), dim=-1)
        out = attn @ fv
    else:
        out = F.scaled_dot_product_attention(fq, fk, fv)
    return out.reshape(b, nh, h, w, d)


def coarse_attention_weights(q, k, p):
    """Softmax weights of the coarse stage: (B, heads, L, L), rows = query patches.

    q, k: (B, heads, H, W, d). Patches are row-major over a ceil(H/p) x ceil(W/p) grid.
    """
    tq, tk = patch_pool(q, p), patch_pool(k, p)
    return torch.softmax(tq @ tk.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)


def fine_attention_weights(q, k, p):
    """Softmax weights of the fine stage: (B, heads, L, p*p, p*p), padded keys get 0."""
    h, w = q.shape[2], q.shape[3]
    wq, wk = (patch_partition(pad_to_multiple(t, p)[0], p) for t in (q, k))
    logits = wq @ wk.transpose(-1, -2) / math.sqrt(q.shape[-1])
    mask = _window_key_mask(h, w, p, q.device)
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return torch.softmax(logits, dim=-1)


# ----------------------------------------------------------------------------------
# modules
# ----------------------------------------------------------------------------------
class _AttentionBlock(nn.Module):
    """Shared wrapper: 1x1 q/k/v projections to C/2, attention, 1x1 out + zero-init norm, residual."""

    def __init__(self, channels, num_heads=8, bn_norm="BN"):
        super().__init__()
        if channels % 2:
            raise ValueError(f"{type(self).__name__}: channels={channels} must be even (inner width C/2)")
        inner = channels // 2
        if inner % num_heads:
            raise ValueError(f"{type(self).__name__}: inner width C/2={inner} (channels={channels}) "
                             f"not divisible by num_heads={num_heads} (MODEL.BACKBONE.ATTENTION.HEADS)")
        self.channels, self.inner, self.num_heads = channels, inner, num_heads
        self.qkv = nn.Conv2d(channels, 3 * inner, kernel_size=1)
        self.proj = nn.Conv2d(inner, channels, kernel_size=1)
        self.norm = get_norm(bn_norm, channels)
        nn.init.zeros_(self.norm.weight)  # identity at initialisation
        nn.init.zeros_(self.norm.bias)

    def qkv_heads(self, x):
        """x: (B, C, H, W) -> q, k, v head maps (B, heads, H, W, C/(2 heads)), strided views."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"{type(self).__name__} expects (B, {self.channels}, H, W), got {tuple(x.shape)}")
        q, k, v = self.qkv(x).chunk(3, dim=1)
        # views: the attention core makes the one copy into its kernel layout
        return tuple(split_heads(t, self.num_heads) for t in (q, k, v))

    def attend(self, q, k, v):
        raise NotImplementedError

    def forward(self, x):
        q, k, v = self.qkv_heads(x)
        y = merge_heads(self.attend(q, k, v))
        return x + self.norm(self.proj(y))


class C2FAttention(_AttentionBlock):
    """Residual coarse-to-fine sparse self-attention block on a (B, C, H, W) map.

    See the module docstring for the structure and :func:`c2f_attention` for the core.
    Any H, W (padding is masked). Identity at initialisation (zero-init norm scale).
    """

    def __init__(self, channels, num_heads=8, patch_size=4, bn_norm="BN"):
        super().__init__(channels, num_heads, bn_norm)
        if not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f"C2FAttention: patch_size must be a positive int "
                             f"(MODEL.BACKBONE.ATTENTION.PATCH_SIZE), got {patch_size!r}")
        self.patch_size = patch_size

    def attend(self, q, k, v):
        # recompute: the block then stores for backward the window copies of q, k, v only,
        # less than fused full attention (which also keeps its output), for ~5% more time
        return c2f_attention(q, k, v, self.patch_size, recompute=True)

    @torch.no_grad()
    def attention_maps(self, x):
        """Coarse (B, heads, L, L) and fine (B, heads, L, p*p, p*p) weights for input x."""
        q, k, _ = self.qkv_heads(x)
        return (coarse_attention_weights(q, k, self.patch_size),
                fine_attention_weights(q, k, self.patch_size))

    def extra_repr(self):
        return f"channels={self.channels}, num_heads={self.num_heads}, patch_size={self.patch_size}"


class FullSelfAttention(_AttentionBlock):
    """Residual dense multi-head self-attention over all H*W positions (baseline).

    Same projections and residual/norm wrapper as :class:`C2FAttention`; exact attention
    through the fused kernel, or explicitly materialised with ``materialize=True``.
    """

    def __init__(self, channels, num_heads=8, bn_norm="BN", materialize=False):
        super().__init__(channels, num_heads, bn_norm)
        self.materialize = materialize

    def attend(self, q, k, v):
        return full_attention(q, k, v, materialize=self.materialize)

    def extra_repr(self):
        return f"channels={self.channels}, num_heads={self.num_heads}, materialize={self.materialize}"
