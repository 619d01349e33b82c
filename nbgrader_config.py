"""nbgrader configuration for the course (instructor side).

Layout (all paths relative to the repository root, which is this file's folder):

- ``solutions/<assignment>/``   source notebooks with solutions and hidden tests
- ``assignments/<assignment>/`` released student notebooks (committed to git)
- ``nbgrader/``                 everything produced while grading: submissions,
                                autograded notebooks, feedback, the gradebook
                                database and the exchange. Git-ignored: it holds
                                student work.

See docs/nbgrader.md for the instructor workflow.
"""

import os

c = get_config()  # noqa: F821 -- injected by traitlets when it loads this file

# The folder holding this file. nbgrader runs it with __file__ set, so grading
# works the same whichever folder the command is started from.
COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))
GRADING_DIR = os.path.join(COURSE_ROOT, "nbgrader")

c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.root = COURSE_ROOT
c.CourseDirectory.source_directory = "solutions"
# The default directory_structure "{nbgrader_step}/{student_id}/{assignment_id}"
# with student "." for releases gives a flat assignments/<assignment>/ folder.
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = os.path.join("nbgrader", "submitted")
c.CourseDirectory.autograded_directory = os.path.join("nbgrader", "autograded")
c.CourseDirectory.feedback_directory = os.path.join("nbgrader", "feedback")
c.CourseDirectory.solution_directory = os.path.join("nbgrader", "solution")
c.CourseDirectory.source_with_tests_directory = os.path.join("nbgrader", "source_with_tests")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(GRADING_DIR, "gradebook.db")
# `nbgrader zip_collect` reads submissions downloaded from a learning platform
# from nbgrader/downloaded/<assignment>/archive/ (docs/nbgrader.md).
c.ZipCollectApp.downloaded_directory = os.path.join("nbgrader", "downloaded")

# The system-wide default /usr/local/share/nbgrader/exchange usually is not
# writable. On a shared JupyterHub, point NBGRADER_EXCHANGE at the common folder.
EXCHANGE_ROOT = os.environ.get("NBGRADER_EXCHANGE", os.path.join(GRADING_DIR, "exchange"))
c.Exchange.root = EXCHANGE_ROOT

# SQLite cannot create the gradebook in a missing folder, and JupyterLab's
# formgrader and assignment list report "the exchange directory does not exist"
# until something is released, so create both now. A read-only checkout (a
# student's copy) has no use for them, so failing here is fine.
for folder in (GRADING_DIR, EXCHANGE_ROOT):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        pass

# Seconds a single cell may run while autograding (nbgrader's default is 30).
# Later problem sets train small CNNs on a CPU, which takes minutes; an endless
# loop still ends here. Checked with nbgrader 0.9.6: its Execute preprocessor
# reads Execute.timeout; ExecutePreprocessor.timeout (nbconvert's parent class)
# also reaches it but loses when both are set, so only Execute.timeout is set.
c.Execute.timeout = 600

# Feedback never shows hidden tests. The course's grader (python -m cnn_course.grading
# autograde, docs/nbgrader.md) never writes them into the autograded notebook; plain
# `nbgrader autograde` does, so ClearHiddenTests runs first as a second line of defence
# (nbgrader's own feedback preprocessors follow it).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
