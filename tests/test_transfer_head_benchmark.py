"""Smoke test of benchmarks/transfer_head_speed.py: its code path, not its figures (timing is never asserted)."""

import pytest
from benchmark_runner import run_benchmark


@pytest.mark.slow
def test_head_speed_benchmark_quick_mode_trains_the_same_head_both_ways():
    lines, result = run_benchmark("transfer_head_speed.py", "--quick")
    assert result["train_images"] == 200 and result["val_images"] == 100 and result["size"] == 96
    cached, end_to_end = result["modes"]["cached"], result["modes"]["end_to_end"]
    # Same start, same recipe, same features (the frozen base computes them either way): the two
    # ways train the same head, so their validation accuracies agree epoch for epoch.
    assert cached["epochs_run"] == end_to_end["epochs_run"] <= 2
    assert cached["best_val_accuracy"] == pytest.approx(end_to_end["best_val_accuracy"], abs=0.011)
    # 10 classes: two epochs of Adam on real features already beat chance (10 %) clearly.
    assert cached["best_val_accuracy"] > 0.2
    assert cached["feature_seconds"] > 0 and cached["seconds_per_epoch"] > 0 and end_to_end["seconds_per_epoch"] > 0
    assert any(line.startswith("cached    :") for line in lines)
    assert any(line.startswith("end_to_end:") for line in lines)
