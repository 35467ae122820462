"""RATT certificates (Garg, Balakrishnan, Kolter, Lipton, ICML 2021, arXiv:2105.00303).

Expected values are computed two ways: literal numbers obtained with `bc -l` (20-digit
arithmetic) and the paper's formula written out again here term by term. For the binary bound
that formula is Theorem 1 of the paper. For the multiclass bound both ways start from the same
recalled statement, so they check the arithmetic, not the constant: the point estimate
E_S + (k-1)(1 - k/(k-1) E_S~) is what the authors' code computes (model_helper.pred_accuracy in
acmi-lab/RATT_generalization_bound, which has no concentration term), while the constant c of the
concentration term is unverified against the paper (README, docs/ARCHITECTURE.md: approximate).
"""

import math

import pytest

from gengap_tui.core.bounds import (
    clip01,
    multiclass_constant,
    ratt_bound,
    ratt_bound_binary,
    ratt_bound_multiclass,
)


def paper_binary(es, est, n, m, delta):
    # Theorem 1: E_D <= E_S + 1 - 2 E_S~ + (sqrt2 E_S~ + 2 + m/(2n)) sqrt(log(4/delta)/m)
    main = es + 1 - 2 * est
    width = math.sqrt(2) * est + 2 + m / (2 * n)
    return main + width * (math.log(4 / delta) / m) ** 0.5


def paper_multiclass(es, est, n, m, delta, k):
    # E_D <= E_S + (k-1)(1 - k/(k-1) E_S~) + c sqrt(log(4/delta)/(2m)),  c = 2k + sqrt k + m/(n sqrt k)
    c = 2 * k + k ** 0.5 + m / (n * k ** 0.5)
    return es + (k - 1) * (1 - k / (k - 1) * est) + c * (math.log(4 / delta) / (2 * m)) ** 0.5


BINARY_CASES = [
    # (E_S, E_S~, n, m, delta, value from `bc -l`)
    (0.05, 0.45, 40000, 10000, 0.1, 0.20303663227276220775),
    (0.0, 0.5, 1000, 1000, 0.05, 0.21230045578763729778),
    (0.1, 0.0, 500, 100, 0.01, 1.61402683444297147468),
]

MULTI_CASES = [
    # (E_S, E_S~, n, m, delta, k, value from `bc -l`)
    (0.02, 0.85, 40000, 10000, 0.1, 10, 0.83564091750366449531),
    (0.1, 0.6, 5000, 1000, 0.05, 3, 0.66732880631768418581),
    (0.0, 0.0, 100, 100, 0.1, 10, 12.18861938066265031480),
]


@pytest.mark.parametrize("es,est,n,m,delta,expected", BINARY_CASES)
def test_binary_hand_values(es, est, n, m, delta, expected):
    got = ratt_bound_binary(es, est, n, m, delta)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert got == pytest.approx(paper_binary(es, est, n, m, delta), rel=1e-12)
    assert ratt_bound(es, est, n, m, delta, 2) == got


@pytest.mark.parametrize("es,est,n,m,delta,k,expected", MULTI_CASES)
def test_multiclass_hand_values(es, est, n, m, delta, k, expected):
    got = ratt_bound_multiclass(es, est, n, m, delta, k)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert got == pytest.approx(paper_multiclass(es, est, n, m, delta, k), rel=1e-12)
    assert ratt_bound(es, est, n, m, delta, k) == got


def test_binary_pieces_by_hand():
    # E_S=0.05, E_S~=0.45, n=40000, m=10000, delta=0.1:
    # main = 0.05 + 1 - 0.9 = 0.15; width = 0.45*sqrt2 + 2 + 0.125; sqrt(ln 40 / 1e4)
    main = 0.15
    width = 0.45 * 1.4142135623730951 + 2.125
    root = (3.6888794541139363 / 10000) ** 0.5
    assert ratt_bound_binary(0.05, 0.45, 40000, 10000, 0.1) == pytest.approx(main + width * root, rel=1e-12)


