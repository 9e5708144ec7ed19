"""The SVD notebooks run end to end (nbclient); their assert cells check the
figures (orthogonality, Eckart-Young, fills compared, the table)."""
import os

import pytest

import mfrec

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "notebooks")


def run_notebook(name, monkeypatch, timeout=120):
    """Execute notebooks/<name> in a fresh python3 kernel that imports this
    mfrec; returns the text of its outputs. Any failing cell raises."""
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


def test_truncated_svd(monkeypatch):
    text = run_notebook("truncated_svd.ipynb", monkeypatch)
    assert "max |U^T U - I|" in text and "singular values agree with numpy.linalg.svd" in text
    assert "baseline only: test RMSE" in text and "top 10 of" in text


def test_latest_small(monkeypatch):
    text = run_notebook("latest_small.ipynb", monkeypatch)
    assert "NMF factors are non-negative: True" in text and "best RMSE:" in text
