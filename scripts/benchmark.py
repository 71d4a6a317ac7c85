"""Speed of every model: training steps, inference, the data loader and test.py, on CPU or CUDA.

    python scripts/benchmark.py                                  # all models, their default sizes
    python scripts/benchmark.py --preset small                   # all models, small widths (a quick check)
    python scripts/benchmark.py --model pix2pix --variants fp32 bf16+channels_last --repeat 3
    python scripts/benchmark.py --model pix2pix --cases data     # the data loader alone
    python scripts/benchmark.py --model pix2pix --profile 25     # where a training step's time goes
    python scripts/benchmark.py --name NAME                      # the networks of a trained run

Cases (``--cases``):

* ``train``: seconds per training step (``set_input`` + ``optimize_parameters``) on random
  tensors, median over ``--steps`` steps after ``--warmup`` untimed ones; the FLOPs of one
  step (``torch.utils.flop_counter.FlopCounterMode``, forward and backward) and the achieved
  GFLOP/s; peak memory (see below).
* ``test``: the inference pass (``model.test()``, inference mode) on random tensors: median
  seconds per batch, images/s, FLOPs and GFLOP/s.
* ``data``: the training data loader alone (decoding, augmentation, collation) on the model's
  built-in dataset: images/s in the main process on one thread (``0 workers``: the cost of
  one image to one core) and with ``--num_threads`` workers.
* ``test.py``: test.py end to end on ``--test_images`` images of the built-in test split
  (decoding, inference, PNG and HTML writing, metrics), with untrained weights; also the time
  from test.py's start to its first written image.
* ``conv``: one 3x3 convolution (128 -> 128 channels, 64x64): the machine's speed on a standard
  operation, to put results from different machines side by side.

``--name`` (with ``--checkpoints_dir``) measures the model and networks saved with a trained run
(options/saved_config.py) instead of ``--model``/``--preset``; weights are untrained either way.

Variants (``--variants``): ``fp32`` / ``bf16`` / ``fp16`` (``--amp``), joined by ``+`` with
``channels_last`` and ``compile``, e.g. ``bf16+channels_last``; ``unfused_adam`` runs PyTorch's
default (unfused) Adam as upstream does, ``native_convs`` every convolution through PyTorch's own
kernels (``--gemm_conv_max_side 0``), and ``upstream`` both: upstream pix2pix's computation, the
same-machine baseline of a training step. Every (round, model, variant)
runs in a fresh process, in the order round by round and, within a round, variant by variant, so
load changes on a shared machine spread over all variants; each process also reports the load
average. A job that fails or outlives ``--time_budget`` is reported as not measured and the
others still run (the exit status is then 1); ``--json FILE`` keeps the results, rewritten after
every job.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during the timed steps; on the CPU
the peak resident set size of the benchmark process during the timed steps (Linux VmHWM, reset
before them through ``/proc/self/clear_refs``), which includes Python, torch and the weights:
``baseline_mb`` is the resident size before the model was built.

irsrgan runs with its perceptual loss (``--lambda_perceptual 1``) on a VGG19 with random
weights (``--perceptual_vgg random``: same cost, nothing downloaded) and ``--psnr_checkpoint none``.
Prints one JSON line per case, then a Markdown table.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO_ROOT = Path(__file__).resolve().parents[1]

MODELS = ("pix2pix", "cascade3", "irsrnet", "irsrgan")
CASES = ("train", "test", "data", "test.py", "conv")
# Model options per preset: "full" is each model's defaults (what a real run trains), "small"
# narrow networks for a quick comparison.
PRESETS: dict[str, dict[str, list[str]]] = {
    "full": {
        "pix2pix": [],
        "cascade3": [],
        "irsrnet": [],
        "irsrgan": [],
    },
    "small": {
        "pix2pix": ["--netG", "unet_128", "--ngf", "16", "--ndf", "16", "--crop_size", "128"],
        "cascade3": ["--netG1", "unet_128", "--ngf", "16", "--ndf", "16", "--stage2_width", "0.25",
                     "--denoise_features", "16", "--crop_size", "128"],
        "irsrnet": ["--ngf", "16", "--nb", "2", "--gc", "8", "--crop_size", "64", "--batch_size", "2"],
        "irsrgan": ["--ngf", "16", "--nb", "2", "--gc", "8", "--ndf", "16", "--crop_size", "64", "--batch_size", "2"],
    },
}
MODEL_EXTRAS = {"irsrgan": ["--lambda_perceptual", "1", "--perceptual_vgg", "random", "--psnr_checkpoint", "none"]}


# ------------------------------------------------------------------ variants
def variant_options(variant: str) -> list[str]:
    """``bf16+channels_last`` -> ``--amp bf16 --channels_last`` (the Adam parts are handled apart)."""
    options, amp = [], "none"
    for part in variant.split("+"):
        if part in ("fp32", "bf16", "fp16"):
            amp = "none" if part == "fp32" else part
        elif part in ("channels_last", "compile"):
            options.append(f"--{part}")
        elif part in ("native_convs", "upstream"):
            options += ["--gemm_conv_max_side", "0"]
        elif part != "unfused_adam":
            raise SystemExit(f"unknown variant part {part!r} in {variant!r}: use fp32|bf16|fp16, channels_last, "
                             f"compile, unfused_adam, native_convs, upstream")
    return ["--amp", amp, *options]


def runs_unfused_adam(variant: str) -> bool:
    return bool({"unfused_adam", "upstream"} & set(variant.split("+")))


def unfuse_adam(model: Any) -> None:
    """Switch the model's optimizers to PyTorch's default Adam, as upstream pix2pix runs it (the
    ``unfused_adam`` variant: the same-machine baseline for the fused Adam the models use)."""
    for optimizer in model.optimizers:
        for group in optimizer.param_groups:
            group["fused"] = False


# -------------------------------------------------------------------- memory
class PeakMemory:
    """Peak memory of the code inside ``measure()``, in MB (see the module notes)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = "cuda_max_memory_allocated" if device.type == "cuda" else "cpu_peak_rss"
        self.peak_mb: float | None = None

    @contextlib.contextmanager
    def measure(self) -> Iterator[None]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            _reset_peak_rss()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.peak_mb = _status_mb("VmHWM")


