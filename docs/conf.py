"""Sphinx configuration of mfrec's reference site.

Build (the C core must be importable: installed, or built in place with the
repository root on PYTHONPATH), warnings as errors, then the doctests over
the same doctrees:

    sphinx-build -W --keep-going -b html -d docs/_build/doctrees docs docs/_build/html
    sphinx-build -W --keep-going -b doctest -d docs/_build/doctrees docs docs/_build/doctest

The notebooks of ../notebooks are copied into notebooks/ (git-ignored) and
rendered with their outputs. myst-nb executes them ("cache" mode: again only
when their code changes), unless $MFREC_EXECUTED_NOTEBOOKS names a folder of
executed copies, which tests/test_notebooks.py writes there: then every
notebook must have a copy with its cells, and none runs here. CI does this,
so each notebook runs once (the suite runs them anyway, and they take
minutes) and the site shows the outputs the suite checked.
"""
import os
import warnings

import nbformat

import mfrec

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = os.path.join(os.path.dirname(HERE), "notebooks")
RENDERED = os.path.join(HERE, "notebooks")

project = "mfrec"
copyright = "the mfrec authors"
release = version = mfrec.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# ---- API pages from the docstrings -------------------------------------------
# numpydoc reports a malformed docstring as a Python warning, which -W misses
warnings.filterwarnings("error", category=UserWarning, module="numpydoc")
autosummary_generate = True
autodoc_typehints = "none"          # the numpydoc sections say the types
autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
doctest_global_setup = "import numpy as np\nimport mfrec"

# ---- pages in MyST Markdown and the notebooks -------------------------------
myst_enable_extensions = ["dollarmath", "amsmath"]
nb_execution_mode = "cache"
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_show_tb = True


def _cells(book):
    return [(c.cell_type, c.source) for c in book.cells]


def _copy(source, target):
    """Copy unless target has the same bytes (Sphinx rereads changed files)."""
    with open(source, "rb") as f:
        data = f.read()
    if os.path.exists(target):
        with open(target, "rb") as f:
            if f.read() == data:
                return
    with open(target, "wb") as f:
        f.write(data)


def _copy_notebooks():
    """Copy the notebooks next to the pages; an executed copy (same cells)
    replaces its source and is excluded from execution. Returns the names
    that still need executing."""
    executed = os.environ.get("MFREC_EXECUTED_NOTEBOOKS")
    os.makedirs(RENDERED, exist_ok=True)
    to_run = []
    for name in sorted(f for f in os.listdir(SOURCES) if f.endswith(".ipynb")):
        source = os.path.join(SOURCES, name)
        copy = os.path.join(executed, name) if executed else None
        if copy and os.path.exists(copy) and \
                _cells(nbformat.read(copy, 4)) == _cells(nbformat.read(source, 4)):
            _copy(copy, os.path.join(RENDERED, name))
        elif executed:  # the caller meant each notebook to run once, in the tests
            raise RuntimeError(f"MFREC_EXECUTED_NOTEBOOKS={executed} has no executed copy of "
                               f"{name} with the cells of notebooks/{name}: run "
                               "tests/test_notebooks.py with it set, or unset it")
        else:
            _copy(source, os.path.join(RENDERED, name))
            to_run.append(name)
    return to_run


_to_run = _copy_notebooks()
nb_execution_excludepatterns = [f"notebooks/{name}" for name in
                                sorted(set(os.listdir(RENDERED)) - set(_to_run))
                                if name.endswith(".ipynb")]
if _to_run:
    if not os.environ.get("MFREC_DATA"):
        raise RuntimeError("the notebooks read MovieLens: set MFREC_DATA to the folder "
                           "holding ml-100k/ and ml-latest-small/")
    # The kernels import the mfrec that Sphinx documents.
    _root = os.path.dirname(os.path.dirname(os.path.abspath(mfrec.__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (_root, os.environ.get("PYTHONPATH")) if p)

# ---- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"mfrec {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []



def _skip_bare_attributes(app, what, name, obj, skip, options):
    """Attributes declared by an annotation alone have no docstring of their
    own (the class's Attributes section describes them): leave them out."""
    from sphinx.ext import autodoc

    sentinels = [autodoc, getattr(autodoc, "_sentinels", None)]  # Sphinx < 9, >= 9
    bare = [getattr(m, n, None) for m in sentinels
            for n in ("INSTANCEATTR", "INSTANCE_ATTR", "UNINITIALIZED_ATTR")]
    return True if any(obj is b for b in bare if b is not None) else None


def setup(app):
    app.connect("autodoc-skip-member", _skip_bare_attributes)
