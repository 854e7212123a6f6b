"""pack_bits / hamming_distance / hamming_rank / afr_rank against slow references."""
import numpy as np
import pytest
import torch

from reid_ext.evaluation.hashing import (_hamming_numpy, _hamming_torch, afr_rank,
                                         hamming_distance, hamming_rank, pack_bits)


def _ref_hamming(a, b):
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    out = np.zeros((len(a), len(b)), dtype=np.int64)
    for i in range(len(a)):
        for j in range(len(b)):
            out[i, j] = int(np.sum(a[i] != b[j]))
    return out


def _ref_afr(qa, ga, qc, gc, w):
    """Plain-Python AFR: sort by (attr distance, index), re-rank the first w by
    (identity distance, stage-1 position), the rest keep stage-1 order."""
    da, dc = _ref_hamming(qa, ga), _ref_hamming(qc, gc)
    rows = []
    for i in range(len(qa)):
        stage1 = sorted(range(len(ga)), key=lambda j: (da[i, j], j))
        head = stage1[:w]
        head = [j for _, j in sorted(enumerate(head), key=lambda pj: (dc[i, pj[1]], pj[0]))]
        rows.append(head + stage1[w:])
    return np.array(rows)


def _bits(n, b, seed, p=0.5):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, b, generator=g) < p


@pytest.mark.parametrize("b", [1, 7, 8, 13, 64, 70, 130])
def test_pack_bits_matches_numpy_packbits(b):
    bits = _bits(5, b, b)
    np.testing.assert_array_equal(pack_bits(bits).numpy(), np.packbits(bits.numpy(), axis=1))
    # {0,1} ints / floats, numpy input and explicit packed=False on uint8 bits agree
    np.testing.assert_array_equal(pack_bits(bits.long()).numpy(), pack_bits(bits).numpy())
    np.testing.assert_array_equal(pack_bits(bits.float().numpy()).numpy(), pack_bits(bits).numpy())
    np.testing.assert_array_equal(pack_bits(bits.to(torch.uint8), packed=False).numpy(),
                                  pack_bits(bits).numpy())
    packed = pack_bits(bits)
    assert pack_bits(packed) is packed  # uint8 = already packed


def test_pack_bits_errors():
    with pytest.raises(ValueError, match="0/1"):
        pack_bits(torch.tensor([[0.0, 2.0]]))
    with pytest.raises(ValueError, match="2-D"):
        pack_bits(torch.zeros(8, dtype=torch.bool))
    with pytest.raises(ValueError, match="different lengths"):
        hamming_distance(_bits(2, 16, 0), _bits(3, 24, 1))


@pytest.mark.parametrize("b", [5, 30, 64, 100, 256])
def test_hamming_matches_reference_all_backends(b):
    a, g = _bits(6, b, 1), _bits(23, b, 2)
    g[3] = a[0]  # distance 0
    g[4] = ~a[1]  # distance b
    ref = _ref_hamming(a.numpy(), g.numpy())
    for backend in ("auto", "numpy", "torch", "faiss"):
        d = hamming_distance(a, g, backend=backend)
        assert d.shape == (6, 23) and d.dtype == torch.int32
        np.testing.assert_array_equal(d.numpy(), ref, err_msg=backend)
    # packed inputs and mixed forms give the same
    np.testing.assert_array_equal(hamming_distance(pack_bits(a), g).numpy(), ref)
    np.testing.assert_array_equal(_hamming_torch(pack_bits(a), pack_bits(g), chunk=2).numpy(), ref)
    np.testing.assert_array_equal(_hamming_numpy(pack_bits(a).numpy(), pack_bits(g).numpy(),
                                                 chunk=4), ref)


def test_hamming_rank_ties_by_gallery_index():
    q = torch.tensor([[1, 0, 1, 0]], dtype=torch.bool)
    g = torch.tensor([[0, 0, 0, 0], [1, 0, 1, 1], [1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 1, 0]],
                     dtype=torch.bool)
    # distances 2, 1, 0, 1, 1 -> 2, then ties 1, 3, 4 by index, then 0
    assert hamming_rank(q, g).tolist() == [[2, 1, 3, 4, 0]]
    qs, gs = _bits(7, 6, 3), _bits(40, 6, 4)  # 6 bits: many ties
    d = _ref_hamming(qs.numpy(), gs.numpy())
    ref = np.array([sorted(range(40), key=lambda j: (d[i, j], j)) for i in range(7)])
    np.testing.assert_array_equal(hamming_rank(qs, gs, chunk=3).numpy(), ref)


