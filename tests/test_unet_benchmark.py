"""Smoke test of benchmarks/unet_time_to_quality.py: its code path, not its figures (timing is never asserted)."""

import pytest
from benchmark_runner import run_benchmark


@pytest.mark.slow
def test_unet_benchmark_quick_mode_reports_a_curve_and_times_to_quality():
    lines, result = run_benchmark("unet_time_to_quality.py", "--quick")
    assert result["recipe"]["crops"] == 64 and result["recipe"]["depth"] == 3
    curve = result["curve"]
    assert [point["steps"] for point in curve] == [25, 50]
    assert 0 < curve[0]["seconds"] < curve[1]["seconds"]
    assert all(0.0 <= point["validation_iou"] <= 1.0 for point in curve)
    assert set(result["time_to_iou"]) == set(result["steps_to_iou"]) == {"0.8", "0.85"}
    for target, seconds in result["time_to_iou"].items():
        # Either not reached, or the time of the first point of the curve at or above the target.
        first = next((point for point in curve if point["validation_iou"] >= float(target)), None)
        assert seconds == (first["seconds"] if first else None)
    assert sum("steps" in line and "validation IoU" in line for line in lines) == 2
