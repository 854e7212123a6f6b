"""Hamming ranking and attribute-based fast retrieval (AFR) for hashing ReID (SSR).

Functional cores (plain tensors in and out):

- :func:`pack_bits` ``(N, B)`` bits -> ``(N, ceil(B/8))`` uint8, numpy ``packbits`` order
  (bit 0 is the most significant bit of byte 0; the last byte is zero-padded);
- :func:`hamming_distance` ``(Q, ·)``, ``(G, ·)`` -> ``(Q, G)`` int32 Hamming distances;
- :func:`hamming_rank` ``(Q, ·)``, ``(G, ·)`` -> ``(Q, G)`` int64 ranking, ties by gallery index;
- :func:`afr_rank` attribute-based fast retrieval -> ``(Q, G)`` int64 ranking.

"SSR: Hashing person re-identification with self-distilling smooth relaxation",
Neurocomputing 2021 (AFR as described in ``projects/SSR/README.md``; the paper's
code is not public, tie rules are ours). Each function accepts bool / {0, 1} bits
(any dtype except uint8) or codes already packed by :func:`pack_bits` (dtype uint8);
pass ``packed=False`` for {0, 1} bits stored as uint8.

Distances are popcounts of XORed packed words: on CPU with ``faiss.hammings`` (long
codes) or ``numpy.bitwise_count`` on 64-bit words, elsewhere (CUDA) with a SWAR
popcount in torch on int64 words, chunked over queries. Sorting small integer keys
uses a stable radix sort (numpy on CPU, ``torch.sort(stable=True)`` elsewhere), so
ties are deterministic.

The registered evaluation variant :func:`ssr_hashing` (``TEST.HASH.ENABLED``,
``TEST.HASH.AFR_W``) reports the Hamming and AFR rankings beside the float result; it
refuses ``TEST.AQE.ENABLED`` (:func:`check_hash_config`).
"""
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .rank import rank_by_distance
from .variants import EVAL_VARIANTS, VariantOutput

logger = logging.getLogger(__name__)

try:  # faiss's binary primitives (optional: the numpy path gives the same numbers)
    import faiss
except ImportError:  # pragma: no cover - faiss is a dependency of fastreid
    faiss = None

_BYTE_WEIGHTS = (128, 64, 32, 16, 8, 4, 2, 1)
_M1, _M2, _M4, _H01 = 0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x0101010101010101


# --------------------------------------------------------------------------- packing
def _as_tensor(x, name):
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, bits) or packed (N, bytes), got shape "
                         f"{tuple(x.shape)}")
    return x


def pack_bits(bits, packed=None):
    """Pack bits into bytes, numpy ``packbits`` order (big-endian within a byte).

    bits: (N, B) bool or {0, 1} tensor / array (any dtype; uint8 is taken as already
    packed unless ``packed=False``) -> (N, ceil(B / 8)) uint8 tensor on the same device.
    Already packed input (uint8, or ``packed=True``) is returned unchanged.
    """
    bits = _as_tensor(bits, "bits")
    if packed is None:
        packed = bits.dtype == torch.uint8
    if packed:
        if bits.dtype != torch.uint8:
            raise TypeError(f"packed codes must be uint8, got {bits.dtype}")
        return bits
    if bits.dtype != torch.bool:
        on_cpu = bits.device.type == "cpu"  # no host sync on accelerators
        if on_cpu and bits.numel() and not bool(((bits == 0) | (bits == 1)).all()):
            raise ValueError(f"bits of shape {tuple(bits.shape)} must be bool or 0/1 values; "
                             f"threshold real-valued codes first (e.g. h > 0)")
        bits = bits != 0
    n, b = bits.shape
    pad = (-b) % 8
    if pad:
        bits = torch.cat([bits, bits.new_zeros(n, pad)], dim=1)
    weights = torch.tensor(_BYTE_WEIGHTS, dtype=torch.uint8, device=bits.device)
    groups = bits.view(n, -1, 8).to(torch.uint8)
    return (groups * weights).sum(dim=2, dtype=torch.uint8)


