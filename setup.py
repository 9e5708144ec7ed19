"""Build of the C extension mfrec._core (the rest is in pyproject.toml).

BLAS/LAPACK come from the scipy-openblas32 wheel. The extension is not
linked against it: its symbols (prefixed "scipy_") are resolved when
``import scipy_openblas32`` has loaded the library globally, which
mfrec/__init__.py does first. So nothing points into the (deleted)
isolated build environment at run time.

Environment switches:
  MFREC_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer build
  MFREC_NATIVE=1    add -march=native (opt-in; the default build is portable)
"""
import os
import re
import sys
from glob import glob

import numpy
import scipy_openblas32
from setuptools import Extension, setup


def blas_macros():
    """The symbol prefix, as the OpenBLAS wheel's pkg-config states it."""
    cflags = re.search(r"^Cflags:(.*)$", scipy_openblas32.get_pkg_config(), re.M).group(1)
    prefix = re.search(r"-DBLAS_SYMBOL_PREFIX=(\S+)", cflags)
    return [("BLAS_SYMBOL_PREFIX", prefix.group(1) if prefix else "scipy_")]


compile_args, link_args = [], []
if sys.platform != "win32":
    # ISO C11 would also imply -ffp-contract=off; fused multiply-adds are
    # 40% of the SGD kernel's speed, so contraction stays on.
    compile_args = ["-std=c11", "-ffp-contract=fast", "-O3", "-fopenmp",
                    "-fvisibility=hidden", "-Wall",
                    # Python's CFLAGS add -fwrapv, which stops GCC vectorizing
                    # loops with offset int bounds (2.5x in the ALS Cholesky);
                    # the core never relies on signed overflow (UBSan checks).
                    "-fno-wrapv",
                    "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers",
                    "-Wno-cast-function-type"]
    link_args = ["-fopenmp"]
    if os.environ.get("MFREC_SANITIZE") == "1":
        sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                    "-fno-sanitize-recover=undefined"]
        compile_args = [a for a in compile_args if a != "-O3"] + ["-O1", "-g"] + sanitize
        link_args += sanitize
    if os.environ.get("MFREC_NATIVE") == "1":
        compile_args.append("-march=native")

setup(
    ext_modules=[
        Extension(
            "mfrec._core",
            # the pure C core, then the CPython binding (the only C that
            # includes Python.h); the binding sees the core's headers
            sources=sorted(glob("csrc/core/*.c")) + sorted(glob("csrc/python/*.c")),
            depends=sorted(glob("csrc/core/*.h")) + sorted(glob("csrc/python/*.h")),
            include_dirs=[numpy.get_include(), "csrc/core"],
            define_macros=blas_macros(),
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
    ],
)
