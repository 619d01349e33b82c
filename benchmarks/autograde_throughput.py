"""Autograding throughput: plain serial ``nbgrader autograde`` against the course's grader.

Grades the same class of PS1 (``ps1_convolution``) submissions twice, in one run:

* **nbgrader** -- ``python -m nbgrader autograde ps1_convolution``: nbgrader 0.9.6 with the
  course's ``nbgrader_config.py``, one submission after the other, student code running as
  the grader's own user;
* **ours** -- ``python -m cnn_course.grading autograde ps1_convolution --workers 2``: every
  submission in its own sandboxes (bubblewrap), the hidden tests in a separate judge,
  ``--workers`` submissions at a time.

Each grader runs in its own temporary course folder (a copy of ``nbgrader_config.py`` and
``solutions/ps1_convolution/``, released there with ``nbgrader generate_assignment``), so the
repository's ``nbgrader/`` folder and gradebook are never touched. The class (20 by default):

* half **correct** -- the release with the source's answers typed into the solution cells,
  as a student would submit it (every other one also has a scratch cell of its own);
* a quarter **blank** -- the release as handed out;
* a quarter **wrong** -- some exercises wrong, in five kinds taken in turn: a correlation
  that calls SciPy's compiled ``_convolve2d`` (a library answer that nbgrader's profile hook
  does not see, since calls into compiled code make no Python call event), one that calls
  ``scipy.signal.correlate2d`` (both graders reject it), off-by-one padding and output size,
  a convolution without the flip and a sum pool, and exercises 6-8 left unanswered.

Both gradebooks are then read cell by cell. The two graders must give the same points,
except where ours is meant to be stricter (the compiled SciPy call: nbgrader may score it
higher there, never lower); correct submissions must get full marks and blank ones zero.
Any other difference is printed and makes the exit status 1.

Seconds per submission = the whole command's wall time (start-up included, as an instructor
waits for it) divided by the number of submissions; the ratio is nbgrader's over ours.
Before timing, the libraries the notebooks import are loaded once, so that neither grader
pays for reading them from disk. ``--workers-sweep 1 2`` also times ours at each of those
worker counts (a fresh course folder each) to show how throughput grows with workers.

The timings are wall-clock times on a machine that may be shared. For each run the script
also records the CPU seconds the grader's own processes used (sandboxes included) and how many
cores other processes kept busy meanwhile (from ``/proc/stat``; 0 on a quiet machine), and the
load average before and after it.

Usage::

    .venv/bin/python benchmarks/autograde_throughput.py                 # 20 submissions, ~5 min on 2 cores
    .venv/bin/python benchmarks/autograde_throughput.py --quick         # 3 submissions, a smoke run
    .venv/bin/python benchmarks/autograde_throughput.py --submissions 40 --workers 2
    .venv/bin/python benchmarks/autograde_throughput.py --workers-sweep 1 2

The last line printed is one JSON object::

    {"assignment": "ps1_convolution", "submissions": 20, "mix": {"correct": 10, ...},
     "seconds_per_submission": {"nbgrader": ..., "ours": ...}, "ratio": ...,
     "wall_seconds": {"nbgrader": ..., "ours": ...}, "cpu_seconds_per_submission": {...},
     "others_cores_busy": {...}, "workers": 2, "cores": 2,
     "sandbox": "bubblewrap ...", "load_average": {"start": [...], "nbgrader": [[...], [...]], ...},
     "sweep": {"1": {"seconds_per_submission": ..., "throughput_vs_fewest_workers": 1.0, ...}, "2": ...}
     or null, "scores_agree": true,
     "expected_differences": ..., "unexpected_differences": ..., "date": "..."}
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "ps1_convolution"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
TIMESTAMP = "2026-12-01 12:00:00.000000 UTC"  # one collection time for every submission

# The libraries the PS1 notebook and both graders load, read once before timing.
WARM_UP = ("import IPython, matplotlib.pyplot, numpy, scipy.signal, skimage.data, nbformat, nbclient, "
           "nbgrader.apps, keras")

# --------------------------------------------------------------------------------------------
# The class: correct, blank and wrong submissions built from the release and the source


def answers_of(source: nbformat.NotebookNode) -> dict[str, str]:
    """``{grade_id: source}`` of the source's solution cells, solution markers dropped."""
    answers = {}
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = "\n".join(
                line for line in cell.source.split("\n")
                if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
    return answers


def edited(answer: str, old: str, new: str) -> str:
    """``answer`` with ``old`` replaced by ``new``; a plain error when the source no longer has ``old``."""
    if old not in answer:
        raise SystemExit(f"error: the PS1 answer no longer contains {old!r}; update the wrong submissions "
                         f"in {Path(__file__).name} to the new source")
    return answer.replace(old, new)


LIBRARY_CORRELATE = '''import scipy.signal{extra_import}


def correlate2d(x, w, stride=1, padding="valid", dilation=1):
    """2-D cross-correlation of x (H, W) with w (kh, kw); returns a float array."""
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if x.ndim != 2 or w.ndim != 2:
        raise ValueError(f"x and w must be 2-D, got shapes {{x.shape}} and {{w.shape}}")
    if stride < 1 or dilation < 1:
        raise ValueError("stride and dilation must be at least 1")
    spans = [dilation * (k - 1) + 1 for k in w.shape]
    if isinstance(padding, str) and padding == "valid":
        margins = [(0, 0), (0, 0)]
    elif isinstance(padding, str) and padding == "full":
        margins = [(span - 1, span - 1) for span in spans]
    elif isinstance(padding, str) and padding == "same":
        totals = [max((-(-n // stride) - 1) * stride + span - n, 0) for n, span in zip(x.shape, spans)]
        margins = [(total // 2, total - total // 2) for total in totals]
    elif isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        margins = [(padding, padding), (padding, padding)]
    else:
        raise ValueError(f"unknown padding {{padding!r}}")
    padded = np.pad(x, margins)
    if spans[0] > padded.shape[0] or spans[1] > padded.shape[1]:
        raise ValueError("the kernel does not fit in the padded image")
    dilated = np.zeros(spans)
    dilated[::dilation, ::dilation] = w
    return {call}[::stride, ::stride]
'''

# Five kinds of wrong submission, taken in turn:
# (name, {grade_id: answer, or None for the release's stub}, note, whether nbgrader may score it higher)
WrongKind = tuple[str, dict[str, str | None], str, bool]


def wrong_kinds(answers: dict[str, str]) -> list[WrongKind]:
    """The wrong submissions' answers, as edits of the source's answers."""
    return [
        ("scipy-compiled", {"ex2-solution": LIBRARY_CORRELATE.format(
            extra_import="\nfrom scipy.signal import _sigtools",
            call="_sigtools._convolve2d(padded, dilated, 0, 0, 0, 0)")},
         "correlate2d calls SciPy's compiled _convolve2d (nbgrader's profile hook misses it)", True),
        ("scipy", {"ex2-solution": LIBRARY_CORRELATE.format(
            extra_import="", call='scipy.signal.correlate2d(padded, dilated, mode="valid")')},
         "correlate2d calls scipy.signal.correlate2d", False),
        ("off-by-one", {
            "ex1-solution": edited(answers["ex1-solution"], "(height + 2 * rows, width + 2 * cols)",
                                   "(height + rows, width + cols)"),
            "ex4-solution": edited(answers["ex4-solution"], "span = dilation * (k - 1) + 1", "span = k")},
         "zero_pad pads one side only; output_size ignores dilation", False),
        ("no-flip", {
            "ex3-solution": edited(answers["ex3-solution"], "w[::-1, ::-1]", "w"),
            "ex7-solution": edited(answers["ex7-solution"], "np.full((size, size), 1 / size ** 2)",
                                   "np.ones((size, size))")},
         "convolve2d does not flip the kernel; avg_pool2d sums", False),
        ("unfinished", {grade_id: None for grade_id in ("ex6-solution", "ex7-solution", "ex8-solution")},
         "exercises 6-8 left unanswered", False),
    ]


SCRATCH_CELL = "# trying my padding on the photo\nprint(zero_pad(camera, 2).shape)"


@dataclass
class Submission:
    student: str
    kind: str                         # correct, blank or wrong
    note: str
    notebook: nbformat.NotebookNode
    nbgrader_may_score_higher: bool = False


def class_mix(total: int) -> dict[str, int]:
    """How many correct, blank and wrong submissions a class of ``total`` has (half, a quarter, a quarter)."""
    wrong = blank = (total + 1) // 4
    return {"correct": total - wrong - blank, "blank": blank, "wrong": wrong}


def make_class(release: nbformat.NotebookNode, source: nbformat.NotebookNode, total: int) -> list[Submission]:
    """The class of ``total`` submissions (see the module docstring)."""
    answers = answers_of(source)
    kinds = wrong_kinds(answers)
    mix = class_mix(total)
    submissions = []

    def answered(replacements: dict[str, str | None]) -> nbformat.NotebookNode:
        notebook = copy.deepcopy(release)
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                answer = replacements.get(grade_id, answers[grade_id])
                if answer is not None:  # None: the release's stub stays
                    cell.source = answer
        return notebook

    for number in range(1, mix["correct"] + 1):
        notebook = answered({})
        note = "the source's answers"
        if number % 2 == 0:
            position = next(index for index, cell in enumerate(notebook.cells)
                            if cell.metadata.get("nbgrader", {}).get("grade_id") == "ex1-check")
            notebook.cells.insert(position + 1, nbformat.v4.new_code_cell(SCRATCH_CELL))
            note += " and a scratch cell"
        submissions.append(Submission(f"correct-{number:02d}", "correct", note, notebook))
    for number in range(1, mix["blank"] + 1):
        submissions.append(Submission(f"blank-{number:02d}", "blank", "the release as handed out",
                                      copy.deepcopy(release)))
    for number in range(1, mix["wrong"] + 1):
        name, replacements, note, may_score_higher = kinds[(number - 1) % len(kinds)]
        submissions.append(Submission(f"wrong-{number:02d}-{name}", "wrong", note, answered(replacements),
                                      may_score_higher))
    return submissions


# --------------------------------------------------------------------------------------------
# Course folders and the two graders


def environment(course: Path) -> dict[str, str]:
    """The environment both graders run in: this Python's scripts on PATH, quiet TensorFlow."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # nbgrader_config.py creates the exchange folder named by NBGRADER_EXCHANGE (a shared
    # JupyterHub's, if the caller exported one): keep it inside the temporary course.
    env["NBGRADER_EXCHANGE"] = str(course / "exchange")
    return env


def make_template(folder: Path) -> Path:
    """A course folder with the PS1 source, released there (which also records it in its gradebook)."""
    folder.mkdir()
    shutil.copy(REPO_ROOT / "nbgrader_config.py", folder / "nbgrader_config.py")
    shutil.copytree(REPO_ROOT / "solutions" / ASSIGNMENT, folder / "solutions" / ASSIGNMENT,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    completed = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force"],
                               cwd=folder, env=environment(folder), capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"error: nbgrader generate_assignment failed:\n{completed.stderr[-3000:]}")
    return folder


def make_course(template: Path, folder: Path, submissions: list[Submission]) -> Path:
    """A copy of the template course with every submission collected into it."""
    shutil.copytree(template, folder)
    for submission in submissions:
        target = folder / "nbgrader" / "submitted" / submission.student / ASSIGNMENT
        target.mkdir(parents=True)
        nbformat.write(submission.notebook, target / NOTEBOOK)
        (target / "timestamp.txt").write_text(TIMESTAMP)
    return folder


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores of the machine have been busy since boot (``None`` without ``/proc/stat``)."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal: everything but idle and iowait is busy
    return (sum(ticks[:3]) + sum(ticks[5:8])) / CLOCK_TICKS


def program_name(pid: int) -> str:
    """A short name for what a process runs: a Python script's or module's name, else the program's."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = [part.decode(errors="replace") for part in cmdline.read().split(b"\0") if part]
    except OSError:
        return "?"
    if not argv:
        return "?"
    program = os.path.basename(argv[0])
    if program.startswith("python"):
        arguments = [part for part in argv[1:] if part not in ("-I", "-S", "-u", "-B")]
        if arguments[:1] == ["-m"] and len(arguments) > 1:
            return f"python -m {arguments[1]}"
        if arguments[:1] == ["-c"]:
            return "python -c (a script of the notebook)"
        if arguments:
            return f"python {os.path.basename(arguments[0])}"
    return program


class CpuMeter:
    """CPU seconds a process and its descendants use, and what the rest of the machine uses meanwhile.

    The grader's processes are not all waited for by their parents (a sandbox's processes end
    with their PID namespace), so ``getrusage`` misses most of them; instead a thread reads
    ``/proc/<pid>/stat`` of every descendant every ``interval`` seconds and keeps each one's
    latest CPU time. Processes shorter than ``interval``, and each one's last moments, are
    missed: the figure is a slight underestimate. Linux only (``None`` elsewhere).
    """

    def __init__(self, pid: int, interval: float = 0.25):
        self.pid, self.interval = pid, interval
        self.latest: dict[tuple[int, str], int] = {}   # (pid, start time) -> CPU ticks
        self.programs: dict[tuple[int, str], str] = {}  # (pid, start time) -> program_name(...)
        self.busy_before = machine_busy_seconds()
        self.own_before = time.process_time()
        self.available = self.busy_before is not None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        if self.available:
            self._thread.start()

    def _sample(self) -> None:
        children, ticks = {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    text = stat.read()
                # after "(command)": state ppid ... utime(12th) stime(13th) ... starttime(20th)
                fields = text[text.rindex(")") + 2:].split()
                pid = int(entry.name)
                children.setdefault(int(fields[1]), []).append(pid)
                ticks[pid] = (int(fields[11]) + int(fields[12]), fields[19])
            except (OSError, ValueError, IndexError):
                continue  # the process ended while we read it
        stack = [self.pid]
        while stack:
            pid = stack.pop()
            if pid in ticks:
                used, started = ticks[pid]
                key = (pid, started)
                self.latest[key] = max(self.latest.get(key, 0), used)
                # read again each time: a launcher (bwrap, _sandbox_exec.py) becomes the program it runs
                name = program_name(pid)
                if name != "?" or key not in self.programs:
                    self.programs[key] = name
            stack.extend(children.get(pid, ()))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def by_program(self) -> dict[str, float]:
        """CPU seconds per program (see :func:`program_name`), largest first."""
        seconds: dict[str, float] = {}
        for key, used in self.latest.items():
            seconds[self.programs[key]] = seconds.get(self.programs[key], 0.0) + used / CLOCK_TICKS
        return dict(sorted(seconds.items(), key=lambda item: -item[1]))

    def stop(self) -> tuple[float | None, float | None]:
        """(CPU seconds of the process tree, CPU seconds every other process used meanwhile)."""
        if not self.available:
            return None, None
        self._stop.set()
        self._thread.join()
        tree = sum(self.latest.values()) / CLOCK_TICKS
        busy = machine_busy_seconds() - self.busy_before
        own = time.process_time() - self.own_before   # this script, the meter's own reading included
        return tree, max(busy - tree - own, 0.0)


@dataclass
class Run:
    """One grader's run over the class."""

    label: str
    workers: int | None               # ours: worker count; None for nbgrader (serial)
    wall_seconds: float
    load_before: list[float]
    load_after: list[float]
    cpu_seconds: float | None = None             # used by the grader (all its processes)
    others_cpu_seconds: float | None = None      # used meanwhile by every other process on the machine
    student_seconds: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    output: str = ""
    cpu_by_program: dict[str, float] = field(default_factory=dict)


def run_nbgrader(course: Path, total: int) -> Run:
    """``nbgrader autograde`` over the whole class, serial, with a progress bar read from its log."""
    from tqdm.auto import tqdm

    load_before = load_average()
    started = time.perf_counter()
    log, student_started, student_seconds = [], {}, {}
    process = subprocess.Popen([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT], cwd=course,
                               env=environment(course), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    meter = CpuMeter(process.pid)
    # nbgrader logs "Autograding <folder>/<student>/<assignment>/<notebook>" when it starts a
    # notebook; the next such line (or the end) means the previous one is done.
    starts = re.compile(r"Autograding .*[/\\]([^/\\]+)[/\\]" + re.escape(ASSIGNMENT) + r"[/\\]")
    current = None
    with tqdm(total=total, desc="nbgrader autograde (serial)", unit="submission", dynamic_ncols=True) as bar:
        for line in process.stdout:
            log.append(line)
            match = starts.search(line)
            if match:
                now = time.perf_counter()
                if current is not None:
                    student_seconds[current] = now - student_started[current]
                    bar.update(1)
                current = match.group(1)
                student_started[current] = now
        status = process.wait()
        cpu_seconds, others_cpu_seconds = meter.stop()
        if current is not None:
            student_seconds[current] = time.perf_counter() - student_started[current]
            bar.update(1)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"error: nbgrader autograde exited with {status}:\n{''.join(log)[-4000:]}")
    return Run("nbgrader autograde (serial)", None, wall, load_before, load_average(), cpu_seconds, others_cpu_seconds,
               student_seconds=student_seconds, output="".join(log), cpu_by_program=meter.by_program())


def run_ours(course: Path, workers: int, unsafe_no_sandbox: bool) -> Run:
    """``python -m cnn_course.grading autograde`` over the whole class; its own progress bar shows."""
    argv = [sys.executable, "-m", "cnn_course.grading", "autograde", ASSIGNMENT, "--workers", str(workers)]
    if unsafe_no_sandbox:
        argv.append("--unsafe-no-sandbox")
    load_before = load_average()
    started = time.perf_counter()
    # stdout (its summary) is kept; stderr (its tqdm bar) goes straight to the terminal.
    process = subprocess.Popen(argv, cwd=course, env=environment(course), stdout=subprocess.PIPE, text=True)
    meter = CpuMeter(process.pid)
    summary, _ = process.communicate()
    cpu_seconds, others_cpu_seconds = meter.stop()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv[1:])} exited with {process.returncode}:\n{summary[-4000:]}")
    student_seconds, statuses, problems = {}, {}, {}
    with open(course / "nbgrader" / "grading" / ASSIGNMENT / "grades.csv", newline="") as table:
        for row in csv.DictReader(table):
            student_seconds[row["student"]] = float(row["seconds"]) if row["seconds"] else float("nan")
            statuses[row["student"]] = row["status"]
            if row["problems"]:
                problems[row["student"]] = row["problems"]
    sandbox = "sandbox OFF" if unsafe_no_sandbox else "sandbox on"
    return Run(f"ours, {workers} worker{'s' if workers > 1 else ''}, {sandbox}", workers, wall, load_before,
               load_average(), cpu_seconds, others_cpu_seconds, student_seconds, statuses, problems, summary,
               meter.by_program())


