"""Smoke test of benchmarks/nms_speed.py: its code path, not its figures (timing is never asserted)."""

import pytest
from benchmark_runner import run_benchmark


@pytest.mark.slow
def test_nms_speed_benchmark_quick_mode_reports_every_method():
    lines, result = run_benchmark("nms_speed.py", "--quick", timeout=300)
    assert result["boxes"] == 1000 and result["iou_threshold"] == 0.5
    for layout in ("random", "clustered"):
        iou, nms = result[layout]["iou"], result[layout]["nms"]
        assert iou["rows"] == 100 and iou["columns"] == 1000 and iou["loop_rows_timed"] == 10
        for key in ("numpy_s", "pycocotools_s", "loop_s"):
            assert iou[key] > 0
        assert iou["loop_over_numpy"] == pytest.approx(iou["loop_s"] / iou["numpy_s"], rel=0.02)
        assert iou["numpy_over_pycocotools"] == pytest.approx(iou["numpy_s"] / iou["pycocotools_s"], rel=0.02)
        for key in ("numpy_s", "loop_s", "tensorflow_s"):
            assert nms[key] > 0
        assert nms["loop_over_numpy"] == pytest.approx(nms["loop_s"] / nms["numpy_s"], rel=0.02)
        assert nms["numpy_over_tensorflow"] == pytest.approx(nms["numpy_s"] / nms["tensorflow_s"], rel=0.02)
        assert 0 < nms["kept"] <= 1000 and nms["same_boxes"] is True
        assert sum(line.startswith(f"{layout:9s} IoU 100 x 1000") for line in lines) == 1
        assert sum(line.startswith(f"{layout:9s} NMS of 1000 boxes") for line in lines) == 1
