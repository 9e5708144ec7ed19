"""Types of mfrec._core, the C binding (csrc/python/).

Signatures follow each function's PyArg_ParseTupleAndKeywords format and
keyword list: arguments after ``|`` have the defaults the C code starts
from, those after ``$`` are keyword-only, and functions parsed with
PyArg_ParseTuple take positional arguments only.
`python -m mypy.stubtest mfrec._core` checks this file against the module.
"""
from typing import Final, Literal, Optional, SupportsFloat, SupportsIndex, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
from typing_extensions import disjoint_base

__version__: Final[str]
MAX_THREADS: Final[int]

# A CSR matrix as build_csr returns it: (indptr int64, indices int32, values float32).
_CSR = tuple[ArrayLike, ArrayLike, ArrayLike]
# One side's features: (indptr, indices, weights, factors, bias or None);
# factors and bias are updated in place.
_Features = tuple[ArrayLike, ArrayLike, ArrayLike, NDArray[np.float32],
                  Optional[NDArray[np.float32]]]
# Top-n lists: (items int32, scores float32, counts int32), padded with -1 / NaN.
_Lists = tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.int32]]
# An SVD: (singular values, U, V), float64.
_SVD = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]


@disjoint_base
class Model:
    """The factor model of the C core; mfrec.Model builds on it."""

    @property
    def user_factors(self) -> Optional[NDArray[np.float32]]: ...
    @user_factors.setter
    def user_factors(self, value: Optional[ArrayLike]) -> None: ...
    @property
    def item_factors(self) -> Optional[NDArray[np.float32]]: ...
    @item_factors.setter
    def item_factors(self, value: Optional[ArrayLike]) -> None: ...
    @property
    def user_bias(self) -> Optional[NDArray[np.float32]]: ...
    @user_bias.setter
    def user_bias(self, value: Optional[ArrayLike]) -> None: ...
    @property
    def item_bias(self) -> Optional[NDArray[np.float32]]: ...
    @item_bias.setter
    def item_bias(self, value: Optional[ArrayLike]) -> None: ...
    @property
    def seen_indptr(self) -> Optional[NDArray[np.int64]]: ...
    @seen_indptr.setter
    def seen_indptr(self, value: Optional[ArrayLike]) -> None: ...
    @property
    def seen_indices(self) -> Optional[NDArray[np.int32]]: ...
    @seen_indices.setter
    def seen_indices(self, value: Optional[ArrayLike]) -> None: ...
    @property
    def global_mean(self) -> float: ...
    @global_mean.setter
    def global_mean(self, value: SupportsFloat) -> None: ...
    def _predict(self, users: ArrayLike, items: ArrayLike,
                 n_threads: int = 1) -> NDArray[np.float32]: ...


# library information
def openblas_config() -> str: ...
def simd_variant() -> str: ...


# ratings
@overload
def build_csr(rows: ArrayLike, cols: ArrayLike, values: Optional[ArrayLike],
              n_rows: SupportsIndex, n_cols: SupportsIndex, *, keep_values: Literal[True] = True
              ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]: ...
@overload
def build_csr(rows: ArrayLike, cols: ArrayLike, values: Optional[ArrayLike],
              n_rows: SupportsIndex, n_cols: SupportsIndex, *, keep_values: Literal[False]
              ) -> tuple[NDArray[np.int64], NDArray[np.int32], None]: ...
def transpose_csr(csr: _CSR, n_cols: SupportsIndex, n_threads: int = 1
                  ) -> tuple[NDArray[np.int64], NDArray[np.int32],
                             Optional[NDArray[np.float32]]]: ...
def sealed_indices(a: ArrayLike, /) -> NDArray[np.int32]: ...
def rmse_mae(predictions: ArrayLike, truth: ArrayLike, /) -> tuple[float, float]: ...
def predict_sse(model: Model, by_user: _CSR, n_threads: int = 1) -> float: ...
def init_factors(out: NDArray[np.float32], kind: int, scale: float, seed: int,
                 stream: int, /) -> None: ...


# side features
def features_apply(features: _Features, free: ArrayLike, free_bias: Optional[ArrayLike],
                   eff: NDArray[np.float32], eff_bias: Optional[NDArray[np.float32]],
                   n_threads: int = 1) -> None: ...


# SGD
def sgd_epoch(model: Model, users: ArrayLike, items: ArrayLike, ratings: ArrayLike, *,
              learning_rate: float = 0.005, regularization: float = 0.02,
              biases: bool = True, seed: int = 0, epoch: int = 0, n_threads: int = 1,
              negatives: int = 0, negative_rating: float = 0.0,
              rated: Optional[_CSR] = None) -> float: ...
def sgd_epoch_features(model: Model, users: ArrayLike, items: ArrayLike, ratings: ArrayLike,
                       *, user_features: Optional[_Features] = None,
                       item_features: Optional[_Features] = None,
                       learning_rate: float = 0.005, regularization: float = 0.02,
                       biases: bool = True, seed: int = 0, epoch: int = 0,
                       negatives: int = 0, negative_rating: float = 0.0,
                       rated: Optional[_CSR] = None) -> float: ...


# truncated SVD and baselines
def svd_dense(a: ArrayLike, k: SupportsIndex, overwrite_a: bool = False,
              n_threads: int = 1) -> _SVD: ...
def svd_densify(by_row: _CSR, row_fill: ArrayLike, col_fill: ArrayLike,
                add_fill: bool = False, n_threads: int = 1) -> NDArray[np.float64]: ...
