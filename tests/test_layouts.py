"""The WFLW-98 / iBUG-68 layout tables and the NME helper (standard library module)."""
from facelandmarks.pipeline import layouts as L


def test_groups_cover_98_in_order():
    seen = [i for r in L.WFLW98_GROUPS.values() for i in r]
    assert seen == list(range(98))
    assert [i for r in L.IBUG68_GROUPS.values() for i in r] == list(range(68))


def test_flip_pairs_are_an_involution_over_all_98():
    flat = [i for p in L.WFLW98_FLIP_PAIRS for i in p]
    assert len(flat) == len(set(flat)), "a point appears in two pairs"
    perm = L.WFLW98_FLIP_PERM
    assert sorted(perm) == list(range(98))
    assert all(perm[perm[i]] == i for i in range(98))
    # the fixed points are exactly the mid-line ones
    assert [i for i in range(98) if perm[i] == i] == [16, 51, 52, 53, 54, 57, 79, 85, 90, 94]
    # pairs stay within their group
    group_of = {i: g for g, r in L.WFLW98_GROUPS.items() for i in r}
    assert all(group_of[a] == group_of[b] for a, b in L.WFLW98_FLIP_PAIRS)


def test_flip_twice_is_identity():
    pts = [(0.01 * i, 0.02 * i) for i in range(98)]
    back = L.flip_wflw98(L.flip_wflw98(pts, width=2.0), width=2.0)
    assert all(abs(a[0] - b[0]) < 1e-12 and abs(a[1] - b[1]) < 1e-12 for a, b in zip(pts, back))


def test_wflw_to_68_map():
    m = L.WFLW98_TO_68
    assert len(m) == 68 and len(set(m)) == 68 and all(0 <= i < 98 for i in m)
    assert m[L.IBUG68_INTEROCULAR[0]] == L.WFLW98_INTEROCULAR[0] == 60
    assert m[L.IBUG68_INTEROCULAR[1]] == L.WFLW98_INTEROCULAR[1] == 72
    assert list(m[:17]) == list(range(0, 33, 2))       # jaw = every 2nd contour point
    assert list(m[48:]) == list(range(76, 96))          # mouth is shared
    # mirroring commutes with the 68 selection (iBUG-68 mirror pairs, 0-based)
    pairs68 = [(0, 16), (1, 15), (2, 14), (3, 13), (4, 12), (5, 11), (6, 10), (7, 9), (17, 26),
               (18, 25), (19, 24), (20, 23), (21, 22), (31, 35), (32, 34), (36, 45), (37, 44),
               (38, 43), (39, 42), (40, 47), (41, 46), (48, 54), (49, 53), (50, 52), (55, 59),
               (56, 58), (60, 64), (61, 63), (65, 67)]
    perm = L.WFLW98_FLIP_PERM
    for a, b in pairs68:
        assert perm[m[a]] == m[b]


def test_nme():
    gt = [(0.0, 0.0)] * 98
    gt = list(gt)
    gt[60], gt[72] = (0.0, 0.0), (10.0, 0.0)
    pred = [(x + 1.0, y) for x, y in gt]
    assert abs(L.nme(pred, gt, 60, 72) - 0.1) < 1e-12
    assert abs(L.nme(pred, gt, 60, 72, indices=range(0, 33)) - 0.1) < 1e-12
    assert len(L.wflw98_to_68(gt)) == 68
