"""Small helpers the benchmark scripts share (imported from the scripts' own folder)."""

from __future__ import annotations


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages as text ("unknown" where /proc is missing)."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def print_epochs(name: str, seconds, accuracies) -> None:
    """One line per epoch: its training seconds, the running total and the validation accuracy."""
    total = 0.0
    for epoch, (spent, accuracy) in enumerate(zip(seconds, accuracies, strict=True)):
        total += spent
        print(f"  {name} epoch {epoch + 1}: {spent:6.1f} s training (total {total:6.1f} s), "
              f"validation accuracy {accuracy:.4f}", flush=True)
