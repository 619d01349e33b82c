"""Safe grading of nbgrader assignments (instructor tooling).

Every submission runs in its own sandbox; hidden tests run in a separate
judge process that sees only the student's answers. Nothing in ``cnn_course``
imports this package, and students do not need its dependencies (the
``grading`` extra of ``utils/pyproject.toml``).
"""
