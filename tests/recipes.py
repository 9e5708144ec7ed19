"""One entry per algorithm: the small, fast settings the shared tests fit it
with, and what it promises beyond what every algorithm must do.

test_contract.py runs the same checks over every entry (and fails if an
algorithm of mfrec.algorithms.ALGORITHMS has none); test_properties.py,
test_fuzz.py and test_topn.py fit their models from these settings too.
What the registry itself says (iterations_param, clip_predictions,
defaults) is read from the algorithm's class, not repeated here.

To add an algorithm: one line in RECIPES, e.g.
    "nmf": Recipe(dict(factors=3, epochs=3, seed=0)),
with the promises it does NOT keep set to False (thread_independent=False
if its result changes with n_threads, ...).
"""
from dataclasses import dataclass, field

from mfrec.algorithms import ALGORITHMS


@dataclass(frozen=True)
class Recipe:
    #: parameters that fit in milliseconds on the contract's data (seed included)
    params: dict = field(default_factory=dict)
    #: the same factors for any n_threads (False: repeatable for a fixed count only)
    thread_independent: bool = True
    #: another seed gives other factors (False: the fit does not use the seed)
    seed_changes_fit: bool = True
    #: fold_in needs an explicit regularization (the algorithm has none to reuse)
    fold_in_needs_regularization: bool = False
    #: global_mean is 0 or the training mean (False: fitted, e.g. sampled)
    fixed_global_mean: bool = True


RECIPES = {
    "sgd": Recipe(dict(factors=3, epochs=3, learning_rate=0.02, seed=0),
                  thread_independent=False),  # blocks of ratings per thread (README)
    "als": Recipe(dict(factors=3, iterations=3, seed=0)),
    # weighted MF with row and column weights (implicit feedback: test_als.py)
    "wals": Recipe(dict(factors=3, iterations=3, unobserved_weight=0.05, row_weights=0.5,
                        col_weights=0.5, seed=0)),
    # the dense solver draws nothing; LAPACK's threads round the float64 spectrum
    # differently (the float32 factors agree)
    "svd": Recipe(dict(factors=3, seed=0), seed_changes_fit=False, thread_independent=False,
                  fold_in_needs_regularization=True),
    "nmf": Recipe(dict(factors=3, epochs=3, seed=0)),
    "popular": Recipe(dict(seed=0), seed_changes_fit=False),
    # Gibbs sampling, random streams per fixed block of rows: any thread count
    "bayes": Recipe(dict(factors=3, sweeps=6, burn_in=1, seed=0), fixed_global_mean=False),
}


def recipe_params(algorithm, **override):
    """The recipe's parameters with `override` applied, keeping only those
    the algorithm takes (e.g. no factors for "popular")."""
    params = {**RECIPES[algorithm].params, **override}
    return {k: v for k, v in params.items() if k in ALGORITHMS[algorithm].defaults}


def iterations(algorithm) -> int:
    """Iterations a fit with the recipe runs: 1 for a closed form."""
    name = ALGORITHMS[algorithm].iterations_param
    return recipe_params(algorithm)[name] if name else 1
