"""Image networks at speed (issue 23, item 9): each section is a function of its own, run with
`--section NAME` (repeatable; default: all), and prints its numbers and ratios.

    python bench/images.py [--device cpu|cuda|auto] [--section widths] [--section resnet] [--threads N]

Sections:

- `widths`: a cnn2d width sweep, k = 1..64 (14 widths) x 4 seeds (56 members), trained *grouped*
  (one `MultiTrainer`: grouped convolutions, width buckets padded to their widest, `Stacked2D`)
  against *one at a time* (56 solo `Trainer`s one after another), same process, same data. Each
  contender does what a sweep's epoch does: one training pass plus loss and error on the full
  training and validation splits in eval mode, ended by the one device-to-host copy. Interleaved
  rounds after a warm-up epoch; medians. Target on a GPU: grouped >= 3x faster. On a CPU the
  images are tiny (3x8x8, 256 training images): a CPU pays for every multiply-add, so grouping
  saves little there beyond Python and launch overhead; the GPU path is the one that matters.
- `resnet`: the pre-activation ResNet-18 at k = 64 on CIFAR-shaped random tensors (3x32x32, 10
  classes): training images/s of a plain PyTorch loop (SGD with momentum, bf16 autocast,
  channels_last on CUDA) and of the lab's own trainer (`run.precision = "bfloat16"`) on the same
  model and batch size, its training pass and its full-split evaluation timed apart. Target on an
  H100: >= 45,000 training images/s (~150 TFLOP/s at ~3.3 GFLOP per training image). On a CPU: one
  small batch in float32 (a CPU emulates bf16), for the code path only.

- `take`: taking one training batch from CIFAR-shaped uint8 images (50,000 x 3x32x32, batch 128,
  the lab's memory format for the layout): `DeviceImages[idx]` (gather + normalize: evaluation's
  path) against plain PyTorch `(x[idx].float() - mean) / std`, and `take(idx, draws, 4)` with
  crop-flip (gather, augment, normalize: the training step's) against plain PyTorch's pad + a crop
  and a flip per image + normalize; and the normalization of one gathered batch alone: the lab's
  (`DeviceImages._finish`), the two-step formula (float copy, mul_, add_), one `torch.addcmul`
  and plain PyTorch's (the lab takes addcmul on CUDA, the two-step formula on a CPU's NCHW: faster
  there). Same process, interleaved, medians; `--layout flat|image`.
- `epoch`: a whole lab epoch (training with crop-flip drawn on the device from uint8 images, then
  the full-split evaluation) against a plain loop with a DataLoader and per-sample crop / flip
  transforms (num_workers = cores), same network, same process: `bench/image_epoch.py` (its own
  options there). Target on a GPU: >= 3x.

Data are random tensors of the right shape (no files; the speed does not depend on the pixels).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gengap_tui.config import build  # noqa: E402
from gengap_tui.core.data import Dataset  # noqa: E402
from gengap_tui.core.models import PreActResNet18, conv_format  # noqa: E402
from gengap_tui.core.multi import MultiTrainer  # noqa: E402
from gengap_tui.core.sweep import MAX_WASTE_IMAGES  # noqa: E402
from gengap_tui.core.trainer import Trainer, device_name, pick_device  # noqa: E402

WIDTHS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64)  # 14 widths, k = 1..64
SEEDS = 4


def random_images(n_train: int, n_val: int, n_test: int, shape: tuple[int, int, int], classes: int = 10) -> Dataset:
    rng = np.random.default_rng(0)
    D = int(np.prod(shape))

    def split(n):
        return rng.standard_normal((n, D), dtype=np.float32), rng.integers(0, classes, n).astype(np.int64)

    (xtr, ytr), (xv, yv), (xte, yte) = split(n_train), split(n_val), split(n_test)
    return Dataset(name="random-images", x_train=xtr, y_train=ytr.copy(), y_train_clean=ytr,
                   changed=np.zeros(n_train, bool), x_val=xv, y_val=yv, x_test=xte, y_test=yte,
                   num_classes=classes, image_shape=shape)


def image_config(kind: str, width: int, device: torch.device, *more: str):
    # data.dataset names an image set so that the config accepts an image model; the data come
    # from `random_images` (passed to the trainer), never from data.path
    return build({"name": "bench-images"}, [
        "data.dataset=cifar10", "data.path=/nonexistent", f"model.kind={kind}", f"model.width={width}",
        "early_stopping.enabled=false", f"device={device.type}", *more])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_seconds(tr: Trainer) -> float:
    """One training pass and the full-split evaluation (its one host copy ends it)."""
    t0 = time.perf_counter()
    tr._train_epoch(tr.gen)
    tr.evaluate()
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------
def section_widths(device: torch.device, rounds: int, max_waste: float | None) -> dict:
    cuda = device.type == "cuda"
    shape, n_train, n_eval = ((3, 32, 32), 5000, 1000) if cuda else ((3, 8, 8), 256, 64)
    data = random_images(n_train, n_eval, n_eval, shape)
    opt = ["optim.optimizer=sgd", "optim.lr=0.01", "optim.batch_size=128"]
    waste = MAX_WASTE_IMAGES[device.type] if max_waste is None else max_waste
    members = [(s, w) for w in WIDTHS for s in range(SEEDS)]
    grouped = MultiTrainer(image_config("cnn2d", WIDTHS[0], device, *opt), device, data, members=members,
                           max_waste=waste, load_fn=lambda c: data)
    solos = [Trainer(image_config("cnn2d", w, device, f"seed={s}", *opt), device, data) for s, w in members]
    print(f"cnn2d width sweep: {len(WIDTHS)} widths {WIDTHS[0]}..{WIDTHS[-1]} x {SEEDS} seeds = {len(members)} "
          f"members on {shape} images, {n_train} train / {n_eval} val, batch 128, {device_name(device)}; grouped "
          f"in {len(grouped.model.groups)} buckets (max_waste {waste}, padded_fraction "
          f"{grouped.model.padded_fraction():.2f})", flush=True)
    # warm-up: one epoch each (cuDNN's algorithm choice, allocator, first-call costs)
    epoch_seconds(grouped)
    for tr in solos:
        epoch_seconds(tr)
    sync(device)
    g_times, s_times = [], []
    for r in range(rounds):
        g_times.append(epoch_seconds(grouped))
        s_times.append(sum(epoch_seconds(tr) for tr in solos))
        print(f"  round {r + 1}: grouped {g_times[-1] * 1e3:.1f} ms/epoch, one at a time {s_times[-1] * 1e3:.1f} "
              f"ms/epoch", flush=True)
    g, s = statistics.median(g_times), statistics.median(s_times)
    ratio = s / g
    target = "target >= 3x on a GPU: " + ("met" if ratio >= 3 else "MISSED") if cuda else "CPU: information only"
    print(f"cnn2d width sweep: grouped {g * 1e3:.1f} ms/epoch, one at a time {s * 1e3:.1f} ms/epoch -> "
          f"ratio {ratio:.2f}x ({target})", flush=True)
    return {"grouped_s": g, "one_at_a_time_s": s, "ratio": ratio}


# ------------------------------------------------------------------------------------------------
def section_resnet(device: torch.device, steps: int, batch: int | None, width: int, precision: str | None) -> dict:
    cuda = device.type == "cuda"
    batch = batch or (512 if cuda else 4)
    steps = steps or (40 if cuda else 1)
    # bf16 autocast is what the GPU path uses; a CPU emulates it (~10x slower than float32 here)
    precision = precision or ("bfloat16" if cuda else "float32")
    shape = (3, 32, 32)
    fmt = conv_format(device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")
    if cuda:
        torch.backends.cudnn.benchmark = True

    # a plain PyTorch loop: the model, bf16 autocast, channels_last (CUDA), SGD with momentum
    torch.manual_seed(0)
    model = PreActResNet18(shape, 10, width).to(device, memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device=device)

    def step():
        with amp:
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3 if cuda else 1):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    plain = batch * steps / (time.perf_counter() - t0)
    model = opt = None  # free the plain loop's memory before the lab's model

    # the lab's trainer on the same model: a training pass over n images, then its evaluation
    n = batch * steps
    data = random_images(n, max(10, n // 4), 10, shape)
    tr = Trainer(image_config("resnet18", width, device, f"run.precision={precision}", "optim.optimizer=sgd",
                              "optim.lr=0.01", f"optim.batch_size={batch}"), device, data)
    tr._train_epoch(tr.gen)  # warm-up (on CUDA with graphs on: the eager first epoch)
    sync(device)
    t0 = time.perf_counter()
    tr._train_epoch(tr.gen)
    sync(device)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    tr.evaluate()
    t_eval = time.perf_counter() - t0
    lab = n / t_train
    target = ("target >= 45,000 on an H100: " + ("met" if lab >= 45000 else "MISSED")) if cuda else \
        "CPU: code path only"
    print(f"resnet18 k={width} on {shape}, batch {batch}, {precision}, {fmt}, {device_name(device)}: plain "
          f"PyTorch loop {plain:,.0f} training images/s; lab trainer {lab:,.0f} training images/s ({target}), "
          f"ratio lab/plain {lab / plain:.2f}; its evaluation of {n + len(data.y_val)} images "
          f"{(n + len(data.y_val)) / t_eval:,.0f} images/s", flush=True)
    if tr._graphs is not None and tr._graphs.failed:
        print(f"  (CUDA graphs: {tr._graphs.failed})")
    return {"plain_images_per_s": plain, "lab_images_per_s": lab}


def section_epoch(device: torch.device, threads: int) -> int:
    """A whole lab epoch with crop-flip against a DataLoader loop with per-sample transforms
    (`bench/image_epoch.py`, where its options live): resnet18 k = 64 on CIFAR-sized data in bf16
    on CUDA; a small cnn2d on a CPU."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import image_epoch

    if device.type == "cuda":
        args = ["--model", "resnet18", "--width", "64", "--n-train", "50000", "--n-val", "10000",
                "--precision", "bfloat16", "--epochs", "2", "--rounds", "1"]
    else:
        args = ["--model", "cnn2d", "--width", "8", "--n-train", "2000", "--n-val", "500", "--epochs", "2"]
    return image_epoch.main(args + ["--device", device.type, "--threads", str(threads)])


