"""Labels for compared runs: each run named by the settings that differ between them."""

from __future__ import annotations

from typing import Any

ABBREV = {
    "optim.lr": "lr", "regularization.weight_decay": "wd", "regularization.dropout": "dropout",
    "regularization.l1": "l1", "regularization.input_noise": "in_noise", "regularization.decoupled": "decoupled",
    "regularization.augment": "aug", "regularization.crop_pad": "crop_pad",
    "noise.label_noise": "noise", "noise.kind": "noise_kind", "model.width": "width", "model.depth": "depth",
    "model.kind": "model", "optim.optimizer": "opt", "optim.batch_size": "bs", "early_stopping.patience": "patience",
    "early_stopping.observe": "observe", "seed": "seed", "data.dataset": "data", "data.n_train": "n_train",
}
MAX_COMPARE = 4  # runs overlaid at once (f3, --compare)
IGNORED = {"name", "description", "torch_version", "device_name", "device", "optim.epochs"}


def flatten(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _order(flat: list[dict[str, Any]], differing: list[str]) -> list[str]:
    """The differing keys, most distinguishing first: the keys that alone tell two runs apart,
    then each next key the one that tells apart the most pairs of runs that the keys before it
    left alike (ties: more distinct values, then the name)."""
    values = {k: [repr(f.get(k)) for f in flat] for k in differing}
    n = len(flat)
    alike = {(i, j) for i in range(n) for j in range(i + 1, n)}
    # a key that alone tells two runs apart (a sweep's neighbours) comes first: without it they
    # would read alike, and a legend cut by the plot's width loses its end
    sole = {next(k for k in differing if values[k][i] != values[k][j]) for i, j in alike
            if sum(values[k][i] != values[k][j] for k in differing) == 1}
    order: list[str] = []
    for first in (sorted(sole), [k for k in differing if k not in sole]):
        order += _greedy(values, first, alike)
        alike = {(i, j) for i, j in alike if all(values[k][i] == values[k][j] for k in order)}
    return order


def _greedy(values: dict[str, list[str]], keys: list[str], alike: set[tuple[int, int]]) -> list[str]:
    order: list[str] = []
    left = list(keys)
    while left:
        def score(k: str) -> tuple:
            v = values[k]
            return (-sum(v[i] != v[j] for i, j in alike), -len(set(v)), k)
        best = min(left, key=score)
        order.append(best)
        left.remove(best)
        alike = {(i, j) for i, j in alike if values[best][i] == values[best][j]}
    return order


def diff_labels(configs: list[dict[str, Any]], names: list[str] | None = None, max_keys: int = 3) -> list[str]:
    """One label per config, from the keys whose values differ between them (e.g. `wd=0.001
    dropout=0.3`), most distinguishing first: as many keys as tell every two configs apart, at
    least `max_keys` where there are so many. Two configs never share a label: identical ones
    fall back to their names (or #1, #2...)."""
    flat = [flatten(c or {}) for c in configs]
    keys = sorted({k for f in flat for k in f} - IGNORED)
    differing = [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]
    leaves = [k.split(".")[-1] for k in keys]
    ambiguous = {leaf for leaf in leaves if leaves.count(leaf) > 1}  # e.g. enabled: early stopping or RATT?

    def name(k: str) -> str:
        leaf = k.split(".")[-1]
        return ABBREV.get(k) or (k if leaf in ambiguous else leaf)

    order = _order(flat, differing)
    # enough keys to tell every pair apart (the greedy order puts them first), at least max_keys
    needed = 0
    while needed < len(order) and len({tuple(repr(f.get(k)) for k in order[:needed]) for f in flat}) \
            < len({tuple(repr(f.get(k)) for k in order) for f in flat}):
        needed += 1
    shown = order[:max(needed, max_keys)]
    labels = []
    for i, f in enumerate(flat):
        parts = [f"{name(k)}={_fmt(f.get(k))}" for k in shown]
        if len(order) > len(shown):
            parts.append("…")
        labels.append(" ".join(parts))
    # configs alike in every setting (or none differs): their names tell them apart
    for i, label in enumerate(labels):
        if not label or labels.count(label) > 1:
            fallback = (names[i] if names else None) or f"#{i + 1}"
            labels[i] = f"{label} ({fallback})" if label else fallback
    return labels