def test_multiclass_constant():
    assert multiclass_constant(40000, 10000, 10) == pytest.approx(20 + 10 ** 0.5 + 0.25 / 10 ** 0.5)
    assert multiclass_constant(1, 1, 4) == pytest.approx(8 + 2 + 0.5)


def test_dispatch_binary_vs_multiclass():
    args = (0.1, 0.4, 1000, 500, 0.05)
    assert ratt_bound(*args, 2) == ratt_bound_binary(*args)
    assert ratt_bound(*args, 2) != ratt_bound_multiclass(*args, 2)  # k=2 goes to Theorem 1
    assert ratt_bound(*args, 5) == ratt_bound_multiclass(*args, 5)


def test_point_estimate_matches_authors_code():
    # acmi-lab/RATT_generalization_bound model_helper.pred_accuracy (in %):
    # pred_err = (100 - train_acc) + (k-1)*(100 - k/(k-1)*(100 - noisy_acc))
    # i.e. E_S + (k-1)(1 - k/(k-1) E_S~), the bound minus its concentration term.
    es, est, n, m, delta, k = 0.03, 0.8, 40000, 10000, 0.1, 10
    train_acc, noisy_acc = 100 * (1 - es), 100 * (1 - est)
    pred_err = ((100 - train_acc) + (k - 1) * (100 - k / (k - 1) * (100 - noisy_acc))) / 100
    conc = multiclass_constant(n, m, k) * math.sqrt(math.log(4 / delta) / (2 * m))
    assert ratt_bound_multiclass(es, est, n, m, delta, k) == pytest.approx(pred_err + conc, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# monotonicity


@pytest.mark.parametrize("k", [2, 3, 10, 100])
def test_increases_with_clean_error(k):
    vals = [ratt_bound(e / 20, 0.4 * (k - 1) / k, 10000, 2000, 0.05, k) for e in range(21)]
    assert all(b > a for a, b in zip(vals, vals[1:]))
    # and one-for-one: the clean error enters with coefficient 1
    assert vals[-1] - vals[0] == pytest.approx(1.0)


@pytest.mark.parametrize("k", [2, 3, 10, 100])
def test_decreases_as_random_error_rises_to_chance(k):
    chance = (k - 1) / k
    vals = [ratt_bound(0.05, chance * i / 50, 10000, 2000, 0.05, k) for i in range(51)]
    assert all(b < a for a, b in zip(vals, vals[1:]))


@pytest.mark.parametrize("k", [2, 3, 10])
def test_tightens_with_m(k):
    # in the regime m <= n (the paper's experiments); see docstrings for the large-m caveat
    n = 50000
    ms = [100, 300, 1000, 3000, 10000, 30000, 50000]
    vals = [ratt_bound(0.05, 0.45 * 2 * (k - 1) / k, n, m, 0.05, k) for m in ms]
    assert all(b < a for a, b in zip(vals, vals[1:]))


def test_binary_large_m_caveat():
    # the m/(2n) term grows like sqrt(m): for fixed n the bound turns up once m > 2n(sqrt2 E + 2)
    n, e = 100, 0.5
    turn = 2 * n * (math.sqrt(2) * e + 2)
    below = ratt_bound_binary(0.0, e, n, int(turn / 4), 0.05)
    at = ratt_bound_binary(0.0, e, n, int(turn), 0.05)
    above = ratt_bound_binary(0.0, e, n, int(turn * 4), 0.05)
    assert at < below and at < above


def test_tightens_with_delta():
    vals = [ratt_bound(0.05, 0.45, 10000, 2000, d, 2) for d in (0.5, 0.1, 0.01, 0.001)]
    assert all(b > a for a, b in zip(vals, vals[1:]))


# ---------------------------------------------------------------------------------------------
# degenerate: memorised random labels -> vacuous


@pytest.mark.parametrize("k", [2, 3, 10, 1000])
@pytest.mark.parametrize("es", [0.0, 0.3])
@pytest.mark.parametrize("n,m", [(1, 1), (100, 10), (10 ** 6, 10 ** 6), (10 ** 9, 10 ** 9)])
def test_memorised_random_points_is_vacuous(k, es, n, m):
    b = ratt_bound(es, 0.0, n, m, 0.999, k)
    assert b >= 1.0
    assert b >= es + (k - 1)  # (k-1)(1 - 0) with a nonnegative concentration term
    assert clip01(b) == 1.0


def test_chance_level_random_error_gives_nonvacuous_bound():
    # random labels not fitted at all (E_S~ = (k-1)/k) and clean data fitted: bound ~ E_S + O(1/sqrt m)
    assert ratt_bound(0.0, 0.5, 10 ** 6, 10 ** 5, 0.05, 2) < 0.05
    assert ratt_bound(0.0, 0.9, 10 ** 6, 10 ** 5, 0.05, 10) < 0.2


def test_clip01():
    assert clip01(1.7) == 1.0
    assert clip01(-0.2) == 0.0
    assert clip01(0.25) == 0.25
    with pytest.raises(ValueError):
        clip01(float("nan"))


def test_raw_bound_can_be_negative():
    # E_S~ above chance (anti-fitting the random labels) pushes the raw value below 0
    assert ratt_bound(0.0, 1.0, 10 ** 6, 10 ** 6, 0.5, 2) < 0
    assert clip01(ratt_bound(0.0, 1.0, 10 ** 6, 10 ** 6, 0.5, 2)) == 0.0


# ---------------------------------------------------------------------------------------------
# validation

GOOD = dict(train_err_clean=0.1, random_err=0.4, n=100, m=50, delta=0.05, num_classes=2)


@pytest.mark.parametrize(
    "field,bad,pattern",
    [
        ("train_err_clean", -0.01, r"train_err_clean.*\[0, 1\]"),
        ("train_err_clean", 1.01, r"train_err_clean.*\[0, 1\]"),
        ("train_err_clean", float("nan"), r"train_err_clean.*\[0, 1\]"),
        ("train_err_clean", "0.1", r"train_err_clean.*\[0, 1\]"),
        ("random_err", -1e-9, r"random_err.*\[0, 1\]"),
        ("random_err", 2.0, r"random_err.*\[0, 1\]"),
        ("random_err", float("inf"), r"random_err.*\[0, 1\]"),
        ("n", 0, r"\bn must be an integer >= 1"),
        ("n", -5, r"\bn must be an integer >= 1"),
        ("n", 10.0, r"\bn must be an integer >= 1"),
        ("n", True, r"\bn must be an integer >= 1"),
        ("m", 0, r"\bm must be an integer >= 1"),
        ("m", 2.5, r"\bm must be an integer >= 1"),
        ("delta", 0.0, r"delta.*\(0, 1\)"),
        ("delta", 1.0, r"delta.*\(0, 1\)"),
        ("delta", -0.1, r"delta.*\(0, 1\)"),
        ("delta", float("nan"), r"delta.*\(0, 1\)"),
        ("num_classes", 1, r"num_classes must be an integer >= 2"),
        ("num_classes", 0, r"num_classes must be an integer >= 2"),
        ("num_classes", 3.0, r"num_classes must be an integer >= 2"),
    ],
)
def test_validation(field, bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        ratt_bound(**{**GOOD, field: bad})


@pytest.mark.parametrize("k", [2, 10])
def test_validation_in_each_form(k):
    with pytest.raises(ValueError, match="random_err"):
        ratt_bound(0.1, 1.5, 100, 50, 0.05, k)
    with pytest.raises(ValueError, match="delta"):
        ratt_bound_binary(0.1, 0.4, 100, 50, 1.5)
    with pytest.raises(ValueError, match="num_classes"):
        ratt_bound_multiclass(0.1, 0.4, 100, 50, 0.05, 1)
    with pytest.raises(ValueError, match=r"\bm must"):
        ratt_bound_multiclass(0.1, 0.4, 100, 0, 0.05, k)


def test_boundary_inputs_accepted():
    assert math.isfinite(ratt_bound(0, 0, 1, 1, 1e-300, 2))
    assert math.isfinite(ratt_bound(1, 1, 1, 1, 1 - 1e-16, 7))
    assert isinstance(ratt_bound(0, 1, 10, 10, 0.5, 3), float)