def device_name(device: torch.device) -> str:
    """The GPU's or CPU's model name, so results from different machines can be told apart."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):  # without /proc (not Linux) VmHWM is the whole run's peak
        Path("/proc/self/clear_refs").write_text("5")


def _status_mb(field: str) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


# --------------------------------------------------------------------- timing
def time_calls(function: Callable[[], None], steps: int, warmup: int, device: torch.device) -> list[float]:
    """Seconds of each of ``steps`` calls after ``warmup`` untimed ones (synchronised on CUDA)."""
    times = []
    for step in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return times


def count_flops(function: Callable[[], None]) -> int:
    """FLOPs of one call, forward and backward (compiled networks run eagerly while counting)."""
    with warnings.catch_warnings():
        # The counter's module hooks make torch.compile warn that they fire twice; they only count.
        warnings.filterwarnings("ignore", message="Using `torch.compile\\(module\\)` when there are global hooks")
        with torch.compiler.set_stance("force_eager"), FlopCounterMode(display=False) as counter:
            function()
    return counter.get_total_flops()


def random_batch(opt: argparse.Namespace) -> dict:
    """A batch of random images in the model's input format."""
    size, batch = opt.crop_size, opt.batch_size
    if opt.dataset_mode == "sr":
        return {"LR": torch.rand(batch, opt.input_nc, size // opt.scale, size // opt.scale) * 2 - 1,
                "HR": torch.rand(batch, opt.output_nc, size, size) * 2 - 1, "HR_paths": ["hr"] * batch}
    from data.aligned_dataset import domain_channels

    channels_a, channels_b = domain_channels(opt)
    return {"A": torch.rand(batch, channels_a, size, size) * 2 - 1,
            "B": torch.rand(batch, channels_b, size, size) * 2 - 1,
            "A_paths": ["a"] * batch, "B_paths": ["b"] * batch}


# ---------------------------------------------------------------------- cases
def run_cases(args: argparse.Namespace, model_name: str, variant: str, workdir: Path) -> list[dict]:
    """Every requested case for one model and variant, in this process."""
    from models import create_model
    from options.saved_config import as_flags
    from options.test_options import TestOptions
    from options.train_options import TrainOptions

    networks = as_flags(run_architecture(args)) if args.name else PRESETS[args.preset][model_name]
    options = ["--model", model_name, "--device", args.device, "--checkpoints_dir", str(workdir / "checkpoints"),
               "--display_id", "0", *networks, *MODEL_EXTRAS.get(model_name, []),
               *variant_options(variant), *args.options]
    train_only = {"--lambda_perceptual", "--perceptual_vgg", "--psnr_checkpoint", "--display_id"}
    test_options = _drop_options(options, train_only)
    baseline_mb = _status_mb("VmRSS")
    torch.manual_seed(0)
    opt = TrainOptions().parse(options, save=False)
    device = torch.device(opt.device)
    common = {"model": model_name, "variant": variant, "preset": args.preset, "device": str(device),
              "device_name": device_name(device),
              "threads": torch.get_num_threads(), "size": opt.crop_size, "batch_size": opt.batch_size}
    rows = []

    def record(case: str, times: list[float], images: int, flops: int | None = None,
               memory: PeakMemory | None = None, **extra: Any) -> None:
        median = statistics.median(times)
        row = {**common, "case": case, "median_s": round(median, 4), "min_s": round(min(times), 4),
               "images_per_s": round(images / median, 3), "times": [round(t, 4) for t in times],
               "rounds": 1, "load_avg": [[round(value, 2) for value in os.getloadavg()]], **extra}
        if flops is not None:
            row.update(gflop=round(flops / 1e9, 3), gflop_per_s=round(flops / 1e9 / median, 1))
        if memory is not None:
            row.update(peak_mb=None if memory.peak_mb is None else round(memory.peak_mb), memory=memory.kind,
                       baseline_mb=None if baseline_mb is None else round(baseline_mb))
        rows.append(row)

    if "conv" in args.cases:
        times, flops = time_reference_conv(device, args.steps, args.warmup)
        record("conv 3x3 128->128 64x64", times, 1, flops)
    if "train" in args.cases:
        model = create_model(opt)
        model.setup()
        model.train()
        if runs_unfused_adam(variant):
            unfuse_adam(model)
        batch = random_batch(opt)

        def train_step() -> None:
            model.set_input(batch)
            model.optimize_parameters()

        time_calls(train_step, 0, args.warmup, device)
        memory = PeakMemory(device)
        with memory.measure():
            times = time_calls(train_step, args.steps, 0, device)
        record("train", times, opt.batch_size, count_flops(train_step), memory)
        if args.profile:
            print_profile(train_step, list(model.networks().values()), args.profile, device)
        del model

    if "test" in args.cases or "test.py" in args.cases:
        test_opt = TestOptions().parse(test_options, save=False)
        test_model = create_model(test_opt)
        test_model.save_checkpoint("latest", {})  # untrained weights (speed does not depend on them) ...
        test_model.setup()  # ... which setup loads, as test.py does, before wrapping the networks
        if "test" in args.cases:
            test_batch = random_batch(test_opt)

            def inference() -> None:
                test_model.set_input(test_batch)
                test_model.test()

            memory = PeakMemory(device)
            time_calls(inference, 0, args.warmup, device)
            with memory.measure():
                times = time_calls(inference, args.steps, 0, device)
            record("test", times, test_opt.batch_size, count_flops(inference), memory)
        if "test.py" in args.cases and args.test_images > 0:
            from util.inference import run_test

            run = run_test([*test_options, "--results_dir", str(workdir / "results"),
                            "--num_test", str(args.test_images)])
            record("test.py", [run.seconds / run.images], 1, first_image_s=round(run.first_image_seconds, 3))

    if "data" in args.cases:
        for workers in sorted({0, opt.num_threads}):
            images, seconds = time_loader(opt, workers, args.data_batches)
            record(f"data ({workers} workers)", [seconds / images * opt.batch_size], opt.batch_size,
                   dataset=opt.dataroot)
    return rows


def time_reference_conv(device: torch.device, steps: int, warmup: int) -> tuple[list[float], int]:
    """A 3x3 convolution, 128 -> 128 channels on 64x64 (batch 1, forward, fp32): the machine's
    speed on a standard operation, to compare results between machines."""
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(device)
    image = torch.randn(1, 128, 64, 64, device=device)
    with torch.inference_mode():
        times = time_calls(lambda: conv(image), max(steps, 20), warmup, device)
    return times, 2 * 128 * 128 * 9 * 64 * 64


def _drop_options(options: list[str], names: set[str]) -> list[str]:
    """``options`` without the training-only ``names`` (each followed by one value)."""
    kept, skip = [], False
    for index, item in enumerate(options):
        if skip:
            skip = False
        elif item in names:
            skip = index + 1 < len(options) and not options[index + 1].startswith("--")
        else:
            kept.append(item)
    return kept


def time_loader(opt: argparse.Namespace, workers: int, batches: int) -> tuple[int, float]:
    """Images loaded and seconds taken by ``batches`` batches of the training loader, after its
    first batch (which includes starting the workers)."""
    from data import create_dataset
    from data.loader import create_train_loader

    loader_opt = argparse.Namespace(**{**vars(opt), "num_threads": workers})
    loader, sampler = create_train_loader(create_dataset(loader_opt, loader_opt.phase), loader_opt)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a loader worker runs (data/loader.py): the cost of one core
    try:
        images, start, epoch = 0, 0.0, 1
        while True:
            sampler.set_epoch(epoch)
            for index, batch in enumerate(loader):
                if epoch == 1 and index == 0:
                    start = time.perf_counter()
                    continue
                images += len(next(iter(value for key, value in batch.items() if key.endswith("_paths"))))
                if images >= batches * opt.batch_size:
                    return images, time.perf_counter() - start
            epoch += 1
    finally:
        torch.set_num_threads(threads)


def print_profile(step: Callable[[], None], networks: list[torch.nn.Module], rows: int, device: torch.device) -> None:
    """Where one training step's time goes (stderr): the profiler's top operators, then the
    convolutions' time and FLOPs grouped by the side of the layer's input image."""
    from torch.profiler import ProfilerActivity, profile

    conv_flops: dict[str, int] = {}

    def count_flops_of(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        # forward FLOPs x 3: the backward pass computes input and weight gradients
        image, taps = inputs[0], module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, torch.nn.ConvTranspose2d):
            forward = 2 * image.numel() * module.out_channels * taps // module.groups
        else:
            forward = 2 * output.numel() * module.in_channels * taps // module.groups
        group = _size_group(image.shape[-1])
        conv_flops[group] = conv_flops.get(group, 0) + 3 * forward

    hooks = [module.register_forward_hook(count_flops_of) for net in networks for module in net.modules()
             if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as profiler:
        step()
    for hook in hooks:
        hook.remove()
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(profiler.key_averages().table(sort_by=sort, row_limit=rows), file=sys.stderr)

    times: dict[str, float] = {}
    for event in profiler.key_averages(group_by_input_shape=True):
        shapes = event.input_shapes
        if event.key in ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::_convolution",
                         "aten::cudnn_convolution", "aten::cudnn_convolution_transpose") and shapes:
            image = shapes[1] if event.key == "aten::convolution_backward" else shapes[0]  # the forward input
            group = _size_group(image[-1]) if len(image) == 4 else "other operators"
        else:
            group = "optimizer (Adam step, zero_grad)" if "adam" in event.key.lower() else "other operators"
        own = event.self_device_time_total if device.type == "cuda" else event.self_cpu_time_total
        times[group] = times.get(group, 0.0) + own
    total_time, total_flops = sum(times.values()), sum(conv_flops.values())
    print("| part of the step | ms | share of time | share of convolution FLOPs |\n|---|---:|---:|---:|",
          file=sys.stderr)
    for group, spent in sorted(times.items(), key=lambda item: -item[1]):
        flops = f"{100 * conv_flops[group] / total_flops:.1f} %" if group in conv_flops else ""
        print(f"| {group} | {spent / 1000:.1f} | {100 * spent / total_time:.1f} % | {flops} |", file=sys.stderr)


def _size_group(side: int) -> str:
    if side <= 16:
        return "convolutions on 1-16 px inputs"
    return "convolutions on 32-64 px inputs" if side <= 64 else "convolutions on 128+ px inputs"


# ------------------------------------------------------------------- reports
def summarise(rows: list[dict]) -> list[dict]:
    """One row per (model, variant, case): medians over every round's timed steps."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["variant"], row["case"]), []).append(row)
    summary = []
    for group in groups.values():
        times = [t for row in group for t in row["times"]]
        median = statistics.median(times)
        first = group[0]
        row = dict(first)
        row.update(rounds=sum(r["rounds"] for r in group), median_s=round(median, 4), min_s=round(min(times), 4),
                   images_per_s=round((1 if first["case"] == "test.py" else first["batch_size"]) / median, 3),
                   times=times, load_avg=[load for r in group for load in r["load_avg"]])
        if "gflop" in first:
            row["gflop_per_s"] = round(first["gflop"] / median, 1)
        if "peak_mb" in first:
            row["peak_mb"] = max((r["peak_mb"] for r in group if r["peak_mb"] is not None), default=None)
        summary.append(row)
    return summary


def markdown_table(summary: list[dict]) -> str:
    lines = ["| model | variant | case | size × batch | device (threads) | median s | images/s | GFLOP | GFLOP/s | "
             "peak MB |", "|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    for row in summary:
        lines.append(f"| {row['model']} | {row['variant']} | {row['case']} | {row['size']} × {row['batch_size']} | "
                     f"{row['device']} ({row['threads']}) | {row['median_s']:.3f} | {row['images_per_s']:.2f} | "
                     f"{row.get('gflop', '')} | {row.get('gflop_per_s', '')} | {row.get('peak_mb') or ''} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--preset", default="full", choices=sorted(PRESETS),
                        help="full: each model's default networks and crop size; small: narrow networks")
    parser.add_argument("--variants", nargs="+", default=["fp32"],
                        help="fp32|bf16|fp16, optionally +channels_last and/or +compile")
    parser.add_argument("--cases", nargs="+", default=["train", "test"], choices=CASES)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case and round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile: raise it)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over all models and variants")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--name", default=None,
                        help="measure the networks of this trained run (its saved architecture) instead of --model "
                             "and --preset")
    parser.add_argument("--checkpoints_dir", default="./checkpoints", help="the folder holding --name's run")
    parser.add_argument("--test_images", type=int, default=20, help="images for the test.py case")
    parser.add_argument("--data_batches", type=int, default=50, help="batches timed in the data case")
    parser.add_argument("--profile", type=int, default=0,
                        help="print the profiler's top N operators of one training step (stderr)")
    parser.add_argument("--in_process", action="store_true", help="one process for everything (no isolation)")
    parser.add_argument("--json", default=None,
                        help="also write the results (and the jobs not measured) to this JSON file, after every job")
    parser.add_argument("--time_budget", type=float, default=0,
                        help="seconds for all jobs together; a job still running then is stopped and the ones after "
                             "it are not started (reported as not measured). 0: no limit")
    parser.add_argument("options", nargs="*", help="more model options after --, e.g. -- --batch_size 4")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    args.checkpoints_dir = str(Path(args.checkpoints_dir).resolve())  # before moving into the repository
    if args.name:
        model = run_architecture(args)["model"]
        if args.model not in (list(MODELS), [model]):  # given, and not the run's
            raise SystemExit(f"error: --model {' '.join(args.model)} but run '{args.name}' was trained with model "
                             f"{model}; drop --model to measure the run's networks")
        args.model = [model]
    os.chdir(REPO_ROOT)  # the built-in datasets (data and test.py cases) live under the repository
    for variant in args.variants:
        variant_options(variant)  # fail early on a misspelt variant
    # Variant by variant within a round: slow variants (compile) come last, after every model's others.
    jobs = [(model, variant) for _round in range(args.repeat) for variant in args.variants for model in args.model]
    deadline = time.monotonic() + args.time_budget if args.time_budget > 0 else None
    rows: list[dict] = []
    failures: list[dict] = []
    for model, variant in jobs:
        if args.in_process or len(jobs) == 1:
            workdir = Path(tempfile.mkdtemp(prefix="benchmark_"))
            try:
                rows += run_cases(args, model, variant, workdir)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            remaining = None if deadline is None else deadline - time.monotonic()
            job_rows, error = run_worker(argv if argv is not None else sys.argv[1:], model, variant, remaining,
                                         args.checkpoints_dir)
            rows += job_rows
            if error is not None:
                failures.append({"model": model, "variant": variant, "error": error})
        if args.json:  # after every job, so a run that is cut short keeps what it measured
            write_json(Path(args.json), summarise(rows), failures)
    summary = summarise(rows)
    for row in summary:
        print(json.dumps(row))
    print()
    print(markdown_table(summary))
    for failure in failures:
        print(f"not measured: {failure['model']} ({failure['variant']}): {failure['error']}")
    if failures:
        raise SystemExit(1)
    return summary


def run_architecture(args: argparse.Namespace) -> dict[str, Any]:
    """The architecture saved with ``--name``'s run."""
    from options.saved_config import read_saved_architecture

    folder = Path(args.checkpoints_dir) / args.name
    saved = read_saved_architecture(folder, "latest")
    if saved is None:
        raise SystemExit(f"error: --name {args.name}: {folder} holds no saved architecture (train_opt.json or "
                         f"latest_state.pth); use --model with the architecture flags after --, e.g. -- --ngf 32")
    return saved.values


def write_json(path: Path, summary: list[dict], failures: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"results": summary, "not_measured": failures}, indent=1) + "\n")