def section_take(device: torch.device, layout: str, rounds: int) -> dict:
    """Batches from CIFAR-shaped uint8 images: the lab's against plain PyTorch's."""
    import torch.nn.functional as F

    from gengap_tui.core import augment
    from gengap_tui.core.images import DeviceImages

    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randint(0, 256, (50_000, 3, 32, 32), dtype=torch.uint8, generator=gen, device=device)
    mean = torch.tensor([125.3, 123.0, 113.9], device=device)
    std = torch.tensor([63.0, 62.1, 66.7], device=device)
    images = DeviceImages(x, mean, std, layout)
    px, m, s = images.pixels, mean.view(3, 1, 1), std.view(3, 1, 1)
    B, pad, steps = 128, 4, 200

    def plain_norm(idx, _draws):
        out = (px[idx].float() - m) / s
        return out.reshape(B, -1) if layout == "flat" else out

    def plain_aug(idx, draws):
        p = F.pad(px[idx], (pad, pad, pad, pad))
        out = torch.stack([p[b, :, dy:dy + 32, dx:dx + 32].flip(-1) if f else p[b, :, dy:dy + 32, dx:dx + 32]
                           for b, (dy, dx, f) in enumerate(draws.tolist())])
        out = (out.float() - m) / s
        return out.reshape(B, -1) if layout == "flat" else out.contiguous(memory_format=images.format)

    gathered = px[:B].clone(memory_format=images.format)  # one batch's stored pixels, already gathered

    def two_step(*_):  # the normalization before review finding 9: a float copy, mul_, add_
        x = gathered.float().mul_(images.scale).add_(images.shift)
        return x.reshape(B, -1) if layout == "flat" else x.contiguous(memory_format=images.format)

    def addcmul(*_):  # one kernel, whatever the device (what the lab does on CUDA)
        x = torch.addcmul(images.shift, gathered, images.scale)
        return x.reshape(B, -1) if layout == "flat" else x.contiguous(memory_format=images.format)

    def plain_finish(*_):
        out = (gathered.float() - m) / s
        return out.reshape(B, -1) if layout == "flat" else out.contiguous(memory_format=images.format)

    contenders = {"normalize: plain": plain_norm, "normalize: lab": lambda idx, _d: images[idx],
                  "crop-flip: plain": plain_aug, "crop-flip: lab": lambda idx, d: images.take(idx, d, pad),
                  "finish: plain": plain_finish, "finish: two-step": two_step,
                  "finish: addcmul": addcmul, "finish: lab": lambda *_: images._finish(gathered)}
    batches = [(torch.randint(0, 50_000, (B,), generator=gen, device=device),
                augment.draw("crop-flip", pad, B, gen, device)) for _ in range(steps)]
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for r in range(rounds + 1):
        for name, fn in contenders.items():
            sync(device)
            t = time.perf_counter()
            for idx, d in batches:
                fn(idx, d)
            sync(device)
            if r:  # the first round warms up
                times[name].append((time.perf_counter() - t) / steps * 1e6)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"take ({device_name(device)}, {torch.get_num_threads()} threads, layout {layout}, batch {B}, "
          f"{rounds} rounds of {steps}): normalize plain {med['normalize: plain']:.0f} µs, lab "
          f"{med['normalize: lab']:.0f} µs ({med['normalize: plain'] / med['normalize: lab']:.2f}x); crop-flip "
          f"plain {med['crop-flip: plain']:.0f} µs, lab {med['crop-flip: lab']:.0f} µs "
          f"({med['crop-flip: plain'] / med['crop-flip: lab']:.2f}x); normalizing a gathered batch alone: plain "
          f"{med['finish: plain']:.0f} µs, the two-step formula {med['finish: two-step']:.0f} µs "
          f"({med['finish: plain'] / med['finish: two-step']:.2f}x), one addcmul {med['finish: addcmul']:.0f} µs "
          f"({med['finish: plain'] / med['finish: addcmul']:.2f}x), lab {med['finish: lab']:.0f} µs "
          f"({med['finish: plain'] / med['finish: lab']:.2f}x)", flush=True)
    return med


