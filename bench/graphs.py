"""Does capturing the training step pay? Eager vs `torch.compile(mode="reduce-overhead")` vs a
hand-captured CUDA graph, for one full-batch training step of the default preset's MLP (and of 8
stacked seeds), same process, same data.

    python bench/graphs.py [--device cuda] [--steps 300] [--seeds 8]

The lab's models are launch-bound on a GPU (an MNIST-1D step is ~2 MFLOP per example), so the
question is how much of a step is Python and kernel launches. The trainer uses the eager path
today; this benchmark is what decides whether graphs go in (issue 5: "measure, keep what wins").
On a CPU the CUDA-graph row is skipped; `torch.compile` is timed there too, but its one-off
compile time (tens of seconds on the 2-core box) already rules it out for seconds-long runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from gengap_tui import presets
from gengap_tui.core.data import load
from gengap_tui.core.models import build_model
from gengap_tui.core.multi import MultiTrainer
from gengap_tui.core.trainer import pick_device


def timed(step, steps: int, sync) -> float:
    for _ in range(10):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - t0) / steps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile on CPUs)")
    args = ap.parse_args()
    dev = pick_device(args.device)
    cfg = presets.load("default", [f"device={dev.type}"])
    data = load(cfg)
    bs = cfg.optim.batch_size
    x = torch.from_numpy(data.x_train[:bs]).to(dev)
    y = torch.from_numpy(data.y_train[:bs]).to(dev)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    results: dict[str, float] = {}

    def make_step(model, opt, fwd, mark: bool = False, set_to_none: bool = True):
        def step():
            if mark:  # reduce-overhead: the previous step's graph outputs may be overwritten now
                torch.compiler.cudagraph_mark_step_begin()
            loss = F.cross_entropy(fwd(x), y)
            # (the trainer's way; a compiled graph's gradients must not be read after the next
            # step begins, so they are dropped, not zeroed; a hand-captured graph keeps static ones)
            opt.zero_grad(set_to_none=set_to_none)
            loss.backward()
            opt.step()
        return step

    torch.manual_seed(0)
    model = build_model(cfg, data.input_dim, data.num_classes).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    results["eager"] = timed(make_step(model, opt, model), args.steps, sync)

    if not args.no_compile:
        torch.manual_seed(0)
        model_c = build_model(cfg, data.input_dim, data.num_classes).to(dev)
        opt_c = torch.optim.Adam(model_c.parameters(), lr=1e-3, fused=True)
        t0 = time.perf_counter()
        fwd = torch.compile(model_c, mode="reduce-overhead" if dev.type == "cuda" else "default")
        step_c = make_step(model_c, opt_c, fwd, mark=dev.type == "cuda")
        step_c()
        sync()
        results["compile (first step incl. compile, s)"] = time.perf_counter() - t0
        results["torch.compile"] = timed(step_c, args.steps, sync)

    if dev.type == "cuda":
        torch.manual_seed(0)
        model_g = build_model(cfg, data.input_dim, data.num_classes).to(dev)
        opt_g = torch.optim.Adam(model_g.parameters(), lr=1e-3, fused=True, capturable=True)
        step_g = make_step(model_g, opt_g, model_g, set_to_none=False)
        s = torch.cuda.Stream(dev)
        s.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(s):
            for _ in range(3):
                step_g()
        torch.cuda.current_stream(dev).wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step_g()
        results["CUDA graph"] = timed(graph.replay, args.steps, sync)

    # stacked seeds: one step of K models
    mcfg = presets.load("default", [f"device={dev.type}", f"run.seeds={args.seeds}"])
    mt = MultiTrainer(mcfg, dev, data)
    xs = x.unsqueeze(0).expand(args.seeds, -1, -1).contiguous()
    ys = y.repeat(args.seeds)

    def mstep():
        out = mt.model(xs)
        loss = F.cross_entropy(out.reshape(-1, data.num_classes), ys) * args.seeds
        mt.opt.zero_grad(set_to_none=False)
        loss.backward()
        mt.opt.step()

    results[f"eager, {args.seeds} stacked seeds"] = timed(mstep, args.steps, sync)

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"device: {name}, torch {torch.__version__}, default preset MLP, batch {bs}")
    for k, v in results.items():
        unit = "s" if k.startswith("compile (") else "ms/step"
        ratio = "" if unit == "s" else f"   ({results['eager'] / v:.2f}x eager)"
        print(f"  {k:<40} {v:8.3f} {unit}{ratio}")
    print(f"  per-seed cost when stacked: {results[f'eager, {args.seeds} stacked seeds'] / results['eager']:.2f}x "
          f"one seed for {args.seeds} seeds")


if __name__ == "__main__":
    main()