def run_worker(argv: list[str], model: str, variant: str, timeout: float | None,
               checkpoints_dir: str) -> tuple[list[dict], str | None]:
    """Run one (model, variant) in a fresh process for at most ``timeout`` seconds; return its
    JSON rows and, when it failed or ran out of time, why (the other jobs still run)."""
    if timeout is not None and timeout <= 0:
        return [], "not started: --time_budget spent"
    worker_argv = _replace_values(argv, {"--model": [model], "--variants": [variant], "--repeat": ["1"],
                                         "--checkpoints_dir": [checkpoints_dir]})  # the worker runs elsewhere
    command = [sys.executable, str(Path(__file__).resolve()), *worker_argv]
    # Its own process group, so a timeout also ends the compile workers torch.compile starts.
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True) as worker:
        try:
            stdout, _ = worker.communicate(timeout=timeout)
        except BaseException as error:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.communicate()
            if isinstance(error, subprocess.TimeoutExpired):
                return [], f"timed out after {timeout:.0f} s (--time_budget)"
            raise
    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return rows, None if worker.returncode == 0 else f"failed with status {worker.returncode} (its error is above)"


def _replace_values(argv: list[str], values: dict[str, list[str]]) -> list[str]:
    """``argv`` with each option of ``values`` (and its old values) replaced."""
    kept, skipping = [], False
    for item in argv:
        if item in values:
            skipping = True
            continue
        if skipping and not item.startswith("--"):
            continue
        skipping = False
        kept.append(item)
    for option, option_values in values.items():
        kept = [option, *option_values, *kept]
    return kept


if __name__ == "__main__":
    main()
