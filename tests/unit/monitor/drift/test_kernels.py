"""The compiled kernels give the same integers (and W1) as the numpy engine and scipy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp, wasserstein_distance

from monitor.drift import _kernels
from monitor.drift.ks import SortedReference, ks_lattice
from monitor.drift.sliding import SlidingKS

pytestmark = pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="numba not installed")


def _draw(rng: np.random.Generator, rows: int, cols: int, kind: str) -> np.ndarray:
    x = rng.normal(size=(rows, cols))
    if kind == "tied":
        return np.round(x * 2)
    if kind == "mixed":  # ties in some columns only, and values shared across samples
        x[:, 0] = np.round(x[:, 0])
        return x
    return x


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 60),
    st.integers(1, 60),
    st.integers(1, 3),
    st.sampled_from(["continuous", "tied", "mixed"]),
    st.integers(0, 2**31 - 1),
)
def test_merge_kernel_equals_numpy_engine_and_scipy(n: int, m: int, f: int, kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, win = _draw(rng, n, f, kind), _draw(rng, m, f, kind)
    sref = SortedReference(ref, with_wasserstein=True)
    wp = sref.sort_window_padded(win)
    lcm, a, b = ks_lattice(n, m)
    h = np.zeros(f, dtype=np.int64)
    acc = np.zeros(f)
    _kernels.ks_w1(sref.padded, wp, a, b, True, h, acc)
    # The numpy engine (binary searches + prefix-sum W1), forced.
    had = _kernels.HAVE_NUMBA
    try:
        _kernels.HAVE_NUMBA = False
        h_np, w1_np = sref.test_sorted(wp[:, :m])
    finally:
        _kernels.HAVE_NUMBA = had
    assert w1_np is not None
    assert h.tolist() == h_np.tolist()
    for j in range(f):
        assert h[j] / lcm == pytest.approx(ks_2samp(ref[:, j], win[:, j]).statistic, abs=1e-12)
        expected = wasserstein_distance(ref[:, j], win[:, j])
        assert acc[j] / lcm == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert w1_np[j] == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("kind", ["continuous", "tied", "mixed"])
def test_kernel_results_do_not_depend_on_threads(kind: str) -> None:
    """Every thread count gives the same integers and the same W1 bits, for odd and even
    feature counts (the rows go by pairs; an odd last row is paired with itself), and one
    row at a time (the missing-values path) agrees with the whole batch."""
    rng = np.random.default_rng(3)
    for f in (7, 8):
        ref, win = _draw(rng, 3_000, f, kind), _draw(rng, 700, f, kind)
        sref = SortedReference(ref)
        wp = sref.sort_window_padded(win)
        _, a, b = ks_lattice(3_000, 700)
        results = []
        for threads in (1, 2, None):
            h = np.zeros(f, dtype=np.int64)
            acc = np.zeros(f)
            _kernels.ks_w1(sref.padded, wp, a, b, True, h, acc, threads)
            results.append((h.tolist(), acc.tobytes()))
        assert results[1] == results[0] and results[2] == results[0]
        for j in range(f):
            h1 = np.zeros(1, dtype=np.int64)
            acc1 = np.zeros(1)
            _kernels.merge_pair(sref.padded[j : j + 1], wp[j : j + 1], a, b, True, h1, acc1, 0, 0)
            assert int(h1[0]) == results[0][0][j] and acc1.tobytes() == results[0][1][8 * j : 8 * j + 8]


@pytest.mark.parametrize("kind", ["continuous", "tied", "mixed"])
def test_all_chunks_w1_is_each_chunks_own_test(kind: str) -> None:
    """One walk of the sorted reference gives every chunk's W1 (prefix sums): scipy's and the
    merge kernel's (each chunk tested as a window) to 1e-12 relative, leftover rows in no
    chunk, the same bits for any thread count; sizes from 1 row to the whole reference."""
    rng = np.random.default_rng(5)
    ref = _draw(rng, 2_050, 3, kind) * 1e3 + 5e3  # far from 0: the centring matters
    sref = SortedReference(ref, with_order=True, with_wasserstein=True)
    assert np.array_equal(sref.sorted, SortedReference(ref).sorted)  # (-0.0 and 0.0 may swap)
    for size in (1, 7, 100, 256, 2_050):
        n_chunks = 2_050 // size
        merged = np.stack([sref.test_window(ref[c * size : (c + 1) * size])[1] for c in range(n_chunks)])
        scipy_w1 = np.array([[wasserstein_distance(ref[:, f], ref[c * size : (c + 1) * size, f]) for f in range(3)]
                             for c in range(min(n_chunks, 12))])
        results = []
        for threads in (1, 2):
            sref.threads = threads
            got = sref.chunk_w1(size)
            assert got is not None and got.shape == (n_chunks, 3)
            results.append(got.tobytes())
            atol = 1e-9 * float(sref.std.max())  # a chunk of the whole reference: W1 = 0
            np.testing.assert_allclose(got, merged, rtol=1e-12, atol=atol)
            np.testing.assert_allclose(got[: scipy_w1.shape[0]], scipy_w1, rtol=1e-12, atol=atol)
        assert results[0] == results[1]
    assert SortedReference(ref).chunk_w1(100) is None  # built without the order
    assert SortedReference(ref, with_order=True).chunk_w1(100) is None  # ... or the prefix sums


def test_quota_cpus_reads_cgroup_v2_and_v1(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert _kernels.quota_cpus(v2) == 2
    (v2 / "cpu.max").write_text("max 100000\n")
    assert _kernels.quota_cpus(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert _kernels.quota_cpus(v1) == 1
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert _kernels.quota_cpus(v1) is None
    assert _kernels.quota_cpus(tmp_path / "absent") is None
    assert 1 <= _kernels.MAX_THREADS <= (_kernels.quota_cpus() or _kernels.MAX_THREADS)


@pytest.mark.parametrize("shape", [(4_000, 500, 9), (8_000, 2_000, 37)])
def test_detector_reports_do_not_depend_on_threads(shape: tuple[int, int, int]) -> None:
    """Also past SMALL_WORK (the second shape), where the KS blocks and the cross-moment
    product are shared between threads."""
    from monitor.drift import DriftConfig, DriftDetector

    n, m, f = shape
    rng = np.random.default_rng(4)
    ref, win = rng.normal(size=(n, f)), rng.normal(size=(m, f))
    win[:, 2] += 0.3
    win[:, 5] = np.round(win[:, 5], 1)
    names = [f"f{i}" for i in range(f)]
    reports = [DriftDetector(ref, names, DriftConfig(threads=t)).test(win).model_dump() for t in (1, 2, 1, 2)]
    assert reports[1] == reports[0] and reports[2] == reports[0] and reports[3] == reports[0]
    assert reports[0]["multivariate_drift"] is not None


@pytest.mark.parametrize("kind", ["continuous", "tied", "mixed"])
def test_window_blocks_match_one_row_at_a_time(kind: str) -> None:
    """test_window transposes, sorts and merges blocks of rows as separate tasks (37 rows: two
    whole blocks and an odd remainder); on any thread count, with work alongside, each row
    has the bits of merging that row alone after numpy sorts the whole window."""
    rng = np.random.default_rng(11)
    f = 37
    ref, win = _draw(rng, 8_000, f, kind), _draw(rng, 2_000, f, kind)
    assert f * (8_000 + 2_000) > _kernels.SMALL_WORK
    sref = SortedReference(ref, with_wasserstein=True)
    wp = sref.sort_window_padded(win)
    _, a, b = ks_lattice(8_000, 2_000)
    ran: list[int] = []
    for threads in (1, 2):
        sref.threads = threads
        h, w1 = sref.test_window(win, alongside=[lambda: ran.append(1)])
        assert w1 is not None
        for j in range(f):
            h1, acc1 = np.zeros(1, dtype=np.int64), np.zeros(1)
            _kernels.merge_pair(sref.padded[j : j + 1], wp[j : j + 1], a, b, True, h1, acc1, 0, 0)
            lcm = ks_lattice(8_000, 2_000)[0]
            assert int(h[j]) == int(h1[0]) and w1[j] == acc1[0] / lcm
    assert ran == [1, 1]


@pytest.mark.parametrize(("n", "m"), [(10_000, 10_000), (3_000, 20_000), (20_000, 2_000)])
def test_merge_kernel_large_matches_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    ref = rng.normal(size=(n, 3))
    win = rng.normal(size=(m, 3)) + np.array([0.0, 0.05, 0.3])
    win[:, 0] = np.round(win[:, 0], 1)  # ties in the window only
    h, w1 = SortedReference(ref).test_window(win, wasserstein=True)
    assert w1 is not None
    lcm, _, _ = ks_lattice(n, m)
    for j in range(3):
        assert h[j] / lcm == pytest.approx(ks_2samp(ref[:, j], win[:, j]).statistic, abs=1e-12)
        assert w1[j] == pytest.approx(wasserstein_distance(ref[:, j], win[:, j]), rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 50),
    st.integers(1, 40),
    st.sampled_from(["continuous", "tied", "mixed"]),
    st.integers(0, 2**31 - 1),
)
def test_rank_kernel_equals_searchsorted(n: int, k: int, kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, vals = _draw(rng, n, 2, kind), _draw(rng, k, 2, kind)
    sref = SortedReference(ref)
    rl = np.empty((2, k), dtype=np.int64)
    rr = np.empty((2, k), dtype=np.int64)
    _kernels.ranks(sref.padded, n, sref.has_ties, np.ascontiguousarray(vals.T), rl, rr)
    for j in range(2):
        assert rl[j].tolist() == np.searchsorted(sref.sorted[j], vals[:, j], "left").tolist()
        assert rr[j].tolist() == np.searchsorted(sref.sorted[j], vals[:, j], "right").tolist()


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 25),
    st.lists(st.integers(1, 25), min_size=1, max_size=5),
    st.sampled_from(["continuous", "tied", "mixed"]),
    st.integers(0, 2**31 - 1),
)
def test_sliding_kernels_equal_numpy_sliding(
    n: int, m: int, steps: list[int], kind: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    ref = _draw(rng, n, 2, kind)
    stream = _draw(rng, m + sum(min(s, m) for s in steps), 2, kind)
    sref = SortedReference(ref)
    fast = SlidingKS(sref, stream[:m])
    had = _kernels.HAVE_NUMBA
    try:
        _kernels.HAVE_NUMBA = False
        slow = SlidingKS(sref, stream[:m])
    finally:
        _kernels.HAVE_NUMBA = had
    pos = m
    for s in steps:
        s = min(s, m)
        fast.step(stream[pos : pos + s])
        try:
            _kernels.HAVE_NUMBA = False
            slow.step(stream[pos : pos + s])
            expected = slow.statistic_h()
        finally:
            _kernels.HAVE_NUMBA = had
        pos += s
        assert fast.statistic_h().tolist() == expected.tolist()
        window = stream[pos - m : pos]
        assert fast.statistic_h().tolist() == sref.test_window(window, wasserstein=False)[0].tolist()


def test_exact_pvalue_kernels_are_scipys_bits() -> None:
    """Our compiled exact KS p-values equal scipy's own (private) ones bit for bit:
    random small sizes on every lattice value, and a few sizes the monitor runs."""
    from scipy.stats import _stats_py

    outside_square = _stats_py._compute_prob_outside_square
    inside = _stats_py._compute_outer_prob_inside_method
    rng = np.random.default_rng(13)
    for _ in range(400):
        n, m = (int(v) for v in rng.integers(1, 50, size=2))
        g = math.gcd(n, m)
        lcm = n // g * m
        for h in {1, lcm, *(int(v) for v in rng.integers(1, lcm + 1, size=5))}:
            if n == m:
                assert _kernels.ks_exact_square(n, h) == outside_square(n, h)
            else:
                assert _kernels.ks_exact_inside(n, m, g, h) == inside(n, m, g, h)
    for n, m, h in [(10_000, 1_000, 300), (10_000, 1_000, 650), (999, 1_000, 5_000), (3_000, 2_000, 500)]:
        assert _kernels.ks_exact_inside(n, m, math.gcd(n, m), h) == inside(n, m, math.gcd(n, m), h)
    for h in (20, 150):
        assert _kernels.ks_exact_square(2_000, h) == outside_square(2_000, h)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 60),
    st.integers(1, 60),
    st.integers(1, 4),
    st.sampled_from(["continuous", "tied", "mixed", "extreme"]),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_float32_window_is_merged_as_float32_with_the_bits_of_float64(
    n: int, m: int, f: int, kind: str, ref_float32: bool, seed: int
) -> None:
    """A float32 window (the monitor's) against a reference of float32 values is transposed,
    sorted and merged as float32, not upcast first; against other references it is upcast.
    Either way its statistics and W1 have the bits of the same window as float64, and the rows
    the cross-moment test reads are its values. "extreme": signed zeros, subnormals, huge values."""
    rng = np.random.default_rng(seed)
    ref = _draw(rng, n, f, kind)
    if ref_float32:
        ref = ref.astype(np.float32).astype(np.float64)
    win = _draw(rng, m, f, kind).astype(np.float32)
    if kind == "extreme":
        pool = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-38, 3e38, -3e38, 1.5], dtype=np.float32)
        win[rng.random(win.shape) < 0.5] = rng.choice(pool)
        ref[rng.random(ref.shape) < 0.5] = float(rng.choice(pool))
    sref = SortedReference(ref, with_wasserstein=True)
    native = sref.use_merge(m) and sref.padded_float32() is not None
    assert sref.padded_float32() is not None or not ref_float32
    seen: list[tuple[np.dtype, np.ndarray]] = []

    def transposed(rows: np.ndarray, f0: int, f1: int) -> None:
        seen.append((rows.dtype, rows[f0:f1, :m].copy()))

    h32, w32 = sref.test_window(win, checked=True, transposed=transposed)
    h64, w64 = sref.test_window(win.astype(np.float64), checked=True)
    assert h32.tolist() == h64.tolist()
    assert w32 is not None and w64 is not None
    assert w32.tobytes() == w64.tobytes()
    assert {dtype for dtype, _ in seen} == {np.dtype(np.float32 if native else np.float64)}
    assert np.array_equal(np.concatenate([rows for _, rows in seen]), win.T)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 600),
    st.integers(1, 21),
    st.integers(0, 20),
    st.booleans(),
    st.sampled_from([np.float32, np.float64]),
    st.integers(0, 2**31 - 1),
)
def test_transpose_pad_tiles_copy_every_column(
    m: int, cols: int, f0: int, strided: bool, dtype: type, seed: int
) -> None:
    """The tiled transpose (tiles of 256 window rows, eight output rows at a time, the rest one
    by one) writes exactly the block's columns, padded with +inf, for any row count and block
    width, from a contiguous window or a strided view (the monitor's stored rows), and nothing else."""
    f0 = min(f0, cols - 1)
    rng = np.random.default_rng(seed)
    stored = rng.normal(size=(m, cols + 1)).astype(dtype)
    w = stored[:, :cols] if strided else np.ascontiguousarray(stored[:, :cols])
    for f1 in sorted({f0 + 1, min(f0 + 8, cols), min(f0 + 9, cols), cols}):
        out = np.full((cols, m + 1), -1.0, dtype=dtype)
        _kernels.transpose_pad(w, out, f0, f1)
        expected = np.full((cols, m + 1), -1.0, dtype=dtype)
        expected[f0:f1, :m] = w[:, f0:f1].T
        expected[f0:f1, m] = np.inf
        assert out.tobytes() == expected.tobytes()
