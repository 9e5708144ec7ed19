"""The weighted-MF notebook runs end to end (nbclient, kernel python3)."""
import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_weighted_mf_notebook_runs():
    path = os.path.join(ROOT, "notebooks", "weighted_mf.ipynb")
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "store the notebook without outputs"
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": ROOT}}).execute()
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                   for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "best on validation" in text
