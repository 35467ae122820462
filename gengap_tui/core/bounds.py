"""RATT generalization certificates (pure Python, no torch).

Reference
---------
S. Garg, S. Balakrishnan, J. Z. Kolter, Z. C. Lipton,
"RATT: Leveraging Unlabeled Data to Guarantee Generalization", ICML 2021,
arXiv:2105.00303. Authors' code: github.com/acmi-lab/RATT_generalization_bound.

Setting (RATT = Randomly Assign, Train and Track)
-------------------------------------------------
* ``S``  : ``n`` clean labelled training points drawn i.i.d. from the data distribution D.
* ``S~`` : ``m`` further points whose inputs come from the same input distribution but whose
  labels are drawn uniformly at random from the ``k`` classes (fresh unlabelled data,
  randomly labelled).
* The model ``f`` is trained on ``S ∪ S~`` (the theorems are stated for 0-1 empirical risk
  minimisation; the paper extends them to linear models trained by gradient descent and,
  under its early-learning assumption, to regularised ERM / deep nets).
* ``E_S(f)``  = 0-1 error of ``f`` on the clean labelled points ``S``.
* ``E_S~(f)`` = 0-1 error of ``f`` on ``S~`` measured against the *random* labels.
* ``E_D(f)``  = true (population / test) 0-1 error, the quantity being bounded.
* ``δ``       = failure probability; each statement holds with probability ≥ 1 − δ over the
  draws of ``S`` and ``S~`` (and of the random labels).

Intuition: a classifier that has *not* memorised the random labels errs on a random label with
probability about ``(k−1)/k`` whatever its true accuracy, so ``1 − (k/(k−1))·E_S~`` measures
how much it fitted noise; if that is small and ``E_S`` is small, ``E_D`` is small. A model
that memorised ``S~`` (``E_S~ = 0``) gets a vacuous certificate (≥ 1).

Both functions return the *raw* right-hand side of the inequality, which can be negative or
exceed 1; :func:`clip01` clips to ``[0, 1]`` for display.

Source note: the binary statement is Theorem 1 of the paper. The multiclass statement is the
paper's extension to ``k`` classes (Section on multiclass classification); its point estimate
``E_S + (k−1)(1 − k/(k−1)·E_S~)`` is exactly what the authors' code computes
(``model_helper.pred_accuracy`` in acmi-lab/RATT_generalization_bound), while the constant
``c`` of its concentration term is taken from the paper's statement as recalled (see
``ratt_bound_multiclass``).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

__all__ = [
    "clip01",
    "ratt_bound",
    "ratt_bound_binary",
    "ratt_bound_multiclass",
    "multiclass_constant",
]


# ---------------------------------------------------------------------------------------------
# validation


def _check_error(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number in [0, 1], got {value!r}")
    v = float(value)
    if not (0.0 <= v <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_delta(value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"delta must be a real number in the open interval (0, 1), got {value!r}")
    v = float(value)
    if not (0.0 < v < 1.0):  # also rejects NaN
        raise ValueError(f"delta must be in the open interval (0, 1), got {value!r}")
    return v


def _check_classes(value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"num_classes must be an integer >= 2, got {value!r}")
    if value < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------------
# bounds


def clip01(x: float) -> float:
    """Clip a raw bound to ``[0, 1]`` for display (an error rate can never exceed 1).

    Raises ``ValueError`` for NaN, which no validated input can produce.
    """
    x = float(x)
    if math.isnan(x):
        raise ValueError("clip01 got NaN")
    return min(1.0, max(0.0, x))


def ratt_bound_binary(train_err_clean: float, random_err: float, n: int, m: int,
                      delta: float) -> float:
    r"""RATT bound for binary classification — Theorem 1 of Garg et al., ICML 2021
    (arXiv:2105.00303).

    Statement (ERM with 0-1 loss on ``S ∪ S~``; ``S~`` labelled uniformly at random in
    {0, 1}): for any ``δ > 0``, with probability at least ``1 − δ`` over the random draws of
    ``S`` and ``S~``,

    .. math::

        E_D(f) \le E_S(f) + 1 - 2\,E_{\tilde S}(f)
                   + \Big(\sqrt{2}\,E_{\tilde S}(f) + 2 + \frac{m}{2n}\Big)
                     \sqrt{\frac{\log(4/\delta)}{m}} .

    Implemented exactly as::

        E_S + 1 - 2*E_St + (sqrt(2)*E_St + 2 + m/(2*n)) * sqrt(log(4/delta)/m)

    with ``log`` the natural logarithm.

    Parameters
    ----------
    train_err_clean : ``E_S``, error on the ``n`` clean labelled training points, in [0, 1].
    random_err      : ``E_S~``, error on the ``m`` randomly labelled points measured against
                      their random labels, in [0, 1].
    n               : number of clean labelled training points (>= 1).
    m               : number of randomly labelled points (>= 1).
    delta           : failure probability, in (0, 1).

    Returns the raw right-hand side (may exceed 1); see :func:`clip01`.

    Note: the ``m/(2n)`` part of the concentration term grows like ``sqrt(m)/n``, so the bound
    tightens with ``m`` only while ``m < 2n(√2·E_S~ + 2)``; the paper's experiments use
    ``m`` well below that (e.g. ``m ≤ n``).
    """
    es = _check_error("train_err_clean", train_err_clean)
    est = _check_error("random_err", random_err)
    n = _check_count("n", n)
    m = _check_count("m", m)
    delta = _check_delta(delta)
    conc = (math.sqrt(2.0) * est + 2.0 + m / (2.0 * n)) * math.sqrt(math.log(4.0 / delta) / m)
    return es + 1.0 - 2.0 * est + conc


def multiclass_constant(n: int, m: int, num_classes: int) -> float:
    """The constant ``c = 2k + √k + m/(n·√k)`` of the multiclass RATT bound.

    The paper states the multiclass bound "for some constant ``c ≤ 2k + √k + m/(n√k)``"; the
    certificate uses this upper value (the conservative, computable choice).
    """
    n = _check_count("n", n)
    m = _check_count("m", m)
    k = _check_classes(num_classes)
    rk = math.sqrt(k)
    return 2.0 * k + rk + m / (n * rk)


def ratt_bound_multiclass(train_err_clean: float, random_err: float, n: int, m: int,
                          delta: float, num_classes: int) -> float:
    r"""RATT bound for ``k``-class classification — the multiclass extension in Garg et al.,
    ICML 2021 (arXiv:2105.00303), Section "multiclass classification".

    Statement (ERM with 0-1 loss on ``S ∪ S~``; ``S~`` labelled uniformly at random among the
    ``k`` classes): for any ``δ > 0``, with probability at least ``1 − δ``,

    .. math::

        E_D(f) \le E_S(f) + (k-1)\Big(1 - \frac{k}{k-1}\,E_{\tilde S}(f)\Big)
                   + c\,\sqrt{\frac{\log(4/\delta)}{2m}},
        \qquad c \le 2k + \sqrt{k} + \frac{m}{n\sqrt{k}} .

    Implemented exactly as (``c`` taken at its stated upper value, natural ``log``)::

        c = 2*k + sqrt(k) + m/(n*sqrt(k))
        E_S + (k-1)*(1 - k/(k-1)*E_St) + c * sqrt(log(4/delta)/(2*m))

    Where ``k`` enters: a classifier that ignores the random labels errs on them with
    probability ``(k−1)/k``, so ``1 − (k/(k−1))·E_S~`` is the (rescaled) amount of noise
    fitted, and it is multiplied by ``k − 1``; ``k`` also enters the constant ``c``. The point
    estimate ``E_S + (k−1)(1 − k/(k−1)·E_S~)`` matches ``pred_err`` in the authors' code
    (``model_helper.pred_accuracy``, acmi-lab/RATT_generalization_bound).

    Parameters
    ----------
    train_err_clean : ``E_S``, error on the ``n`` clean labelled training points, in [0, 1].
    random_err      : ``E_S~``, error on the ``m`` randomly labelled points measured against
                      their random labels, in [0, 1].
    n               : number of clean labelled training points (>= 1).
    m               : number of randomly labelled points (>= 1).
    delta           : failure probability, in (0, 1).
    num_classes     : ``k`` (>= 2). ``ratt_bound`` sends ``k == 2`` to the sharper
                      :func:`ratt_bound_binary`; this function accepts ``k == 2`` too.

    Returns the raw right-hand side (may exceed 1); see :func:`clip01`.

    Note: as in the binary case, the ``m/(n√k)`` part of ``c`` makes the concentration term
    grow like ``sqrt(m)/n`` for very large ``m``; the bound tightens with ``m`` while
    ``m < n·√k·(2k + √k)``.
    """
    es = _check_error("train_err_clean", train_err_clean)
    est = _check_error("random_err", random_err)
    n = _check_count("n", n)
    m = _check_count("m", m)
    delta = _check_delta(delta)
    k = _check_classes(num_classes)
    c = multiclass_constant(n, m, k)
    return es + (k - 1) * (1.0 - k / (k - 1) * est) + c * math.sqrt(math.log(4.0 / delta) / (2.0 * m))


def ratt_bound(train_err_clean: float, random_err: float, n: int, m: int, delta: float,
               num_classes: int) -> float:
    """RATT upper bound on the test error (Garg et al., ICML 2021, arXiv:2105.00303).

    Dispatches to :func:`ratt_bound_binary` (Theorem 1) when ``num_classes == 2`` and to
    :func:`ratt_bound_multiclass` (the ``k``-class extension) otherwise. All inputs are
    validated; a ``ValueError`` names the offending argument and its allowed range:
    ``train_err_clean``, ``random_err`` in [0, 1]; ``n``, ``m`` integers >= 1; ``delta`` in
    (0, 1); ``num_classes`` integer >= 2.

    Returns the raw bound, which may exceed 1 (vacuous) — use :func:`clip01` for display.
    """
    k = _check_classes(num_classes)
    # validate everything up front so the error names the argument whichever branch runs
    _check_error("train_err_clean", train_err_clean)
    _check_error("random_err", random_err)
    _check_count("n", n)
    _check_count("m", m)
    _check_delta(delta)
    if k == 2:
        return ratt_bound_binary(train_err_clean, random_err, n, m, delta)
    return ratt_bound_multiclass(train_err_clean, random_err, n, m, delta, k)
