"""The one exact top-k neighbour search of reid_ext (used by LBR, NFormer, hashing).

Chunked over the queries so memory stays O(chunk * N + N * k), on the device of the
inputs; the per-row selection prunes column groups by their maximum (exact, see
``_row_topk``), so the search costs little more than the similarity products. Ties are broken towards the smaller index (``torch.topk`` is not stable, so we
sort on the score and index together).
"""
import torch
import torch.nn.functional as F


def _chunk_rows(n_cols, budget_bytes=256 * 2 ** 20, elem=4):
    return max(1, min(65536, budget_bytes // max(1, n_cols * elem)))


def _row_topk(sim, m, group=32):
    """Exact top-m (values, indices) of every row of ``sim`` (C, N), in no particular order.

    For wide rows, the columns are cut into groups of ``group``; only the m groups with the
    largest maxima can hold a top-m entry (each group with max >= the m-th value holds an
    entry >= it), so the selection runs over m * group candidates instead of N. Ties with
    a dropped group are caught by the tie check of the caller (its max equals the m-th
    value). Cost: one vectorised max over the row plus a selection over m * group.
    """
    c, n = sim.shape
    g = n // group
    if g <= 4 * m:
        return sim.topk(m, dim=1, sorted=False)
    main = g * group
    gmax = sim[:, :main].unflatten(1, (g, group)).amax(-1)  # (C, G)
    top_groups = gmax.topk(m, dim=1, sorted=False).indices  # (C, m)
    offs = torch.arange(group, device=sim.device)
    cols = (top_groups[:, :, None] * group + offs).reshape(c, -1)
    if main < n:  # the last partial group is always a candidate
        tail = torch.arange(main, n, device=sim.device).expand(c, -1)
        cols = torch.cat([cols, tail], 1)
    v, j = sim.gather(1, cols).topk(m, dim=1, sorted=False)
    return v, cols.gather(1, j)


@torch.no_grad()
def topk_rows(sim, k):
    """Exact top-k of each row of a (Q, N) score matrix, largest first, equal scores in
    ascending column order: -> (values (Q, k), indices (Q, k) int64)."""
    k = min(k, sim.size(1))
    # exact ties -> smaller index first: take a few extra, then stable-sort
    extra = min(sim.size(1), k + 8)
    v, i = _row_topk(sim, extra)
    i, order = i.sort(dim=1)
    v = v.gather(1, order)
    v, order = v.sort(dim=1, descending=True, stable=True)
    i = i.gather(1, order)
    if extra < sim.size(1):
        # a tie run reaching the end of the fetched window may hide smaller indices:
        # redo those rows with a full stable sort (rare; one check per call)
        tied = v[:, k - 1] <= v[:, -1]
        if bool(tied.any()):
            rows = tied.nonzero().squeeze(1)
            fv, fi = sim[rows].sort(dim=1, descending=True, stable=True)
            v[rows, :k], i[rows, :k] = fv[:, :k], fi[:, :k]
    return v[:, :k], i[:, :k]


def topk_similarity(query, gallery, k, normalize=True, chunk=None):
    """Top-k gallery items of each query by (cosine) similarity, largest first.

    query (Q, D), gallery (N, D) -> (values (Q, k), indices (Q, k) int64).
    With ``normalize`` the rows are L2-normalised (cosine), else raw dot products.
    """
    if query.dim() != 2 or gallery.dim() != 2 or query.size(1) != gallery.size(1):
        raise ValueError(f"topk_similarity: query {tuple(query.shape)} and gallery "
                         f"{tuple(gallery.shape)} must be (Q, D) and (N, D)")
    k = min(k, gallery.size(0))
    if normalize:
        query, gallery = F.normalize(query.float(), dim=1), F.normalize(gallery.float(), dim=1)
    chunk = chunk or _chunk_rows(gallery.size(0))
    vals, idxs = [], []
    for s in range(0, query.size(0), chunk):
        v, i = topk_rows(query[s:s + chunk] @ gallery.T, k)
        vals.append(v)
        idxs.append(i)
    return torch.cat(vals), torch.cat(idxs)