@pytest.mark.parametrize("w", [1, 5, 17, 40, 100])
def test_afr_matches_reference_with_ties(w):
    qa, ga = _bits(9, 5, 10), _bits(40, 5, 11)  # 5 attribute bits: heavy ties in stage 1
    qc, gc = _bits(9, 6, 12), _bits(40, 6, 13)  # 6 identity bits: ties in stage 2 too
    ref = _ref_afr(qa.numpy(), ga.numpy(), qc.numpy(), gc.numpy(), min(w, 40))
    got = afr_rank(qa, ga, qc, gc, w)
    np.testing.assert_array_equal(
        afr_rank(qa, ga, qc, gc, w, backend="torch", chunk=4).numpy(), ref)
    assert got.dtype == torch.int64 and got.shape == (9, 40)
    np.testing.assert_array_equal(got.numpy(), ref)
    np.testing.assert_array_equal(
        afr_rank(pack_bits(qa), pack_bits(ga), pack_bits(qc), pack_bits(gc), w).numpy(), ref)
    for k in (1, 3, 25):
        for backend in ("numpy", "torch"):
            np.testing.assert_array_equal(
                afr_rank(qa, ga, qc, gc, w, topk=k, backend=backend).numpy(), ref[:, :k])
    # every row is a permutation of the gallery
    assert (np.sort(got.numpy(), axis=1) == np.arange(40)).all()
    threads = torch.get_num_threads()
    torch.set_num_threads(3)  # the CPU path shares the queries among threads
    try:
        np.testing.assert_array_equal(afr_rank(qa, ga, qc, gc, w).numpy(), ref)
        np.testing.assert_array_equal(afr_rank(qa, ga, qc, gc, w, topk=3).numpy(), ref[:, :3])
    finally:
        torch.set_num_threads(threads)


def test_afr_hand_example_stage2_ties_follow_stage1_position():
    # attribute distances to q: g0 1, g1 0, g2 1, g3 0  -> stage 1: 1, 3, 0, 2
    qa = torch.tensor([[1, 0]], dtype=torch.bool)
    ga = torch.tensor([[0, 0], [1, 0], [1, 1], [1, 0]], dtype=torch.bool)
    # identity distances: g0 0, g1 1, g2 0, g3 1  -> w=3 re-ranks [1, 3, 0]: 0 first,
    # then 1 and 3 tie and keep stage-1 order; g2 (outside the shortlist) stays last
    qc = torch.tensor([[0, 0]], dtype=torch.bool)
    gc = torch.tensor([[0, 0], [1, 0], [0, 0], [0, 1]], dtype=torch.bool)
    assert afr_rank(qa, ga, qc, gc, 3).tolist() == [[0, 1, 3, 2]]
    assert afr_rank(qa, ga, qc, gc, 1).tolist() == [[1, 3, 0, 2]]
    assert afr_rank(qa, ga, qc, gc, 4).tolist() == [[0, 2, 1, 3]]


def test_afr_errors():
    a, c = _bits(2, 4, 0), _bits(5, 8, 1)
    with pytest.raises(ValueError, match="AFR_W"):
        afr_rank(a[:2], _bits(5, 4, 2), c[:2], c, 0)
    with pytest.raises(ValueError, match="disagree"):
        afr_rank(a, _bits(5, 4, 2), c[:3], c, 2)


@pytest.mark.parametrize("a_bits,b_bits", [(30, 100), (40, 130), (70, 64), (8, 2048)])
def test_afr_word_layouts(a_bits, b_bits):
    """uint32 / uint64 / multi-word attribute codes and multi-word identity codes."""
    qa, ga = _bits(4, a_bits, 20, p=0.9), _bits(30, a_bits, 21, p=0.9)
    ga[5:9] = ga[4]  # duplicated attribute codes: exact stage-1 ties
    qc, gc = _bits(4, b_bits, 22), _bits(30, b_bits, 23)
    gc[7] = gc[5]  # duplicated identity codes: exact stage-2 ties
    for w in (3, 12):
        ref = _ref_afr(qa.numpy(), ga.numpy(), qc.numpy(), gc.numpy(), w)
        for backend in ("numpy", "torch"):
            np.testing.assert_array_equal(afr_rank(qa, ga, qc, gc, w, backend=backend).numpy(),
                                          ref, err_msg=backend)


def test_first_w_stable_equals_head_of_stable_sort():
    from reid_ext.evaluation.hashing import _first_w_stable
    rng = np.random.default_rng(0)
    for g, a, w in [(50, 5, 1), (50, 5, 49), (50, 5, 50), (1000, 30, 200), (300, 3, 7)]:
        d = np.bitwise_count(rng.integers(0, 2 ** a, g, dtype=np.uint64)).astype(np.uint8)
        np.testing.assert_array_equal(_first_w_stable(d, w), np.argsort(d, kind="stable")[:w])
