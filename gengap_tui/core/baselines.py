"""Nonparametric reference lines: k-nearest neighbours, computed on the device in chunks."""

from __future__ import annotations

import torch

CHUNK = 1024


def _distances(q: torch.Tensor, ref: torch.Tensor, metric: str) -> torch.Tensor:
    if metric == "euclidean":
        # the direct form, not the matmul expansion: a point is then exactly at distance 0
        # from itself, so 1-NN training error is exactly 0
        return torch.cdist(q, ref, compute_mode="donot_use_mm_for_euclid_dist")
    if metric == "manhattan":
        return torch.cdist(q, ref, p=1)
    if metric == "cosine":
        qn = torch.nn.functional.normalize(q, dim=1)
        rn = torch.nn.functional.normalize(ref, dim=1)
        return 1.0 - qn @ rn.T
    raise ValueError(f"unknown k-NN metric {metric!r} (allowed: euclidean, cosine, manhattan)")


@torch.inference_mode()
def knn_predict(x_ref: torch.Tensor, y_ref: torch.Tensor, x: torch.Tensor, k: int, metric: str,
                num_classes: int) -> torch.Tensor:
    """Majority vote of the k nearest reference points (ties go to the nearest neighbour's
    class). A query that is itself a reference point counts as its own neighbour, so 1-NN on
    its own training set has zero error: it interpolates."""
    x_ref, x = x_ref.flatten(1).float(), x.flatten(1).float()
    k = min(k, len(y_ref))
    preds = []
    for i in range(0, len(x), CHUNK):
        d = _distances(x[i : i + CHUNK], x_ref, metric)
        idx = d.topk(k, dim=1, largest=False).indices  # sorted, nearest first
        labels = y_ref[idx]
        if k == 1:
            preds.append(labels[:, 0])
            continue
        votes = torch.nn.functional.one_hot(labels, num_classes).sum(1).float()
        # break ties toward the class of the nearest neighbour among the tied classes
        votes += 0.5 * torch.nn.functional.one_hot(labels[:, 0], num_classes)
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_error(x_ref, y_ref, x, y, k: int, metric: str, num_classes: int) -> float:
    return float((knn_predict(x_ref, y_ref, x, k, metric, num_classes) != y).float().mean())


def reference_lines(tr) -> dict[str, float]:
    """The baselines a trainer's config asks for (`baselines.knn`, `baselines.ntk`), on its
    device-resident splits: `baseline_knn_*_err` and `baseline_ntk_*_err`."""
    from .images import rows

    out: dict[str, float] = {}
    cfg, y = tr.cfg, tr.y_train_ref
    # an image set's splits as normalized rows (the pixels the networks see, flattened)
    x_train, x_val, x_test = rows(tr.x_train), rows(tr.x_val), rows(tr.x_test)
    if cfg.baselines.knn:
        b = cfg.baselines

        def err(x: torch.Tensor, t: torch.Tensor) -> float:
            return knn_error(x_train, y, x, t, b.knn_k, b.knn_metric, tr.data.num_classes)

        out.update(baseline_knn_train_err=err(x_train, y), baseline_knn_val_err=err(x_val, tr.y_val),
                   baseline_knn_test_err=err(x_test, tr.y_test))
    if cfg.baselines.ntk:
        from .ntk import ntk_regression

        # the infinite-width ReLU MLP of this depth, trained to convergence (kernel regression), on
        # flat inputs whatever model.kind is (`ntk_note` says so for the other kinds)
        val_pred, test_pred = ntk_regression(x_train, y, [x_val, x_test], cfg.model.depth,
                                             tr.data.num_classes)
        out["baseline_ntk_val_err"] = float((val_pred != tr.y_val).float().mean())
        out["baseline_ntk_test_err"] = float((test_pred != tr.y_test).float().mean())
    return out


def ntk_note(cfg) -> str | None:
    """What the NTK line is when the model is not an MLP (a `warning` event at the start), else None."""
    if not cfg.baselines.ntk or cfg.model.kind == "mlp":
        return None
    return (f"baselines.ntk: the NTK line is the kernel of an infinite-width ReLU MLP of depth {cfg.model.depth} "
            f"on the flattened inputs, not model.kind {cfg.model.kind!r}'s own kernel")
