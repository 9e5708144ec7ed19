"""notebooks/recommendations.ipynb runs end to end (MovieLens from $MFREC_DATA)."""
import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_recommendations_notebook_runs():
    if not os.environ.get("MFREC_DATA"):
        pytest.fail("set MFREC_DATA to the folder holding ml-100k/")
    nb = nbformat.read(ROOT / "notebooks" / "recommendations.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "Return of the Jedi (1983)" in text  # Star Wars' nearest neighbour is listed
