"""The installed package imports, reports its build and fits a tiny model."""
import numpy as np

import mfrec


def test_build_info_names_the_variants():
    info = mfrec.build_info()
    assert info["mfrec"] == mfrec.__version__
    assert info["simd"].split()[0] in {"x86-64-v4", "x86-64-v3", "default"}
    assert "OpenBLAS" in info["openblas"]


def test_fit_predict_on_planted_data():
    data = mfrec.make_low_rank(n_users=60, n_items=50, rank=3, density=0.5, noise=0.05, seed=1)
    r = data.ratings
    model = mfrec.Model("sgd", factors=3, learning_rate=0.02, regularization=0.0,
                        epochs=200, seed=0).fit(r)
    pred = model.predict(r.user, r.item, clip=False)
    assert np.sqrt(np.mean((pred - r.rating) ** 2)) < 3 * data.noise
