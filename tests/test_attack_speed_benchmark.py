"""Smoke test of benchmarks/attack_speed.py: its code path, not its figures (timing is never asserted)."""

import pytest
from benchmark_runner import run_benchmark


@pytest.mark.slow
def test_attack_speed_benchmark_quick_mode_reports_every_attack():
    lines, result = run_benchmark("attack_speed.py", "--quick")
    assert list(result["mobilenet"]) == ["96"] and result["mobilenet"]["96"]["batch"] == 1
    assert result["mnist"]["batch_20"]["batch"] == 20 and result["mnist"]["batch_1"]["batch"] == 1
    for row in [*result["mobilenet"].values(), *result["mnist"].values()]:
        for attack in ("fgsm", "pgd10"):
            assert row[attack]["seconds_per_call"] > 0
            assert row[attack]["attacks_per_second"] == pytest.approx(
                row["batch"] / row[attack]["seconds_per_call"], rel=0.02)
    assert sum(line.startswith("MobileNetV2 96x96") for line in lines) == 2
    assert sum(line.startswith("MNIST, batch 20") for line in lines) == 2
