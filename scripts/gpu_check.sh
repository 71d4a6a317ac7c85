#!/usr/bin/env bash
# GPU readiness in one command, for a machine with one CUDA GPU (under 8 minutes in all):
#
#   bash scripts/gpu_check.sh OUT_DIR
#
# 1. the tests marked as needing CUDA (tests/test_cuda.py: fp16 loss scaling, bf16 and channels-last
#    against fp32, --compile, --deterministic, tiled SR of 16-bit 640x480/640x512 frames with peak
#    memory, checkpoints moving between GPU and CPU);
# 2. scripts/benchmark.py on every model at its published (default) size: fp32, bf16, fp16 and
#    compile training steps (s/step, images/s, peak GPU memory), in the time left.
# Writes into OUT_DIR: gpu.txt (GPU, driver, torch and CUDA versions), cuda_tests.log and
# cuda_tests.xml (JUnit), benchmark.json, benchmark.log and benchmark.md (the Markdown table).
# Exit status 0 when every test passed and every benchmark job was measured.
# The interpreter is .venv/bin/python (else python3); set PYTHON to use another one.
set -uo pipefail

out=${1:?usage: bash scripts/gpu_check.sh OUT_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
[ -x "$python" ] || python=python3
mkdir -p "$out" && out=$(cd "$out" && pwd)  # absolute: the commands below run in the repository
cd "$repo" || exit 2
budget=450       # seconds for everything: 8 minutes less a margin
test_budget=240  # the tests' share; the benchmark gets what they leave

if ! "$python" - > "$out/gpu.txt" <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("error: torch sees no CUDA GPU (torch.cuda.is_available() is False); scripts/gpu_check.sh needs one")
print(f"gpu: {torch.cuda.get_device_name(0)}")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
EOF
then
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$out/gpu.txt" 2>/dev/null
cat "$out/gpu.txt"

echo "== CUDA tests (at most ${test_budget} s) =="
timeout -k 10 "$test_budget" "$python" -m pytest -m cuda tests/test_cuda.py -v -rA \
    --junitxml "$out/cuda_tests.xml" 2>&1 | tee "$out/cuda_tests.log"
tests_status=${PIPESTATUS[0]}

left=$((budget - SECONDS > 60 ? budget - SECONDS : 60))
echo "== benchmark: every model, fp32 / bf16 / fp16 / compile (at most ${left} s) =="
"$python" scripts/benchmark.py --device cuda --cases train --variants fp32 bf16 fp16 compile --steps 10 \
    --warmup 3 --time_budget "$left" --json "$out/benchmark.json" 2>&1 | tee "$out/benchmark.log"
benchmark_status=${PIPESTATUS[0]}
grep -E '^(\||not measured)' "$out/benchmark.log" > "$out/benchmark.md"

echo "== summary ($SECONDS s) =="
echo "CUDA tests: $([ "$tests_status" = 0 ] && echo passed || echo "FAILED (status $tests_status)"): $out/cuda_tests.log"
echo "benchmark: $([ "$benchmark_status" = 0 ] && echo complete || echo "INCOMPLETE (status $benchmark_status)"): $out/benchmark.md, $out/benchmark.json"
[ "$tests_status" = 0 ] && [ "$benchmark_status" = 0 ]
