"""Regenerate the released student notebooks in assignments/ from solutions/.

Every folder ``solutions/<name>/`` is an nbgrader assignment; this runs
``nbgrader generate_assignment <name> --force`` for each, which rewrites
``assignments/<name>/`` (solutions and hidden tests removed, outputs cleared)
and records the assignment in the git-ignored gradebook ``nbgrader/gradebook.db``
so that the course's grader (``python -m cnn_course.grading autograde <name>``, or
``make autograde A=<name>``) can grade it later.

Usage, from the repository root (or anywhere)::

    .venv/bin/python tools/release.py              # every assignment
    .venv/bin/python tools/release.py ps0_images   # only the ones named

tests/test_nbgrader_roundtrip.py fails when a committed release is out of date
with its source; running this script and committing assignments/ fixes that.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = REPO_ROOT / "solutions"


def assignment_names(solutions_dir=SOLUTIONS_DIR):
    """Return the sorted names of the assignments in ``solutions_dir``.

    An assignment is a sub-folder holding at least one ``.ipynb`` file
    (checkpoint folders are skipped).

    Examples
    --------
    >>> "ps0_images" in assignment_names()
    True
    """
    solutions_dir = Path(solutions_dir)
    return sorted(
        folder.name
        for folder in solutions_dir.iterdir()
        if folder.is_dir() and not folder.name.startswith(".") and any(folder.glob("*.ipynb"))
    )


def nbgrader_environment(base=None):
    """Return a copy of ``base`` (default ``os.environ``) fit for running nbgrader.

    nbgrader runs the ``alembic`` command when it creates a gradebook database,
    so the folder of this Python's scripts must be on PATH even when the
    virtual environment is not activated.
    """
    env = dict(os.environ if base is None else base)
    scripts_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([scripts_dir, env.get("PATH", "")])
    return env


def generate_release(name, course_root=REPO_ROOT, env=None):
    """Run ``nbgrader generate_assignment name --force`` in ``course_root``.

    ``name`` may be ``"*"``: nbgrader then releases every assignment of the source
    folder in one run (it reads the names from the folders), which saves starting
    nbgrader once per assignment.

    Raises ``subprocess.CalledProcessError`` (with nbgrader's log in
    ``.stdout``/``.stderr``) when nbgrader fails.
    """
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force"],
        cwd=course_root,
        env=nbgrader_environment(env),
        check=True,
        capture_output=True,
        text=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="assignments to release (default: all in solutions/)")
    args = parser.parse_args(argv)

    known = assignment_names()
    unknown = sorted(set(args.names) - set(known))
    if unknown:
        parser.error(f"no such assignment in solutions/: {', '.join(unknown)} (known: {', '.join(known)})")
    # Without names, one nbgrader run releases them all.
    for pattern in args.names or ["*"]:
        try:
            generate_release(pattern)
        except subprocess.CalledProcessError as error:
            sys.stderr.write(error.stdout + error.stderr)
            sys.exit(f"nbgrader generate_assignment {pattern} failed (exit status {error.returncode})")
    for name in args.names or known:
        print(f"released solutions/{name}/ -> assignments/{name}/")


if __name__ == "__main__":
    main()