def _pair(a, b, names=("a", "b"), packed=None):
    a, b = pack_bits(a, packed), pack_bits(b, packed)
    if a.size(1) != b.size(1):
        raise ValueError(f"{names[0]} and {names[1]} have codes of different lengths: "
                         f"{tuple(a.shape)} vs {tuple(b.shape)} packed bytes")
    if a.device != b.device:
        raise ValueError(f"{names[0]} is on {a.device} but {names[1]} on {b.device}")
    return a.contiguous(), b.contiguous()


def _words_np(codes):
    """(N, nbytes) uint8 numpy -> (N, ceil(nbytes/8)) uint64 (zero-padded)."""
    pad = (-codes.shape[1]) % 8
    if pad:
        codes = np.concatenate([codes, np.zeros((codes.shape[0], pad), np.uint8)], axis=1)
    return np.ascontiguousarray(codes).view(np.uint64)


def _words_torch(codes):
    """(N, nbytes) uint8 tensor -> (N, ceil(nbytes/8)) int64 (zero-padded)."""
    pad = (-codes.size(1)) % 8
    if pad:
        codes = torch.cat([codes, codes.new_zeros(codes.size(0), pad)], dim=1)
    return codes.contiguous().view(torch.int64)


def _popcount64(x):
    """SWAR popcount of int64 words (any device); exact for all 64 bits."""
    x = x - ((x >> 1) & _M1)
    x = (x & _M2) + ((x >> 2) & _M2)
    x = (x + (x >> 4)) & _M4
    return (x * _H01) >> 56  # the top byte holds the count (<= 64): sign bit stays 0