SECTIONS = ("widths", "resnet", "take", "epoch")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--section", action="append", choices=SECTIONS, help="run only these (default: all)")
    ap.add_argument("--threads", type=int, default=max(1, (len(os.sched_getaffinity(0)) - 1)),
                    help="CPU threads for torch (default: cores - 1, as the lab)")
    ap.add_argument("--rounds", type=int, default=2, help="widths, take: timed rounds")
    ap.add_argument("--max-waste", type=float, default=None, help="widths: padding allowed per bucket")
    ap.add_argument("--steps", type=int, default=0, help="resnet: timed steps (default 40 on CUDA, 2 on a CPU)")
    ap.add_argument("--batch", type=int, default=None, help="resnet: batch size (default 512 on CUDA, 8 on a CPU)")
    ap.add_argument("--width", type=int, default=64, help="resnet: k")
    ap.add_argument("--precision", choices=["bfloat16", "float32"], default=None,
                    help="resnet: autocast (default: bfloat16 on CUDA, float32 on a CPU, which emulates bf16)")
    ap.add_argument("--layout", action="append", choices=["image", "flat"], help="take: layouts (default: both)")
    a = ap.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    for name in a.section or SECTIONS:
        if name == "widths":
            section_widths(device, a.rounds, a.max_waste)
        elif name == "resnet":
            section_resnet(device, a.steps, a.batch, a.width, a.precision)
        elif name == "take":
            for layout in a.layout or ["image", "flat"]:
                section_take(device, layout, a.rounds)
        elif name == "epoch":
            section_epoch(device, a.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
