"""The start page links every lecture notebook and assignment, and every link works."""

from __future__ import annotations

import re
from urllib.parse import unquote

import nbformat
from conftest import REPO_ROOT
from notebooks import find_notebooks

START_PAGE = REPO_ROOT / "course" / "00_start_here.ipynb"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _relative_links():
    notebook = nbformat.read(START_PAGE, as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    links = [unquote(target.split("#")[0]) for target in LINK.findall(text)]
    return [link for link in links if link and "://" not in link and not link.startswith("mailto:")]


def test_every_relative_link_on_the_start_page_resolves():
    broken = [link for link in _relative_links() if not (START_PAGE.parent / link).exists()]
    assert not broken, f"broken links on the start page: {broken}"


def test_start_page_links_every_notebook_and_assignment():
    linked = {(START_PAGE.parent / link).resolve() for link in _relative_links()}
    expected = [p for p in find_notebooks("course", "assignments") if p != START_PAGE]
    missing = [str(p.relative_to(REPO_ROOT)) for p in expected if p.resolve() not in linked]
    assert expected, "no notebooks besides the start page?"
    assert not missing, f"add these to the week map on the start page: {missing}"
