"""JupyterLab settings for the course, used by `make lab` (JUPYTER_CONFIG_PATH=jupyter_config).

The server serves the whole repository (course/, assignments/, solutions/), so the
start page's links to the problem sets work and nbgrader's Formgrader finds
nbgrader_config.py; the printed URL, and the browser tab `make lab` opens, show the
start page. labconfig/page_config.json beside this file switches off the parts of
JupyterLab that do not fit a course run from a clone (see the README).
"""

import os

c = get_config()  # noqa: F821 -- injected by traitlets when it loads this file

# The repository root: this file's parent folder, wherever make is started from.
c.ServerApp.root_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
c.LabApp.default_url = "/lab/tree/course/00_start_here.ipynb"
# Docker containers and cloud VMs run as root, where JupyterLab refuses to start
# unless this is set. (It changes nothing for other users.)
c.ServerApp.allow_root = True
