"""CUDA graphs of a trainer's training epoch and of its evaluation (`run.cuda_graphs = "auto"`).

The lab's models are tiny: on a GPU an epoch of the default preset is ~1000 kernel launches of a
few microseconds each, so Python and launch overhead, not arithmetic, set the pace. A CUDA graph
records the whole epoch (every batch's gather, forward, backward and optimizer step) once and
replays it with one launch; the evaluation on the full splits likewise.

How it stays the same training as the eager path:
- the epoch's data order is drawn outside the graph, from the run's own generator(s), exactly as
  eagerly, and copied into the buffer the graph reads (`static_perm`);
- the first epoch of every trainer runs eagerly (on a side stream): it creates the optimizer's
  state and the library handles a capture must not create; the graph is captured at the second;
- whatever the graph bakes in as a number (learning rate, weight decay) is part of its key: a
  live tweak recaptures at the next epoch; a cosine schedule (a new rate every epoch) trains
  eagerly, as do CPU runs;
- dropout and input noise draw from the default CUDA generator: a replay advances it by exactly
  what the recorded epoch consumes, so every epoch gets fresh masks, the same ones the eager path
  would draw (measured on an H200: a graphed run with dropout 0.5 and input noise equals the eager
  run);
- a graphed epoch cannot be interrupted between batches: a stop request ends the run at the end of
  the epoch (a few milliseconds) instead of after the current batch.

`tests/test_gpu.py` checks that graphed and eager runs agree and that a replayed epoch never syncs
with the host; `bench/gpu.sh` measures both (`--set run.cuda_graphs=off`).
"""

from __future__ import annotations

import contextlib
import gc
import weakref
from typing import Any, Callable, Iterator

import torch


@contextlib.contextmanager
def _recording(tr: Any, graph: torch.cuda.CUDAGraph) -> Iterator[None]:
    """Record into `graph`, with Python's cyclic garbage collector held off: a collection during
    the recording could free another (dead) trainer's graph, and destroying a graph while a stream
    is capturing invalidates the capture (seen on an H200 as `operation not permitted when stream
    is capturing (function reset)`, then a failed cuBLAS call, when benchmarks built trainers one
    after another)."""
    was_enabled = gc.isenabled()
    gc.disable()
    tr._capturing = True
    try:
        with torch.cuda.graph(graph):
            yield
    finally:
        tr._capturing = False
        if was_enabled:
            gc.enable()


class EpochGraphs:
    def __init__(self, trainer: Any):
        # a weak reference: no trainer <-> graphs cycle, so a dropped trainer frees its graphs at
        # once rather than whenever the cyclic collector runs
        self._tr = weakref.ref(trainer)
        self.warm = False
        self.train_graph: torch.cuda.CUDAGraph | None = None
        self.train_key: Any = None
        self.static_perm: torch.Tensor | None = None
        self.eval_warm: set = set()
        self.eval_graphs: dict[Any, tuple[torch.cuda.CUDAGraph, Any, torch.Tensor]] = {}
        self.captures = 0  # how many graphs were recorded (tests and benchmarks read these)
        self.replays = 0
        # why recording failed, if it did: the trainer then trains eagerly and says so once
        self.failed: str | None = None

    @property
    def tr(self) -> Any:
        return self._tr()

    # ----------------------------------------------------------------------------- training
    def train_epoch(self, perm: torch.Tensor) -> None:
        tr = self.tr
        if not self.warm:
            # the eager warm-up epoch, on a side stream as graph capture asks for
            s = torch.cuda.Stream(device=tr.device)
            s.wait_stream(torch.cuda.current_stream(tr.device))
            with torch.cuda.stream(s):
                tr._epoch_steps(perm, check_stop=True)
            torch.cuda.current_stream(tr.device).wait_stream(s)
            self.warm = True
            return
        key = tr._graph_key()
        if self.train_graph is None or key != self.train_key or self.static_perm.shape != perm.shape:
            try:
                self._capture_train(perm)
            except Exception as exc:  # noqa: BLE001 - an op that cannot be recorded: train eagerly
                self._give_up(exc)
                # (recording ran nothing: this epoch is still to do, and uncut like the graphed
                # epoch it replaces: it began as atomic, with no state captured before it)
                tr._epoch_steps(perm, check_stop=False)
                return
            self.train_key = key
        self.static_perm.copy_(perm)
        self.train_graph.replay()
        self.replays += 1

    def _capture_train(self, perm: torch.Tensor) -> None:
        tr = self.tr
        self.train_graph = None  # free the old graph's pool first
        self.static_perm = torch.empty(perm.shape, dtype=perm.dtype, device=perm.device)
        self.static_perm.copy_(perm)
        for g in tr.opt.param_groups:
            if "capturable" in g:  # Adam / AdamW: the step counter lives on the device, updated in the graph
                g["capturable"] = True
        tr.opt.zero_grad(set_to_none=True)  # the gradients are then allocated from the graph's pool
        graph = torch.cuda.CUDAGraph()
        with _recording(tr, graph):
            tr._epoch_steps(self.static_perm, check_stop=False)
        self.train_graph = graph
        self.captures += 1

    def _give_up(self, exc: BaseException) -> None:
        self.failed = f"CUDA graph recording failed ({type(exc).__name__}: {str(exc)[:200]}); training eagerly"
        self.train_graph = None
        self.eval_graphs.clear()
        try:
            torch.cuda.synchronize(self.tr.device)
        except RuntimeError:
            pass

    # ----------------------------------------------------------------------------- evaluation
    def evaluate(self, key: Any, fn: Callable[[], tuple[Any, torch.Tensor]]) -> tuple[Any, torch.Tensor]:
        """`fn()` computes (keys, one tensor of metrics) on the device without a host sync; the
        first call per `key` runs it eagerly, the second records it, later ones replay it. The
        returned tensor is the graph's output buffer: copy it out before the next call."""
        if key not in self.eval_warm:
            self.eval_warm.add(key)
            return fn()
        if key not in self.eval_graphs:
            graph = torch.cuda.CUDAGraph()
            try:
                with _recording(self.tr, graph):
                    keys, out = fn()
            except Exception as exc:  # noqa: BLE001
                self._give_up(exc)
                return fn()
            self.eval_graphs[key] = (graph, keys, out)
            self.captures += 1
        graph, keys, out = self.eval_graphs[key]
        graph.replay()
        self.replays += 1
        return keys, out