def svd_frobenius2(by_row: _CSR, row_fill: ArrayLike, col_fill: ArrayLike,
                   add_fill: bool = False) -> float: ...
def svd_randomized(by_row: _CSR, by_col: _CSR, row_fill: ArrayLike, col_fill: ArrayLike,
                   k: SupportsIndex, *, add_fill: bool = False, oversampling: int = 20,
                   power_iterations: int = 20, seed: int = 0, n_threads: int = 1) -> _SVD: ...
def baseline_biases(by_user: _CSR, by_item: _CSR, mu: float, reg_user: float,
                    reg_item: float, passes: int, n_threads: int = 1
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...


# NMF
def nmf_epoch(model: Model, by_user: _CSR, by_item: _CSR, *, regularization: float = 0.1,
              bias_regularization: float = 15.0, biases: bool = False,
              n_threads: int = 1) -> float: ...
def nmf_objective(model: Model, by_user: _CSR, by_item: _CSR, *,
                  regularization: float = 0.1, bias_regularization: float = 15.0,
                  biases: bool = False, n_threads: int = 1) -> float: ...


# top-N and ranking metrics
def recommend(model: Model, users: Optional[ArrayLike], n: SupportsIndex, *,
              exclude_seen: bool, pool: Optional[ArrayLike], n_threads: int) -> _Lists: ...
def recommend_vector(model: Model, x: ArrayLike, bias: float, skip: ArrayLike,
                     pool: Optional[ArrayLike], n: SupportsIndex, /) -> _Lists: ...
def similar(factors: ArrayLike, query: ArrayLike, n: SupportsIndex,
            pool: Optional[ArrayLike] = None, n_threads: int = 1) -> _Lists: ...
def fold_in(model: Model, items: ArrayLike, ratings: ArrayLike, regularization: float,
            unrated_weight: float = 0.0, unrated_value: float = 0.0
            ) -> tuple[NDArray[np.float32], float]: ...
def ranking_metrics(recommended: ArrayLike, rel_indptr: ArrayLike, rel_indices: ArrayLike,
                    n_items: SupportsIndex, n_threads: int = 1
                    ) -> tuple[dict[str, float], NDArray[np.float64]]: ...


# ALS family
def als_half_step(indptr: ArrayLike, indices: ArrayLike, values: Optional[ArrayLike],
                  Y: ArrayLike, X: NDArray[np.float32], *,
                  x_bias: Optional[NDArray[np.float32]] = None,
                  y_bias: Optional[ArrayLike] = None, offset: float = 0.0,
                  row_weights: Optional[ArrayLike] = None,
                  col_weights: Optional[ArrayLike] = None, regularization: float = 0.1,
                  scale_regularization: bool = False, unobserved_weight: float = 0.0,
                  alpha: float = 0.0, binary: bool = False,
                  solver: Literal["cholesky", "cg"] = "cholesky", cg_steps: int = 3,
                  n_threads: int = 1, loss: bool = True,
                  gram: Optional[ArrayLike] = None,
                  augmented: bool = False) -> dict[str, float]: ...


# Bayesian MF (Gibbs sampling) and the ordered probit
def bayes_rows(ratings: _CSR, other: ArrayLike, free: NDArray[np.float64],
               eff: NDArray[np.float64], prior_mean: ArrayLike, prior_prec: ArrayLike, *,
               mu: float, alpha: float, seed: int = 0, stream: int = 0, n_threads: int = 1,
               gram: Optional[NDArray[np.float64]] = None,
               gram_rhs: Optional[NDArray[np.float64]] = None) -> None: ...
def bayes_features(ratings: _CSR, other: ArrayLike, eff: NDArray[np.float64],
                   features: _CSR, group: ArrayLike, Y: NDArray[np.float64],
                   prior_mean: ArrayLike, prior_prec: ArrayLike, *, mu: float, alpha: float,
                   seed: int = 0, stream: int = 0, n_threads: int = 1,
                   gram: Optional[ArrayLike] = None,
                   gram_rhs: Optional[ArrayLike] = None) -> None: ...
def bayes_hyper(rows: ArrayLike, k: int, seed: int, stream: int, /
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def bayes_noise(n: int, sum_e: float, sum_e2: float, mu: float, alpha: float, seed: int,
                stream: int, /) -> tuple[float, float]: ...
def bayes_predict(users: ArrayLike, items: ArrayLike, U: ArrayLike, V: ArrayLike, mu: float,
                  n_threads: int = 1, /) -> NDArray[np.float64]: ...
def bayes_pair_rows(a: ArrayLike, b: ArrayLike, A: ArrayLike, B: ArrayLike,
                    n_threads: int = 1, /) -> NDArray[np.float64]: ...
def ordinal_latent(pred: ArrayLike, level: ArrayLike, cuts: ArrayLike, seed: int, stream: int,
                   n_threads: int = 1, /) -> NDArray[np.float64]: ...
def ordinal_loglik(pred: ArrayLike, level: ArrayLike, cuts: ArrayLike, n_threads: int = 1, /
                   ) -> float: ...
def ordinal_probs(pred: ArrayLike, cuts: ArrayLike, n_threads: int = 1, /
                  ) -> NDArray[np.float64]: ...

# id vocabulary
def factorize_records(records: NDArray[np.generic], /
                      ) -> tuple[NDArray[np.int32], NDArray[np.int64]]: ...
