"""Export a trained generator to ONNX and TorchScript and check both against PyTorch.

    python scripts/export.py --name NAME [test.py options: --checkpoints_dir, --epoch, --dataroot ...]

The architecture comes from the run's saved configuration (options/saved_config.py); for a run without one
(upstream weights), give --model and the architecture flags it was trained with.

Loads the generator as test.py does (same options, same checkpoint), in eval mode (running
batch-norm statistics, no dropout: test.py --eval), and writes ``<tag>_generator.onnx`` and
``<tag>_generator.torchscript.pt`` into ``--export_dir`` (default: the checkpoint folder). pix2pix
exports its generator, cascade3 its three stages as one graph, irsrnet/irsrgan the generator
test.py runs (the averaged one when it exists). Input ``input``: float32 ``N x C x H x W`` in
[-1, 1], C as trained (1 infrared, 3 visible), any N, H and W; output ``output`` likewise
(H and W times ``--scale`` for super-resolution).

Each file is then run (ONNX by onnxruntime on the CPU) on the first image of ``--phase`` and on
a crop of it of another size, and its largest absolute difference from PyTorch's output is
printed; above ``--tolerance`` (1e-4) the script fails with status 1. The ONNX file runs through
test.py with ``python test.py <same options> --onnx FILE``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from data import create_dataset
from data.loader import create_eval_loader
from models import create_model
from models.base_model import BaseModel
from models.export import OnnxGenerator, export_onnx, export_spec, export_torchscript, load_torchscript
from options.test_options import TestOptions
from util.errors import UserError, run_cli
from util.logging_setup import setup_logging

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
EXPORTERS = {"onnx": export_onnx, "torchscript": export_torchscript}


class ExportOptions(TestOptions):
    """test.py's options (the same model, checkpoint and data) and where the files go."""

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        g = parser.add_argument_group("export")
        g.add_argument("--export_dir", default=None, help="folder of the exported files; default the checkpoint folder")
        g.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS, help="files to write")
        g.add_argument("--tolerance", type=float, default=1e-4,
                       help="largest absolute difference from PyTorch's output accepted (images in [-1, 1])")
        return parser

    def validate(self, opt: argparse.Namespace) -> None:
        super().validate(opt)
        if opt.amp != "none":  # the exported graph is fp32; a reduced-precision reference would not match it
            raise UserError(f"--amp {opt.amp}: the export is fp32; drop --amp")


@dataclass(frozen=True)
class Check:
    """One exported file and its largest absolute difference from PyTorch at each size checked."""

    format: str
    path: Path
    differences: dict[tuple[int, int], float]


def first_image(opt: argparse.Namespace, model: BaseModel) -> None:
    """Give ``model`` the first image of ``--phase``, as test.py loads it."""
    loader = create_eval_loader(create_dataset(opt, opt.phase), opt, limit=1)
    batch = next(iter(loader), None)
    if batch is None:
        raise UserError(f"--phase {opt.phase}: no images in {opt.dataroot}/{opt.phase} to check the export on")
    model.set_input(batch)


def pytorch_output(model: BaseModel, input_visual: str, image: torch.Tensor) -> torch.Tensor:
    """The output of ``model.test()`` (test.py's own inference) for ``image``."""
    setattr(model, input_visual, image)
    model.test()
    return getattr(model, model.output_visual).float().cpu()


def load_runner(format_name: str, path: Path, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    if format_name == "onnx":
        return OnnxGenerator(path)
    return load_torchscript(path, device)


def main(argv: Sequence[str] | None = None) -> list[Check]:
    opt = ExportOptions().parse(argv, save=False)
    setup_logging(verbose=opt.verbose)
    model = create_model(opt)
    model.setup()
    model.eval()
    spec = export_spec(model)
    first_image(opt, model)
    image = getattr(model, spec.input_visual).contiguous()  # the usual layout, also under --channels_last
    height, width = image.shape[-2:]
    # A second, odd size shows that the files are not tied to the example's size.
    images = [image, image[..., : max(height - 3, 1), : max(width - 5, 1)]]
    references = [pytorch_output(model, spec.input_visual, item) for item in images]

    folder = Path(opt.export_dir) if opt.export_dir else model.save_dir
    folder.mkdir(parents=True, exist_ok=True)
    graph = spec.graph.eval()
    checks = []
    for format_name in opt.formats:
        path = folder / f"{model.checkpoint_tag()}_generator{SUFFIXES[format_name]}"
        with torch.no_grad():
            EXPORTERS[format_name](graph, image, path)
        run = load_runner(format_name, path, model.device)
        with torch.no_grad():
            differences = {tuple(item.shape[-2:]): (run(item).float().cpu() - reference).abs().max().item()
                           for item, reference in zip(images, references)}
        checks.append(Check(format_name, path, differences))
        print(f"{format_name}: {path}; max abs difference from PyTorch: "
              + ", ".join(f"{value:.3g} at {h}x{w}" for (h, w), value in differences.items()))
    for check in checks:
        failed = [value for value in check.differences.values() if not value <= opt.tolerance]  # NaN fails too
        if failed:
            raise SystemExit(f"error: {check.path} differs from PyTorch by {failed[0]:.3g}, more than --tolerance "
                             f"{opt.tolerance}")
    return checks


if __name__ == "__main__":
    run_cli(main)