def read_scores(course: Path) -> dict[str, dict[str, float]]:
    """``{student: {grade_id: auto_score}}`` from a course folder's gradebook."""
    from nbgrader.api import Gradebook
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    scores = {}
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gradebook:
        for submission in gradebook.assignment_submissions(ASSIGNMENT):
            cells = {}
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    cells[grade.name] = float(grade.auto_score or 0)
            scores[submission.student_id] = cells
    return scores


def max_scores(source: nbformat.NotebookNode) -> dict[str, float]:
    return {cell.metadata.nbgrader["grade_id"]: float(cell.metadata.nbgrader["points"])
            for cell in source.cells if cell.metadata.get("nbgrader", {}).get("grade")}


# --------------------------------------------------------------------------------------------
# Comparing the scores


@dataclass
class Difference:
    student: str
    grade_id: str
    nbgrader: float | None
    ours: float | None
    expected: bool
    why: str


def compare(submissions: list[Submission], nbgrader: dict, ours: dict, maximum: dict[str, float]) -> list[Difference]:
    """Every cell where the graders differ or a score is not what the submission's kind must get."""
    differences = []
    for submission in submissions:
        theirs, mine = nbgrader.get(submission.student, {}), ours.get(submission.student, {})
        for grade_id, points in maximum.items():
            a, b = theirs.get(grade_id), mine.get(grade_id)
            if a != b:
                expected = submission.nbgrader_may_score_higher and a is not None and b is not None and a > b
                why = ("a library answer that only ours rejects" if expected
                       else "missing in a gradebook" if a is None or b is None else "the graders disagree")
                differences.append(Difference(submission.student, grade_id, a, b, expected, why))
            must = {"correct": points, "blank": 0.0}.get(submission.kind)
            for grader, score in (("nbgrader", a), ("ours", b)):
                if must is not None and score is not None and score != must:
                    differences.append(Difference(submission.student, grade_id, a, b, False,
                                                  f"{grader} gives a {submission.kind} submission "
                                                  f"{score:g} of {points:g}, not {must:g}"))
    return differences


