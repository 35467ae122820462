"""What the per-epoch cost benches share (examples_cost.py, norms_cost.py, sysmetrics.py): the
same flags and a trainer's config with early stopping off, the device asked for and torch given the
config's threads, so their ratios are measured the same way."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gengap_tui import presets  # noqa: E402
from gengap_tui.config import cpu_threads  # noqa: E402


def parse(doc: str, preset: str, epochs: int) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=preset)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[])
    return ap.parse_args()


def config(args: argparse.Namespace):
    """The preset with the flags applied, early stopping off; torch gets the config's threads."""
    import torch

    cfg = presets.load(args.preset, args.set + [f"optim.epochs={args.epochs}", "early_stopping.enabled=false",
                                                f"device={args.device}"])
    torch.set_num_threads(cpu_threads(cfg.run.threads))
    return cfg
