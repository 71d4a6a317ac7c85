"""Network interpolation between a PSNR-oriented and a GAN generator (ESRGAN's DNI, IRSRGAN's net_interp.py).

    python scripts/net_interp.py --psnr_weights checkpoints/synthetic_sr_irsrnet/latest_net_G.pth \\
        --gan_weights checkpoints/synthetic_sr_irsrgan/latest_net_G_ema.pth [test.py options]

For each lambda (``--lambdas``, default 0.1 0.3 0.5 0.7 0.9; one value = a single blend) the
weights ``(1 - lambda) * psnr + lambda * gan`` are written to ``<out>/interp_<lambda>/latest_net_G.pth``
and evaluated by test.py's own code on the split its options name (``--dataroot``, ``--phase``, ``--tile``
...; every option this script does not know is passed to test.py). The blends have the architecture saved with
the GAN (else the PSNR) generator's run, written to each blend's ``train_opt.json`` so that test.py rebuilds it;
for files without one (imported weights), give the architecture flags (``--ngf/--nb/--gc/--scale``) and
``--model irsrgan`` is assumed unless given. Results: ``<out>/interp_<lambda>/test_latest/``
(images, HTML, metrics), a Markdown table on stdout, ``<out>/net_interp.csv`` and
``<out>/net_interp.png`` (metrics against lambda). Both files may be in any layout test.py loads (ours, BasicSR,
IRSRGAN's release, ESRGAN).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path
from typing import Sequence

import torch

from models.networks.sr_common import CONVENTION_BUFFERS
from models.networks.sr_weight_mapping import read_generator_state
from options.saved_config import SavedArchitecture, read_saved_architecture, write_config
from util.checkpoint import atomic_save
from util.errors import UserError, run_cli
from util.inference import run_test
from util.logging_setup import setup_logging

logger = logging.getLogger("net_interp")

DEFAULT_LAMBDAS = (0.1, 0.3, 0.5, 0.7, 0.9)


def interpolate(psnr: dict[str, torch.Tensor], gan: dict[str, torch.Tensor], weight: float) -> dict[str, torch.Tensor]:
    """``(1 - weight) * psnr + weight * gan`` for every floating-point tensor; exact at 0 and 1
    (integer buffers, if any, come from the nearer end)."""
    if psnr.keys() != gan.keys():
        different = sorted(set(psnr) ^ set(gan))
        raise UserError(f"the PSNR and GAN generators have different layers ({', '.join(different[:3])} ...); "
                        f"they must be the same architecture (--netG, --nb, --ngf, --gc, --scale)")
    blended = {}
    for key, a in psnr.items():
        b = gan[key]
        if key in CONVENTION_BUFFERS and not torch.equal(a, b):  # a blend of two meanings means neither
            raise UserError(f"the PSNR and GAN generators were trained with different {key} ({a.tolist()} and "
                            f"{b.tolist()}); blend generators of one run (the GAN stage starts from the PSNR one)")
        if a.shape != b.shape:
            raise UserError(f"{key} has shape {tuple(a.shape)} in the PSNR generator and {tuple(b.shape)} in the "
                            f"GAN generator; they must be the same architecture")
        if a.is_floating_point():
            blended[key] = (1.0 - weight) * a + weight * b
        else:
            blended[key] = (b if weight >= 0.5 else a).clone()
    return blended


def read_metric_means(web_dir: Path) -> dict[str, tuple[float, float]]:
    """``{metric: (mean, std)}`` from a test.py results folder (empty without references)."""
    path = web_dir / "metrics.json"
    if not path.is_file():
        return {}
    summary = json.loads(path.read_text())
    return {name: (float(value["mean"]), float(value["std"])) for name, value in summary.items()
            if isinstance(value, dict) and "mean" in value}


def markdown_table(rows: list[tuple[float, dict[str, tuple[float, float]]]]) -> str:
    names = list(rows[0][1]) if rows else []
    lines = ["| lambda | " + " | ".join(name.upper() for name in names) + " |",
             "|---:|" + "---:|" * len(names)]
    for weight, metrics in rows:
        cells = (f"{metrics[name][0]:.4f} ± {metrics[name][1]:.4f}" for name in names)
        lines.append(f"| {weight:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_plot(rows: list[tuple[float, dict[str, tuple[float, float]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows[0][1])
    weights = [weight for weight, _ in rows]
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        # Means only: the standard deviation across images (in the table) would hide the trend.
        axis.plot(weights, [metrics[name][0] for _, metrics in rows], marker="o")
        axis.set_xlabel("lambda (0 = PSNR model, 1 = GAN model)")
        axis.set_title(f"{name.upper()} (mean over images)")
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--psnr_weights", required=True, help="generator of the PSNR stage (lambda = 0)")
    parser.add_argument("--gan_weights", required=True, help="generator of the GAN stage (lambda = 1)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=list(DEFAULT_LAMBDAS),
                        help="interpolation weights of the GAN generator")
    parser.add_argument("--out", default="./results/net_interp", help="folder for the blends and their results")
    parser.add_argument("--no_eval", action="store_true", help="only write the blended generators")
    args, test_args = parser.parse_known_args(argv)
    if any(not 0.0 <= weight <= 1.0 for weight in args.lambdas):
        raise UserError(f"--lambdas must lie in [0, 1], got {args.lambdas}")
    return args, test_args


def saved_architecture_of(weights: str) -> SavedArchitecture | None:
    """The architecture saved with the run a generator file ``<run folder>/<tag>_net_G*.pth`` belongs to; None
    for a file of another name or of a run without one (imported or upstream weights)."""
    path = Path(weights)
    tag, separator, _ = path.name.partition("_net_")
    return read_saved_architecture(path.parent, tag) if separator else None


def main(argv: Sequence[str] | None = None) -> list[tuple[float, dict[str, tuple[float, float]]]]:
    args, test_args = parse_args(argv)
    setup_logging()
    saved = saved_architecture_of(args.gan_weights) or saved_architecture_of(args.psnr_weights)
    if saved is None:  # a --model given by the user comes later and wins
        test_args = ["--model", "irsrgan", *test_args]
    else:
        logger.info("architecture of the blends: %s (from %s)", saved.values, saved.source)
    psnr, psnr_layout = read_generator_state(args.psnr_weights)
    gan, gan_layout = read_generator_state(args.gan_weights)
    logger.info("PSNR generator %s (%s layout), GAN generator %s (%s layout)", args.psnr_weights, psnr_layout,
                args.gan_weights, gan_layout)
    out = Path(args.out)
    rows = []
    for weight in args.lambdas:
        name = f"interp_{weight:.2f}"
        atomic_save(interpolate(psnr, gan, weight), out / name / "latest_net_G.pth")
        if saved is not None:  # what test.py rebuilds the blend from
            write_config(out / name, saved.values, {"psnr_weights": args.psnr_weights,
                                                    "gan_weights": args.gan_weights, "lambda": weight})
        if args.no_eval:
            continue
        # test.py's own loop on the blend; our folder options come last so they win.
        run = run_test([*test_args, "--checkpoints_dir", str(out), "--results_dir", str(out), "--name", name,
                        "--epoch", "latest", "--test_weights", "raw"])
        rows.append((weight, read_metric_means(run.web_dir)))
    if args.no_eval:
        logger.info("blended generators written to %s/interp_*/latest_net_G.pth", out)
        return rows
    if not rows[0][1]:
        logger.info("no reference images in the split: SR images are in %s/interp_*/; no metrics", out)
        return rows
    table = markdown_table(rows)
    print(table)
    with open(out / "net_interp.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        names = list(rows[0][1])
        writer.writerow(["lambda", *(f"{name}_{stat}" for name in names for stat in ("mean", "std"))])
        for weight, metrics in rows:
            writer.writerow([weight, *(f"{value:.6f}" for name in names for value in metrics[name])])
    save_plot(rows, out / "net_interp.png")
    logger.info("table in %s, plot in %s", out / "net_interp.csv", out / "net_interp.png")
    return rows


if __name__ == "__main__":
    run_cli(main)
