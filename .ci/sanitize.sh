#!/usr/bin/env bash
# The test suite against an AddressSanitizer + UndefinedBehaviorSanitizer
# build of mfrec._core (MFREC_SANITIZE=1 in setup.py), with leak detection on.
#
# The sanitized extension is built in a copy of the tree (build/sanitize/tree
# by default), so the normal in-place build is left alone. CPython is not
# instrumented, so the ASan runtime is preloaded. Any report fails the run:
# ASan and UBSan stop the process at the first error, LeakSanitizer sets a
# non-zero exit status, and every report (subprocesses included) is also
# written under $work/reports and checked at the end.
#
# Usage: .ci/sanitize.sh [pytest arguments]   (default: the whole suite but
# the notebooks and tests marked "slow"). MFREC_DATA must point at the
# MovieLens data; run it in the environment the suite runs in (it builds
# with that python, numpy and setuptools).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=${MFREC_SANITIZE_DIR:-$root/build/sanitize}
python=${PYTHON:-python}

asan=$(gcc -print-file-name=libasan.so)
if [[ "$asan" != /* ]]; then
    echo "sanitize: gcc does not know where libasan.so is" >&2
    exit 2
fi

rm -rf "$work"
mkdir -p "$work/tree" "$work/reports"
tar -C "$root" --exclude=./build --exclude=./.git --exclude='*.so' --exclude='*.o' \
    --exclude=__pycache__ --exclude=.hypothesis --exclude=.pytest_cache \
    --exclude='*.egg-info' --exclude=./dist --exclude='./.venv*' -cf - . |
    tar -C "$work/tree" -xf -
cd "$work/tree"
MFREC_SANITIZE=1 "$python" setup.py -q build_ext --inplace >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; exit 2; }

# PYTHONMALLOC=malloc: every Python object goes through malloc, so ASan sees
# overflows past small objects and LeakSanitizer can follow pointers through
# them (pymalloc arenas would hide both).
export PYTHONMALLOC=malloc
# libstdc++ beside it: C++ extensions the tests load (pyarrow) throw
# exceptions, and ASan's __cxa_throw interceptor needs the real one resolved
# at start-up (CPython itself does not link libstdc++).
cxx=$(gcc -print-file-name=libstdc++.so)
export LD_PRELOAD="$asan:$cxx${LD_PRELOAD:+:$LD_PRELOAD}"
# Leaks are checked once, in the pytest process, after the tests and before
# interpreter finalization (which strands objects on purpose and would bury
# real reports in noise): memory nothing points to any more is a leak, be it
# a malloc of the core or an array whose reference the binding lost.
export ASAN_OPTIONS="detect_leaks=1:leak_check_at_exit=0:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:log_path=$work/reports/asan"
export LSAN_OPTIONS="suppressions=$root/.ci/lsan.supp:print_suppressions=0:exitcode=23"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/reports/ubsan"
export MFREC_SANITIZED=1          # tests that are too slow under ASan shrink themselves
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# The notebooks run in Jupyter kernels (other processes, minutes under ASan)
# and call the entry points the fast tests cover; the browser test drives
# Chromium, which cannot start with the ASan runtime preloaded.
[[ $# -gt 0 ]] || set -- -m "not slow" --ignore=tests/test_notebooks.py --ignore=tests/test_demo_browser.py --durations=10 tests
status=0
"$python" -c '
import ctypes, os, signal, sys
import pytest
# a background job starts with SIGINT ignored, and so would the children
# that the Ctrl-C tests interrupt
signal.signal(signal.SIGINT, signal.default_int_handler)
status = int(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
sys.stdout.flush()
sys.stderr.flush()
ctypes.CDLL(None).__lsan_do_leak_check()  # exits with LSAN exitcode on a leak
os._exit(status)
' "$@" || status=$?

if compgen -G "$work/reports/*" >/dev/null; then
    echo "sanitize: reports written:" >&2
    cat "$work"/reports/* >&2
    [[ $status -ne 0 ]] || status=1
fi
[[ $status -eq 0 ]] && echo "sanitize: no reports"
exit $status
