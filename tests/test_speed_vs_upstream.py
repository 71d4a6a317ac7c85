"""scripts/speed_vs_upstream.py at a small size on the CPU."""
from __future__ import annotations

import json
from statistics import median

import pytest

from conftest import REPO_ROOT


def test_speed_vs_upstream_compares_both_computations_side_by_side(tmp_path, monkeypatch):
    """scripts/speed_vs_upstream.py: upstream's computation (unfused Adam, native convolutions) and ours
    in the same run, the ratio of their medians, the ratio within each round and the convolution ceiling."""
    from scripts import speed_vs_upstream

    monkeypatch.chdir(REPO_ROOT)
    json_file = tmp_path / "speed.json"
    result = speed_vs_upstream.main(["--preset", "small", "--repeat", "2", "--steps", "2", "--warmup", "0",
                                     "--json", str(json_file)])
    train = {row["variant"]: row for row in result["rows"] if row["case"] == "train"}
    assert set(train) == {"upstream", "fp32"}
    speedup = train["upstream"]["median_s"] / train["fp32"]["median_s"]
    assert result["speedup_vs_upstream"]["fp32"] == pytest.approx(speedup)
    assert result["speedup_vs_upstream"]["upstream"] == 1.0
    first_round = [median(train[variant]["times"][:2]) for variant in ("upstream", "fp32")]
    second_round = [median(train[variant]["times"][2:]) for variant in ("upstream", "fp32")]
    assert result["speedup_per_round"]["fp32"] == pytest.approx([first_round[0] / first_round[1],
                                                                 second_round[0] / second_round[1]])
    assert result["conv_ceiling_gflop_per_s"] > 0
    assert json.loads(json_file.read_text())["speedup_vs_upstream"] == result["speedup_vs_upstream"]
