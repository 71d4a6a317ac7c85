"""Time a model's training step and inference on random data.

    python scripts/benchmark.py                       # pix2pix unet_256, 256x256, batch 1
    python scripts/benchmark.py --netG resnet_9blocks --size 128 --steps 20

Prints one JSON line per measurement and a Markdown table. "train step" and "inference"
are medians over ``--steps`` repetitions after ``--warmup`` untimed ones, on random
tensors (no data loading). "test.py" runs test.py's whole loop on ``--test_images``
images of the synthetic test split (decoding, inference, PNG and HTML writing, metrics)
with the untrained generator saved as a checkpoint.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import torch  # noqa: E402

import test as test_script  # noqa: E402
from data.aligned_dataset import domain_channels  # noqa: E402
from models import create_model  # noqa: E402
from options.test_options import TestOptions  # noqa: E402
from options.train_options import TrainOptions  # noqa: E402


def random_batch(opt: argparse.Namespace, size: int, batch_size: int) -> dict:
    channels_a, channels_b = domain_channels(opt)
    return {"A": torch.rand(batch_size, channels_a, size, size) * 2 - 1,
            "B": torch.rand(batch_size, channels_b, size, size) * 2 - 1,
            "A_paths": ["a"] * batch_size, "B_paths": ["b"] * batch_size}


def time_calls(function, steps: int, warmup: int, device: torch.device) -> list[float]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="pix2pix")
    parser.add_argument("--netG", default="unet_256")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--test_images", type=int, default=20, help="images for the test.py case (0: skip it)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="benchmark_"))
    common = ["--model", args.model, "--netG", args.netG, "--crop_size", str(args.size), "--device", args.device,
              "--batch_size", str(args.batch_size), "--checkpoints_dir", str(workdir / "checkpoints")]

    torch.manual_seed(0)
    rows = []
    train_opt = TrainOptions().parse(common, save=False)
    model = create_model(train_opt)
    model.setup()
    batch = random_batch(train_opt, args.size, args.batch_size)

    def train_step() -> None:
        model.set_input(batch)
        model.optimize_parameters()

    rows.append(("train step", time_calls(train_step, args.steps, args.warmup, model.device)))

    test_opt = TestOptions().parse(common, save=False)
    test_model = create_model(test_opt)  # untrained weights: speed does not depend on them
    test_batch = random_batch(test_opt, args.size, args.batch_size)

    def inference() -> None:
        test_model.set_input(test_batch)
        test_model.test()

    rows.append(("inference", time_calls(inference, args.steps, args.warmup, test_model.device)))

    if args.test_images > 0:
        test_model.save_checkpoint("latest", {})
        run = test_script.main([*common, "--results_dir", str(workdir / "results"), "--num_test",
                                str(args.test_images), "--preprocess", "none"])
        rows.append(("test.py", [run.seconds / run.images * args.batch_size]))
    shutil.rmtree(workdir)

    summary = []
    for name, times in rows:
        median = statistics.median(times)
        print(json.dumps({"model": args.model, "netG": args.netG, "size": args.size, "batch_size": args.batch_size,
                          "device": train_opt.device, "threads": torch.get_num_threads(), "case": name,
                          "median_s": round(median, 4), "min_s": round(min(times), 4),
                          "images_per_s": round(args.batch_size / median, 3)}))
        summary.append(f"| {name} | {median:.3f} | {min(times):.3f} | {args.batch_size / median:.2f} |")
    print(f"\n| {args.model} {args.netG} {args.size}x{args.size} batch {args.batch_size} on {train_opt.device} "
          f"({torch.get_num_threads()} threads) | median s | min s | images/s |")
    print("|---|---|---|---|")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
