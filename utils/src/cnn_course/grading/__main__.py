"""``python -m cnn_course.grading``: the grader's command line (see :mod:`cnn_course.grading.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