def _rows_per_chunk(num_g, words, budget=256 * 2 ** 20):
    return max(1, min(4096, budget // max(1, num_g * words * 8)))


def _hamming_torch(a, b, chunk=None):
    """Packed (Q, nb), (G, nb) uint8 tensors -> (Q, G) int32, SWAR popcount in torch."""
    wa, wb = _words_torch(a), _words_torch(b)
    chunk = chunk or _rows_per_chunk(wb.size(0), wb.size(1))
    out = torch.empty(wa.size(0), wb.size(0), dtype=torch.int32, device=a.device)
    for s in range(0, wa.size(0), chunk):
        x = wa[s:s + chunk, None, :] ^ wb[None, :, :]
        out[s:s + chunk] = _popcount64(x).sum(dim=2, dtype=torch.int32)
    return out


def _hamming_numpy(a, b, chunk=None):
    """Packed (Q, nb), (G, nb) uint8 numpy arrays -> (Q, G) int32 (``np.bitwise_count``)."""
    wa, wb = _words_np(a), _words_np(b)
    if wa.shape[1] == 1:  # one word per item: a single broadcast XOR + popcount
        return np.bitwise_count(wa[:, 0, None] ^ wb[None, :, 0]).astype(np.int32)
    chunk = chunk or _rows_per_chunk(wb.shape[0], wb.shape[1])
    out = np.empty((wa.shape[0], wb.shape[0]), dtype=np.int32)
    for s in range(0, wa.shape[0], chunk):
        x = wa[s:s + chunk, None, :] ^ wb[None, :, :]
        out[s:s + chunk] = np.bitwise_count(x).sum(axis=2, dtype=np.int32)
    return out


def _hamming_faiss(a, b):
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.int32)
    faiss.hammings(faiss.swig_ptr(a), faiss.swig_ptr(b), a.shape[0], b.shape[0], a.shape[1],
                   faiss.swig_ptr(out))
    return out


def _hamming_packed(a, b, backend="auto"):
    """Packed uint8 tensors (Q, nb), (G, nb) -> (Q, G) int32 tensor on a's device."""
    if backend == "torch" or (backend == "auto" and a.device.type != "cpu"):
        return _hamming_torch(a, b)
    an, bn = a.numpy(), b.numpy()
    if backend == "faiss" or (backend == "auto" and faiss is not None and a.shape[1] > 8):
        return torch.from_numpy(_hamming_faiss(an, bn))
    return torch.from_numpy(_hamming_numpy(an, bn))


def hamming_distance(a, b, packed=None, backend="auto"):
    """Hamming distances between two sets of binary codes.

    a: (Q, B) bits or (Q, ceil(B/8)) packed uint8; b: (G, B) bits or (G, ceil(B/8)) packed
    -> (Q, G) int32 tensor on a's device. ``backend``: "auto" (faiss / numpy on CPU,
    torch elsewhere), "faiss", "numpy" (CPU only) or "torch".
    """
    a, b = _pair(a, b, ("a", "b"), packed)
    return _hamming_packed(a, b, backend)


# --------------------------------------------------------------------------- ranking
def stable_argsort_small(keys):
    """Stable ascending argsort of small non-negative integer keys along dim 1.

    keys: (Q, N) integer tensor with values < 65536 -> (Q, N) int64 indices; equal keys
    keep their column order. CPU: numpy's radix sort (uint8 / uint16); else torch's
    stable sort.
    """
    if keys.device.type == "cpu":
        k = keys.numpy()
        k = k.astype(np.uint8 if k.max(initial=0) < 256 else np.uint16, copy=False)
        return torch.from_numpy(np.argsort(k, axis=1, kind="stable"))
    return torch.sort(keys, dim=1, stable=True).indices


def _gather_rows(codes, idx):
    """codes (G, nb), idx (q, w) -> (q, w, nb)."""
    return codes[idx.reshape(-1)].view(idx.size(0), idx.size(1), codes.size(1))


def _rerank_dist(q_codes, g_codes, shortlist):
    """Identity Hamming distances of each query to its own shortlist: (q, nb), (G, nb),
    (q, w) -> (q, w) int32."""
    cand = _gather_rows(g_codes, shortlist)
    if q_codes.device.type == "cpu":
        wq, wc = _words_np(q_codes.numpy()), cand.numpy()
        pad = (-wc.shape[2]) % 8
        if pad:
            wc = np.concatenate([wc, np.zeros(wc.shape[:2] + (pad,), np.uint8)], axis=2)
        wc = np.ascontiguousarray(wc).view(np.uint64)
        return torch.from_numpy(np.bitwise_count(wq[:, None, :] ^ wc).sum(axis=2, dtype=np.int32))
    wq = _words_torch(q_codes)
    wc = _words_torch(cand.reshape(-1, cand.size(2))).view(cand.size(0), cand.size(1), -1)
    return _popcount64(wq[:, None, :] ^ wc).sum(dim=2, dtype=torch.int32)


def _row_chunk(num_g, chunk):
    return chunk or max(1, min(1024, (512 * 2 ** 20) // max(1, num_g * 8)))


def hamming_rank(q_codes, g_codes, packed=None, chunk=None):
    """Full ranking by Hamming distance, ties by gallery index (smaller first).

    q_codes (Q, B) / g_codes (G, B) bits or packed -> (Q, G) int64 gallery indices.
    """
    q, g = _pair(q_codes, g_codes, ("q_codes", "g_codes"), packed)
    chunk = _row_chunk(g.size(0), chunk)
    out = [stable_argsort_small(_hamming_packed(q[s:s + chunk], g))
           for s in range(0, q.size(0), chunk)]
    return torch.cat(out) if out else torch.empty(0, g.size(0), dtype=torch.int64)


def _small_words_np(codes):
    """(N, nbytes) uint8 numpy -> (N,) uint32 (nbytes <= 4) or uint64 (nbytes <= 8) words,
    or (N, W) uint64 for longer codes."""
    nb = codes.shape[1]
    width = 4 if nb <= 4 else 8
    if nb > 8:
        return _words_np(codes)
    if nb < width:
        codes = np.concatenate([codes, np.zeros((codes.shape[0], width - nb), np.uint8)], axis=1)
    return np.ascontiguousarray(codes).view(np.uint32 if width == 4 else np.uint64)[:, 0]


def _first_w_stable(dist, w):
    """The first ``w`` entries of ``np.argsort(dist, kind="stable")`` for small integer
    distances (G,), without sorting the whole gallery: a histogram gives the distance t
    of the w-th item; items closer than t are sorted, items at t are taken by index."""
    counts = np.bincount(dist, minlength=1)
    t = int(np.searchsorted(np.cumsum(counts), w))  # first distance whose total >= w
    closer = np.flatnonzero(dist < t)
    closer = closer[np.argsort(dist[closer], kind="stable")]
    at_t = np.flatnonzero(dist == t)[:w - len(closer)]
    return np.concatenate([closer, at_t])


def _afr_numpy(qa, ga, qc, gc, w, keep, threads=None):
    """CPU AFR, one query at a time so that each step stays in cache: stage 1 distances
    (G,) uint8, radix argsort, stage 2 on the (w, W) shortlist words. The queries are
    shared among ``threads`` (default: torch's intra-op threads, as the float ranking
    it is compared with uses); numpy's popcount and sorts release the GIL."""
    qa_w, ga_w = _small_words_np(qa), _small_words_np(ga)
    qc_w, gc_w = _words_np(qc), _words_np(gc)
    out = np.empty((qa.shape[0], keep), dtype=np.int64)

    def rank(rows):
        for i in rows:
            d1 = np.bitwise_count(ga_w ^ qa_w[i])
            if d1.ndim == 2:
                d1 = d1.sum(axis=1, dtype=np.uint16)
            if keep <= w:  # only the shortlist is needed: no full sort of the gallery
                shortlist = _first_w_stable(d1, w)
            else:
                order = np.argsort(d1, kind="stable")  # radix sort: ties by gallery index
                shortlist = order[:w]
            d2 = np.bitwise_count(gc_w[shortlist] ^ qc_w[i]).sum(axis=1, dtype=np.uint16)
            head = shortlist[np.argsort(d2, kind="stable")]  # ties by stage-1 position
            if keep <= w:
                out[i] = head[:keep]
            else:
                out[i, :w] = head
                out[i, w:] = order[w:keep]

    threads = max(1, min(threads or torch.get_num_threads(), qa.shape[0]))
    if threads == 1:
        rank(range(qa.shape[0]))
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(rank, [range(t, qa.shape[0], threads) for t in range(threads)]))
    return torch.from_numpy(out)


def _afr_torch(qa, ga, qc, gc, w, keep, chunk):
    """AFR in torch (any device), chunked over queries."""
    outs = []
    for s in range(0, qa.size(0), chunk):
        order = stable_argsort_small(_hamming_torch(qa[s:s + chunk], ga))  # stage 1
        shortlist = order[:, :w]
        dist = _rerank_dist(qc[s:s + chunk], gc, shortlist)  # stage 2
        head = shortlist.gather(1, stable_argsort_small(dist))
        if keep <= w:
            outs.append(head[:, :keep].contiguous())
        else:
            order[:, :w] = head
            outs.append(order[:, :keep].contiguous())
    if not outs:
        return torch.empty(0, keep, dtype=torch.int64, device=qa.device)
    return torch.cat(outs)


def afr_rank(q_attr, g_attr, q_codes, g_codes, w, packed=None, topk=None, backend="auto",
             chunk=None):
    """Attribute-based fast retrieval (AFR) ranking.

    Stage 1 ranks the whole gallery by the Hamming distance of the attribute codes
    (ties by gallery index); stage 2 re-ranks the first ``w`` candidates by the Hamming
    distance of the identity codes (ties by stage-1 position); the other items follow
    in stage-1 order.

    q_attr (Q, A), g_attr (G, A): attribute bits or packed; q_codes (Q, B), g_codes
    (G, B): identity bits or packed; w: shortlist size, an absolute count >= 1 (w >= G
    re-ranks everything). Returns (Q, G) int64 gallery indices, best first, on the
    inputs' device; with ``topk`` only the first ``topk`` columns (Q, topk).
    ``backend``: "auto" (numpy on CPU, torch elsewhere), "numpy" or "torch".
    """
    qa, ga = _pair(q_attr, g_attr, ("q_attr", "g_attr"), packed)
    qc, gc = _pair(q_codes, g_codes, ("q_codes", "g_codes"), packed)
    if qa.size(0) != qc.size(0) or ga.size(0) != gc.size(0):
        raise ValueError(f"attribute codes {tuple(qa.shape)}/{tuple(ga.shape)} and identity "
                         f"codes {tuple(qc.shape)}/{tuple(gc.shape)} disagree on Q or G")
    if qa.device != qc.device:
        raise ValueError(f"attribute codes are on {qa.device}, identity codes on {qc.device}")
    w = int(w)
    if w < 1:
        raise ValueError(f"AFR shortlist size w must be >= 1, got {w} (TEST.HASH.AFR_W)")
    num_g = ga.size(0)
    w = min(w, num_g)
    keep = num_g if topk is None else min(int(topk), num_g)
    if backend == "numpy" or (backend == "auto" and qa.device.type == "cpu"):
        return _afr_numpy(qa.numpy(), ga.numpy(), qc.numpy(), gc.numpy(), w, keep)
    if backend not in ("auto", "torch"):
        raise ValueError(f"unknown backend {backend!r}")
    return _afr_torch(qa, ga, qc, gc, w, keep, _row_chunk(num_g, chunk))


# --------------------------------------------------------------------------- evaluation
def codes_from_extras(extras, name):
    """Identity bits (N, B) bool and attribute bits (N, A) bool (or None) from the model's
    eval outputs: ``hash_logits`` (pre-activation h, bit = h > 0) or ``codes`` (packed
    uint8 or bits); ``attr_logits`` (bit = sigmoid > 0.5, i.e. logit > 0)."""
    if "hash_logits" in extras:
        codes = extras["hash_logits"] > 0
    elif "codes" in extras:
        codes = extras["codes"]
    else:
        raise KeyError(f"TEST.HASH.ENABLED needs the model's eval outputs to contain "
                       f"'hash_logits' or 'codes' ({name} has {sorted(extras)}); use "
                       f"MODEL.META_ARCHITECTURE 'SSRHashing'")
    attr = extras["attr_logits"] > 0 if "attr_logits" in extras else None
    return codes, attr


def attribute_accuracy(attr_bits, targets):
    """Mean accuracy over labelled entries. attr_bits (N, A) bool, targets (N, A) float
    in {0, 1} with negative values for unknown -> float (nan if nothing is labelled)."""
    known = targets >= 0
    if not bool(known.any()):
        return float("nan")
    correct = (attr_bits == (targets > 0.5)) & known
    return float(correct.sum()) / float(known.sum())


def _ms_per_query(t0, num_q):
    return (time.perf_counter() - t0) * 1000.0 / max(1, num_q)


def export_codes(path, query, gallery, qp, gp, qa=None, ga=None):
    """Save packed identity codes (and packed attribute codes), the float features the
    codes are compared with, pids, camids and paths."""
    arrays = {"query_codes": qp.cpu().numpy(), "gallery_codes": gp.cpu().numpy(),
              "query_feats": query.feats.float().cpu().numpy(),
              "gallery_feats": gallery.feats.float().cpu().numpy(),
              "query_pids": np.asarray(query.pids), "gallery_pids": np.asarray(gallery.pids),
              "query_camids": np.asarray(query.camids),
              "gallery_camids": np.asarray(gallery.camids),
              "query_paths": np.asarray(query.paths, dtype=str),
              "gallery_paths": np.asarray(gallery.paths, dtype=str)}
    if qa is not None and ga is not None:
        arrays["query_attr_codes"] = pack_bits(qa).cpu().numpy()
        arrays["gallery_attr_codes"] = pack_bits(ga).cpu().numpy()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    np.savez(path, **arrays)
    logger.info("hash codes written to %s", path)


def check_hash_config(cfg):
    """Refuse ``TEST.HASH.ENABLED`` with ``TEST.AQE.ENABLED``.

    AQE expands the float features only (the evaluator hands the variants the expanded
    ones), so the float and Hamming / AFR results would be ranked on different
    representations. Expanding the codes too is not offered: query expansion needs a float
    search of each query against the gallery, the search hashing replaces, and SSR defines
    no expansion of binary codes (projects/SSR/README.md, "AQE")."""
    if cfg.TEST.HASH.ENABLED and cfg.TEST.AQE.ENABLED:
        raise ValueError(
            "TEST.HASH.ENABLED and TEST.AQE.ENABLED are both True: AQE would expand the float "
            "features but not the hash codes, so the float and Hamming/AFR results would not "
            "be comparable. Set TEST.AQE.ENABLED False to evaluate the codes (and evaluate AQE "
            "in a separate run with TEST.HASH.ENABLED False)")


@EVAL_VARIANTS.register()
def ssr_hashing(cfg, query, gallery, model):
    """Hamming ranking of the identity codes (and AFR when ``TEST.HASH.AFR_W`` > 0),
    with attribute accuracy and time per query; float-feature time for comparison.
    Refuses ``TEST.AQE.ENABLED`` (:func:`check_hash_config`)."""
    if not cfg.TEST.HASH.ENABLED:
        return {}
    check_hash_config(cfg)
    qc, qa = codes_from_extras(query.extras, "query")
    gc, ga = codes_from_extras(gallery.extras, "gallery")
    nq = len(query.pids)
    t0 = time.perf_counter()
    dist = 1 - torch.nn.functional.normalize(query.feats, dim=1) @ \
        torch.nn.functional.normalize(gallery.feats, dim=1).T
    rank_by_distance(dist)
    float_ms = _ms_per_query(t0, nq)

    qp, gp = pack_bits(qc), pack_bits(gc)  # codes are stored packed, as in a deployed index
    if cfg.TEST.HASH.EXPORT and cfg.OUTPUT_DIR:
        export_codes(os.path.join(cfg.OUTPUT_DIR, f"hash_codes_q{nq}_g{len(gallery.pids)}.npz"),
                     query, gallery, qp, gp, qa, ga)
    bits = qc.size(1) if qc.dtype != torch.uint8 else qc.size(1) * 8
    t0 = time.perf_counter()
    ranking = hamming_rank(qp, gp)
    out = {f"hash{bits}": VariantOutput(ranking=ranking, metrics={
        "ms/query": _ms_per_query(t0, nq), "float ms/query": float_ms,
        "bytes/item": float(gp.size(1)), "float bytes/item": float(gallery.feats.size(1) * 4)})}
    w = int(cfg.TEST.HASH.AFR_W)
    if w < 0:
        raise ValueError(f"TEST.HASH.AFR_W must be >= 0 (0 = no AFR), got {w}")
    if w > 0:
        if qa is None or ga is None:
            raise KeyError("TEST.HASH.AFR_W > 0 needs 'attr_logits' in the model's eval "
                           "outputs; set MODEL.ATTR.ENABLED True (and MODEL.ATTR.NUM)")
        qap, gap = pack_bits(qa), pack_bits(ga)
        t0 = time.perf_counter()
        ranking = afr_rank(qap, gap, qp, gp, w)
        metrics = {"ms/query": _ms_per_query(t0, nq), "w": float(w)}
        targets = [x.extras.get("attr_targets") for x in (query, gallery)]
        if all(t is not None for t in targets):
            metrics["attr acc"] = 100.0 * attribute_accuracy(
                torch.cat([qa, ga]), torch.cat(targets).float())
        out[f"hash{bits}+AFR(w={w})"] = VariantOutput(ranking=ranking, metrics=metrics)
    return out


ssr_hashing.check_cfg = check_hash_config  # run at model build (variants.check_variant_configs)
