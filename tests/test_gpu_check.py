"""scripts/gpu_check.sh without a GPU: it parses, and its benchmark command works on the CPU."""
from __future__ import annotations

import json
import re
import shlex
import subprocess

from conftest import REPO_ROOT
from scripts import benchmark

SCRIPT = REPO_ROOT / "scripts" / "gpu_check.sh"


def benchmark_arguments() -> list[str]:
    """The arguments gpu_check.sh gives scripts/benchmark.py, shell variables replaced by a number."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    command = re.search(r"scripts/benchmark\.py (.*?) 2>&1", text)
    assert command is not None
    return ["60" if "$" in word else word for word in shlex.split(command.group(1))]


def test_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_the_scripts_benchmark_command_runs_on_cpu_at_a_tiny_size(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # benchmark.main changes into the repository; restored afterwards
    arguments = benchmark_arguments()
    args = benchmark.parse_args(arguments)  # an option benchmark.py lacks would stop here
    assert (args.device, args.variants, args.cases) == ("cuda", ["fp32", "bf16", "fp16", "compile"], ["train"])
    # The same command on the CPU, bf16 only: fp16 needs CUDA and compiling takes minutes here.
    json_file = tmp_path / "benchmark.json"
    cpu = benchmark._replace_values(arguments, {"--device": ["cpu"], "--variants": ["bf16"],
                                                "--json": [str(json_file)], "--model": ["irsrnet"],
                                                "--preset": ["small"], "--steps": ["1"], "--warmup": ["0"]})
    benchmark.main([*cpu, "--in_process", "--", "--crop_size", "32", "--batch_size", "1"])
    saved = json.loads(json_file.read_text())
    assert saved["not_measured"] == []
    assert [(row["variant"], row["case"]) for row in saved["results"]] == [("bf16", "train")]
    assert all(row["median_s"] > 0 and row["images_per_s"] > 0 and row["peak_mb"] > 0 for row in saved["results"])

