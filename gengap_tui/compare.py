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


def diff_labels(configs: list[dict[str, Any]], names: list[str] | None = None, max_keys: int = 3) -> list[str]:
    """One label per config, from the keys whose values differ (e.g. `wd=0.001 dropout=0.3`).
    Identical configs fall back to their names (or #1, #2...)."""
    flat = [flatten(c or {}) for c in configs]
    keys = sorted({k for f in flat for k in f} - IGNORED)
    differing = [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]
    leaves = [k.split(".")[-1] for k in keys]
    ambiguous = {leaf for leaf in leaves if leaves.count(leaf) > 1}  # e.g. enabled: early stopping or RATT?

    def name(k: str) -> str:
        leaf = k.split(".")[-1]
        return ABBREV.get(k) or (k if leaf in ambiguous else leaf)

    labels = []
    for i, f in enumerate(flat):
        parts = [f"{name(k)}={_fmt(f.get(k))}" for k in differing[:max_keys]]
        if len(differing) > max_keys:
            parts.append("…")
        label = " ".join(parts)
        if not label:
            label = (names[i] if names else None) or f"#{i + 1}"
        labels.append(label)
    return labels
