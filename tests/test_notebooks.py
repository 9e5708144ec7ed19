"""Every notebook runs end to end (nbclient), so none can rot. Each checks
its own figures against the document's with assert cells; the markers below
check that the cells that matter printed their result.

With $MFREC_EXECUTED_NOTEBOOKS set, each notebook that passes is also written
there with its outputs, for the reference site (docs/conf.py renders those
copies instead of running the notebooks a second time)."""
import os

import pytest

import mfrec

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "notebooks")

# notebook -> texts its outputs must contain
MARKERS = {
    "level1_sgd.ipynb": ["best test RMSE", "0.9388", "predicted rating", "reloaded"],
    "sgd_from_scratch.ipynb": ["about 0.91", "dL/dp", "relative difference"],
    "truncated_svd.ipynb": ["max |U^T U - I|", "singular values agree with numpy.linalg.svd",
                            "baseline only: test RMSE", "closed form vs iterative",
                            "top 10 of"],
    "latest_small.ipynb": ["NMF factors are non-negative: True", "best RMSE:"],
    "recommendations.ipynb": ["Return of the Jedi (1983)",
                              "SGD with negatives beats popularity on the whole catalogue"],
    "weighted_mf.ipynb": ["observed only: high everywhere", "best on validation",
                          "weighted beats popularity and SVD"],
    "level2.ipynb": ["tuned (search)", "ndcg@10", "baseline only (no genres)",
                     "learned genre biases"],
    "dask_scale_out.ipynb": ["factors identical to the single-process fit: True",
                             "routed exchange: largest relative difference",
                             "top-N lists identical", "peak RSS per worker"],
    "bayesian_mf.ipynb": ["Bayesian MF beats SGD and ALS", "last sweep, test RMSE",
                          "90% intervals cover", "mean std, users with < 40 ratings"],
}


def run_notebook(name, monkeypatch, timeout=180):
    """Execute notebooks/<name> in a fresh python3 kernel that imports this
    mfrec; returns the executed notebook and the text of its outputs. Any
    failing cell raises."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(mfrec.__file__)))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
    # the kernel's own inline backend: figures become image outputs for the site
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    book = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), \
        f"{name} is stored with outputs"
    client = nbclient.NotebookClient(book, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": NOTEBOOKS}})
    client.execute()
    return book, "\n".join(str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
                     for cell in book.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []))


def test_every_notebook_is_checked():
    assert sorted(f for f in os.listdir(NOTEBOOKS) if f.endswith(".ipynb")) == sorted(MARKERS)


@pytest.mark.parametrize("name", sorted(MARKERS))
def test_notebook_runs(name, monkeypatch):
    if not os.environ.get("MFREC_DATA"):
        pytest.fail("set MFREC_DATA to the folder holding ml-100k/ and ml-latest-small/")
    book, text = run_notebook(name, monkeypatch)
    missing = [m for m in MARKERS[name] if m not in text]
    assert not missing, f"{name}: outputs lack {missing}"
    executed = os.environ.get("MFREC_EXECUTED_NOTEBOOKS")
    if executed:
        os.makedirs(executed, exist_ok=True)
        nbformat.write(book, os.path.join(executed, name))