# --------------------------------------------------------------------------------------------
# Report


def total(scores: dict[str, float] | None) -> str:
    return "—" if scores is None else f"{sum(scores.values()):g}"


def others_busy(run: Run) -> str:
    """How many cores other processes kept busy, on average, during the run."""
    return "—" if run.others_cpu_seconds is None else f"{run.others_cpu_seconds / run.wall_seconds:.2f}"


def sweep_speedups(sweep_runs: list[Run]) -> tuple[int, dict[int, float]]:
    """(the smallest worker count swept, {workers: its throughput over that of the smallest count})."""
    by_workers = {run.workers: run.wall_seconds for run in sweep_runs}
    fewest = min(by_workers)
    return fewest, {workers: by_workers[fewest] / seconds for workers, seconds in sorted(by_workers.items())}


def print_report(submissions, runs: dict[str, Run], scores: dict[str, dict], maximum, differences, sweep_runs):
    count = len(submissions)
    print()
    print(f"PS1 ({ASSIGNMENT}), {count} submissions: " + ", ".join(
        f"{number} {kind}" for kind, number in class_mix(count).items()) + f"; {os.cpu_count()} cores")
    print()
    header = (f"{'grader':<32} {'wall':>8} {'s/submission':>13} {'vs nbgrader':>12} {'CPU s/submission':>17} "
              f"{'others busy':>12} {'load before → after':>20}")
    print(header)
    print("-" * len(header))
    baseline = runs["nbgrader"].wall_seconds / count
    shown = [runs["nbgrader"], runs["ours"]] + [run for run in sweep_runs if run is not runs["ours"]]
    for run in shown:
        per = run.wall_seconds / count
        print(f"{run.label:<32} {run.wall_seconds:>7.1f}s {per:>13.2f} {baseline / per:>11.2f}× "
              f"{'—' if run.cpu_seconds is None else f'{run.cpu_seconds / count:.2f}':>17} {others_busy(run):>12} "
              f"{run.load_before[0]:>9.2f} → {run.load_after[0]:<8.2f}")
    if len(sweep_runs) > 1:
        fewest, speedups = sweep_speedups(sweep_runs)
        print(f"Ours with more workers (throughput relative to {fewest} worker{'s' if fewest > 1 else ''}; "
              "linear growth would match the worker ratio): "
              + ", ".join(f"{workers} → {speedup:.2f}×" for workers, speedup in speedups.items()))
    print("CPU s/submission: CPU time of the grader's own processes (sandboxes included) per submission;")
    print("others busy: cores kept busy by other processes on the machine meanwhile (0 on a quiet machine).")
    print()
    print("Where the CPU goes (CPU seconds per submission, by program; sampled, so a slight underestimate):")
    for run in (runs["nbgrader"], runs["ours"]):
        shares = [f"{name} {seconds / count:.2f}" for name, seconds in run.cpu_by_program.items()
                  if seconds / count >= 0.05]
        print(f"  {run.label}: " + ("; ".join(shares) if shares else "—"))
    print()
    print("Median seconds to grade one submission (each grader's own clock; ours grades several at once):")
    for kind in ("correct", "blank", "wrong"):
        students = [s.student for s in submissions if s.kind == kind]
        if not students:
            continue
        medians = []
        for run in (runs["nbgrader"], runs["ours"]):
            values = [run.student_seconds[student] for student in students if student in run.student_seconds]
            medians.append(f"{statistics.median(values):6.1f}" if values else "     —")
        print(f"  {kind:<8} nbgrader {medians[0]} s   ours {medians[1]} s")
    print()
    points = sum(maximum.values())
    print(f"Scores (of {points:g}):")
    print(f"  {'student':<28} {'nbgrader':>8} {'ours':>6}  {'status (ours)':<13} what it is")
    for submission in submissions:
        student = submission.student
        print(f"  {student:<28} {total(scores['nbgrader'].get(student)):>8} {total(scores['ours'].get(student)):>6}  "
              f"{runs['ours'].statuses.get(student, '—'):<13} {submission.note}")
    if runs["ours"].problems:
        # The table joins a student's notes with " | "; the same note for many students is printed once.
        students_of: dict[str, list[str]] = {}
        for student, problems in runs["ours"].problems.items():
            for note in problems.split(" | "):
                students_of.setdefault(note, []).append(student)
        print("Notes ours wrote into its table:")
        for note, students in students_of.items():
            who = ", ".join(students) if len(students) <= 3 else f"{len(students)} of {count} students"
            print(f"  [{who}] {note}")
    print()
    expected = [d for d in differences if d.expected]
    unexpected = [d for d in differences if not d.expected]
    if expected:
        print("Expected differences (a library answer that only ours rejects; nbgrader → ours):")
        for student in dict.fromkeys(d.student for d in expected):
            cells = ", ".join(f"{d.grade_id} {d.nbgrader:g} → {d.ours:g}" for d in expected if d.student == student)
            print(f"  {student}: {cells}")
    if unexpected:
        print("UNEXPECTED differences:")
        for d in unexpected:
            print(f"  {d.student} {d.grade_id}: nbgrader {d.nbgrader}, ours {d.ours}: {d.why}")
    else:
        print("Every other score agrees: correct submissions get full marks and blank ones zero from both graders.")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=20, metavar="N",
                        help="class size: half correct, a quarter blank, a quarter wrong (default 20)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 submissions (one of each kind)")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="ours: submissions graded at once (default 2)")
    parser.add_argument("--workers-sweep", type=int, nargs="+", metavar="N",
                        help="also time ours with each of these worker counts, e.g. 1 2")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="run ours without a sandbox (machines without bubblewrap; not the benchmark's figure)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary course folders and say where")
    args = parser.parse_args(argv)
    count = 3 if args.quick else args.submissions
    if count < 1 or args.workers < 1 or any(n < 1 for n in args.workers_sweep or []):
        parser.error("--submissions, --workers and --workers-sweep take whole numbers of 1 or more")

    from cnn_course.grading.sandbox import sandbox_status

    available, sandbox = sandbox_status()
    if not available and not args.unsafe_no_sandbox:
        print(f"error: no working sandbox ({sandbox}); the benchmark times ours with the sandbox on. "
              "Install bubblewrap (make system-deps), or add --unsafe-no-sandbox for an indicative figure.")
        return 2
    if args.unsafe_no_sandbox:
        sandbox = "none (--unsafe-no-sandbox)"

    start_load = load_average()
    print(f"Load average now {start_load[0]:.2f} {start_load[1]:.2f} {start_load[2]:.2f} on {os.cpu_count()} cores"
          + (" — the machine is busy: both graders will be slower and the figures noisy." if start_load[0] >= 1.5
             else "."), flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="autograde-throughput-"))
    try:
        template = make_template(workdir / "template")
        release = nbformat.read(template / "assignments" / ASSIGNMENT / NOTEBOOK, as_version=4)
        source = nbformat.read(template / "solutions" / ASSIGNMENT / NOTEBOOK, as_version=4)
        submissions = make_class(release, source, count)
        maximum = max_scores(source)
        subprocess.run([sys.executable, "-c", WARM_UP], env=environment(template), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"Grading {count} PS1 submissions with plain nbgrader (serial), then with ours "
              f"({args.workers} worker{'s' if args.workers > 1 else ''}, sandbox: {sandbox}).", flush=True)

        runs = {"nbgrader": run_nbgrader(make_course(template, workdir / "nbgrader", submissions), count)}
        runs["ours"] = run_ours(make_course(template, workdir / "ours", submissions), args.workers,
                                args.unsafe_no_sandbox)
        scores = {"nbgrader": read_scores(workdir / "nbgrader"), "ours": read_scores(workdir / "ours")}
        sweep_runs, sweep_disagreements = [], []
        for workers in args.workers_sweep or []:
            if workers == args.workers:
                sweep_runs.append(runs["ours"])
                continue
            folder = make_course(template, workdir / f"ours-{workers}-workers", submissions)
            sweep_runs.append(run_ours(folder, workers, args.unsafe_no_sandbox))
            swept = read_scores(folder)
            if swept != scores["ours"]:
                sweep_disagreements.append(f"ours with {workers} workers gives other scores than with {args.workers}")
    finally:
        if args.keep:
            print(f"Course folders kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    differences = compare(submissions, scores["nbgrader"], scores["ours"], maximum)
    print_report(submissions, runs, scores, maximum, differences, sweep_runs)
    for disagreement in sweep_disagreements:
        print(f"UNEXPECTED: {disagreement}.")
    unexpected = sum(not d.expected for d in differences) + len(sweep_disagreements)
    per_submission = {name: round(run.wall_seconds / count, 2) for name, run in runs.items()}
    result = {
        "assignment": ASSIGNMENT,
        "submissions": count,
        "mix": class_mix(count),
        "seconds_per_submission": per_submission,
        "ratio": round(runs["nbgrader"].wall_seconds / runs["ours"].wall_seconds, 2),
        "wall_seconds": {name: round(run.wall_seconds, 1) for name, run in runs.items()},
        "cpu_seconds_per_submission": {name: None if run.cpu_seconds is None else round(run.cpu_seconds / count, 2)
                                       for name, run in runs.items()},
        "others_cores_busy": {name: None if run.others_cpu_seconds is None
                              else round(run.others_cpu_seconds / run.wall_seconds, 2) for name, run in runs.items()},
        "workers": args.workers,
        "cores": os.cpu_count(),
        "sandbox": sandbox,
        "load_average": {"start": start_load,
                         **{name: [run.load_before, run.load_after] for name, run in runs.items()}},
        "sweep": ({str(run.workers): {"seconds_per_submission": round(run.wall_seconds / count, 2),
                                       "throughput_vs_fewest_workers": round(sweep_speedups(sweep_runs)[1][run.workers], 2),
                                       "load_average": [run.load_before, run.load_after],
                                       "others_cores_busy": None if run.others_cpu_seconds is None
                                       else round(run.others_cpu_seconds / run.wall_seconds, 2)}
                   for run in sweep_runs} if sweep_runs else None),
        "scores_agree": unexpected == 0,
        "expected_differences": sum(d.expected for d in differences),
        "unexpected_differences": unexpected,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    print(json.dumps(result), flush=True)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
