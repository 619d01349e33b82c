"""Kernel settings for the course's environment: `make setup` copies this file to
.venv/etc/ipython/, where every IPython kernel started from that environment reads it
(JupyterLab's, the tests', nbgrader's).

TensorFlow 2.21 writes two C++ log lines ("WARNING: All log messages before
absl::InitializeLog() is called are written to STDERR" and oneDNN's "I0000 ... port.cc")
straight to the process's stderr when it is imported, whatever TF_CPP_MIN_LOG_LEVEL says
(abseil logs before it is initialised; upstream bug). By default ipykernel copies such
low-level output into the notebook, where it shows as a pink box under the first import.
With this setting it goes to the terminal that runs the kernel (the one `make lab` runs
in) instead; Python's own prints, warnings and tracebacks still show in the notebook.
"""

c = get_config()  # noqa: F821 -- injected by traitlets when it loads this file

c.IPKernelApp.capture_fd_output = False
