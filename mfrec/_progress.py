"""Progress bars: tqdm's (``tqdm.auto``: the notebook widget in Jupyter,
text elsewhere). tqdm is optional (the ``progress`` extra): asking for a bar
without it is an ImportError that says how to install it."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

INSTALL = 'pip install "mfrec[progress]"'


def check_progress(progress) -> bool:
    if not isinstance(progress, (bool, np.bool_)):
        raise ValueError(f"progress must be True or False, got {progress!r}")
    return bool(progress)


def tqdm_class() -> Optional[Any]:
    """tqdm.auto's bar class, or None when tqdm is not installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def progress_bar(progress, total: Optional[int], desc: str, **options) -> Optional[Any]:
    """A bar over `total` steps if `progress` is True, else None."""
    if not check_progress(progress):
        return None
    factory = tqdm_class()
    if factory is None:
        raise ImportError(f"progress=True needs tqdm: {INSTALL}")
    return factory(total=total, desc=desc, **options)


def advance(bar, scores: dict) -> None:
    """One more step on `bar` (None: no bar), `scores` as its postfix."""
    if bar is not None:
        bar.set_postfix({k: f"{v:.4f}" for k, v in scores.items()}, refresh=False)
        bar.update(1)


def close(bar) -> None:
    if bar is not None:
        bar.close()
