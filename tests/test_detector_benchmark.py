"""Smoke test of benchmarks/detector_time_to_quality.py: its code path, not its figures (timing is never asserted)."""

import pytest
from benchmark_runner import run_benchmark


@pytest.mark.slow
def test_detector_benchmark_quick_mode_reports_every_epoch():
    lines, result = run_benchmark("detector_time_to_quality.py", "--quick", timeout=300)
    assert (result["canvases"], result["epochs"], result["validation"], result["seed"]) == (256, 1, 100, 0)
    assert len(result["epoch_seconds"]) == len(result["validation_map"]) == 1
    assert result["epoch_seconds"][0] > 0 and 0 <= result["validation_map"][0] <= 1
    assert result["total_train_s"] == pytest.approx(sum(result["epoch_seconds"]), abs=0.02)
    assert set(result["seconds_to"]) == {"0.7", "0.8"}
    assert sum(line.startswith("  epoch 1:") for line in lines) == 1
    assert sum(line.startswith("validation mAP 0.") for line in lines) == 2
