"""A trained generator as one self-contained graph, for ONNX and TorchScript (scripts/export.py),
and the exported ONNX file run in place of the networks (``test.py --onnx``).

The graph takes ``N x C x H x W`` images of any size, as test.py's models do: it pads them to
the network's size multiple exactly as ``pad_to_multiple`` does (reflection, or edge
replication when the padding is not shorter than the side), runs the networks and crops back.
The padding is written with index tensors instead of Python branches on the size, so that the
exported graph keeps height and width symbolic instead of baking in the example's choice.
The graph is the eval-mode generator (running batch-norm statistics, no dropout), as
``test.py --eval`` runs it.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn as nn

from models.base_model import BaseModel
from models.cascade3_model import Cascade3Model, CascadeGenerator
from models.irsrnet_model import IrsrnetModel
from models.network_wrappers import unwrap
from models.pix2pix_model import Pix2PixModel
from util.errors import UserError

logger = logging.getLogger(__name__)

EXPORTABLE_MODELS = ("pix2pix", "cascade3", "irsrnet", "irsrgan")
INPUT_NAME, OUTPUT_NAME = "input", "output"


def _padding_indices(size: torch.Tensor | int, multiple: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row (or column) indices that pad one side of ``size`` pixels up to a multiple of
    ``multiple``: by reflection, by repeating the last pixel, and whether reflection is possible
    (the padding shorter than the side)."""
    # multiple x blocks (not size + padding): symbolic shapes then halve cleanly through pooling layers
    index = torch.arange((size + multiple - 1) // multiple * multiple)
    reflected = torch.where(index < size, index, 2 * (size - 1) - index)
    # Negative reflected indices mean the padding is too long to reflect; they are clamped so
    # that the unused alternative stays a valid gather in every runtime.
    return reflected.clamp(min=0), index.clamp(max=size - 1), reflected.min() >= 0


class GeneratorGraph(nn.Module):
    """Pad to ``size_multiple``, run ``network``, crop to ``scale`` times the input size."""

    def __init__(self, network: nn.Module, size_multiple: int, scale: int) -> None:
        super().__init__()
        self.network, self.size_multiple, self.scale = network, size_multiple, scale

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2], image.shape[-1]
        rows_reflected, rows_repeated, rows_reflect = _padding_indices(height, self.size_multiple)
        cols_reflected, cols_repeated, cols_reflect = _padding_indices(width, self.size_multiple)
        reflect = rows_reflect & cols_reflect  # pad_to_multiple's choice: both sides or neither
        rows = torch.where(reflect, rows_reflected, rows_repeated).to(image.device)
        cols = torch.where(reflect, cols_reflected, cols_repeated).to(image.device)
        padded = image.index_select(2, rows).index_select(3, cols)
        return self.network(padded)[..., : height * self.scale, : width * self.scale]


@dataclass(frozen=True)
class ExportSpec:
    """What of a model is exported: its generator graph and the visuals it reads and writes."""

    graph: GeneratorGraph
    input_visual: str


def export_spec(model: BaseModel) -> ExportSpec:
    """The generator that ``model.test()`` runs, as one graph (cascade3: its three stages)."""
    if isinstance(model, IrsrnetModel):  # irsrgan too; the averaged generator when testing loaded it
        net = unwrap(model.inference_network())
        return ExportSpec(GeneratorGraph(net, net.size_multiple, net.scale), "LR")
    if isinstance(model, Cascade3Model):
        nets = model.bare_networks()
        cascade = CascadeGenerator(nets["G1"], nets["G2"], nets["G3"], model.opt.stage2_input)
        return ExportSpec(GeneratorGraph(cascade, model.size_multiple, 1), "real_A")
    if isinstance(model, Pix2PixModel):
        net = unwrap(model.netG)
        return ExportSpec(GeneratorGraph(net, net.size_multiple, 1), "real_A")
    raise UserError(f"--model {model.opt.model} cannot be exported; exportable models: {', '.join(EXPORTABLE_MODELS)}")


def export_onnx(graph: GeneratorGraph, example: torch.Tensor, path: Path) -> None:
    """Write ``graph`` as ONNX with symbolic batch, height and width (torch.export-based exporter)."""
    dims = {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    # An example batch of 2: torch.export specialises a size of 1, which would fix the batch size
    # (or, as the exporter then retries other strategies, take twice as long).
    example = example[:1].expand(2, -1, -1, -1).contiguous()
    for name in ("onnx_ir", "onnxscript"):  # their graph optimisers log every rewrite at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    torch.onnx.export(graph, (example,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_shapes={"image": dims}, dynamo=True, external_data=False, verbose=False)


@contextlib.contextmanager
def _quiet_torchscript() -> Iterator[None]:
    with warnings.catch_warnings():
        # PyTorch 2.14 warns on every torch.jit call that TorchScript is deprecated; docs/usage.md
        # says it once, and ONNX is the format to deploy.
        warnings.filterwarnings("ignore", message=r".*torch\.jit.* is deprecated")
        # The edge sharpening's 3x3 filter (cascade3) picks reflection from the feature size, a
        # constant in the trace; that is right for every input, as the padded image is at least 16 px.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module="models.networks.filters")
        yield


def export_torchscript(graph: GeneratorGraph, example: torch.Tensor, path: Path) -> None:
    """Write ``graph`` as TorchScript. Tracing records the size arithmetic of the padding as
    operations, so the traced graph keeps working on other sizes (export.py checks one)."""
    with _quiet_torchscript():
        traced = torch.jit.trace(graph, (example,), check_trace=False)  # export.py compares outputs itself
        torch.jit.save(traced, str(path))


def load_torchscript(path: Path, device: torch.device) -> torch.jit.ScriptModule:
    with _quiet_torchscript():
        return torch.jit.load(str(path), map_location=device)


class OnnxGenerator:
    """An exported ONNX generator run by onnxruntime on the CPU, called like the graph."""

    def __init__(self, path: Path | str) -> None:
        import onnxruntime  # imported here: only exports and test.py --onnx need it

        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"--onnx {self.path} does not exist; write it with scripts/export.py --name NAME")
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable files
            raise UserError(f"--onnx {self.path} is not a readable ONNX model ({str(error).splitlines()[0]})") from None
        self.input_channels = self.session.get_inputs()[0].shape[1]

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[1] != self.input_channels:
            raise UserError(f"--onnx {self.path} takes {self.input_channels}-channel images, the data gives "
                            f"{image.shape[1]}: export the generator trained on this data")
        array = image.detach().to("cpu", torch.float32).contiguous().numpy()
        (output,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: array})
        return torch.from_numpy(output).to(image.device)


def run_onnx_in_model(model: BaseModel, path: Path | str) -> None:
    """Make ``model.test()`` compute the output visual with the ONNX file instead of the networks
    (test.py --onnx); the visuals it shows are then the input, the output and the reference."""
    generator, input_visual = OnnxGenerator(path), export_spec(model).input_visual
    shown = {input_visual, model.output_visual, model.target_visual}

    def inference() -> None:
        model.visual_names = [name for name in model.visual_names if name in shown]
        setattr(model, model.output_visual, generator(getattr(model, input_visual)))

    model.inference = inference  # type: ignore[method-assign]
