"""Sphinx configuration: furo theme, MyST Markdown pages, API reference from docstrings.

No intersphinx: the docs build offline, and links to the standard library or anyio are
written out by hand where they matter.
"""

from __future__ import annotations

import super_visor

project = "super_visor"
author = "the super_visor authors"
copyright = "the super_visor authors"
release = super_visor.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# MyST: `{directive}` fences, and anchors for headings so pages can link to sections.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Docstrings use Google style (napoleon) and single backticks for cross-references.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
default_role = "py:obj"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"super_visor {release}"
