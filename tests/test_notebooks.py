"""The notebooks run end to end (nbclient), so they never rot. Each checks its
own figures against the document's with assert cells."""
import os

import pytest

import mfrec

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "notebooks")


def run_notebook(name, monkeypatch, timeout=120):
    """Execute notebooks/<name> in a fresh python3 kernel that imports this
    mfrec; nbclient raises CellExecutionError on any failing cell."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(mfrec.__file__)))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    client = nbclient.NotebookClient(book, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": NOTEBOOKS}})
    client.execute()
    return "\n".join(str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
                     for cell in book.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []))


def test_level1_sgd(monkeypatch):
    text = run_notebook("level1_sgd.ipynb", monkeypatch)
    assert "best test RMSE" in text and "0.9388" in text
    assert "predicted rating" in text and "reloaded" in text


def test_sgd_from_scratch(monkeypatch):
    text = run_notebook("sgd_from_scratch.ipynb", monkeypatch)
    assert "about 0.91" in text and "dL/dp" in text and "relative difference" in text
