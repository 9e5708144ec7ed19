/*
 * svd.c - binding of csrc/core/svd.c: truncated SVD of a filled rating
 * matrix (dense or randomized), its Frobenius norm, and the baseline
 * biases that make the fill.
 */
#include "binding.h"

/* The filled matrix of csrc/core/svd.c: by_row, optionally by_col, and the fill. */
typedef struct {
    mfr_svd_input in;
    csr_view rows, cols;
    PyArrayObject *f, *g;
} svd_view;

static void svd_view_release(svd_view *v)
{
    csr_view_release(&v->rows);
    csr_view_release(&v->cols);
    Py_CLEAR(v->f);
    Py_CLEAR(v->g);
}

static int svd_view_get(svd_view *v, PyObject *by_row, PyObject *by_col, PyObject *row_fill,
                        PyObject *col_fill, int add_fill)
{
    memset(v, 0, sizeof *v);
    if (!(v->f = as_array(row_fill, NPY_FLOAT64, 1, "row_fill")) ||
        !(v->g = as_array(col_fill, NPY_FLOAT64, 1, "col_fill")))
        return -1;
    npy_intp m = PyArray_DIM(v->f, 0), n = PyArray_DIM(v->g, 0);
    if (m < 1 || n < 1) {
        PyErr_SetString(PyExc_ValueError, "the matrix must have at least one row and column");
        return -1;
    }
    if (csr_view_get(&v->rows, by_row, n, "by_row") < 0)
        return -1;
    if (v->rows.csr.n_rows != m) {
        PyErr_Format(PyExc_ValueError, "row_fill has %zd values for %d rows", (Py_ssize_t)m,
                     v->rows.csr.n_rows);
        return -1;
    }
    for (npy_intp t = 0; t < m + n; t++) {
        double x = t < m ? ((double *)PyArray_DATA(v->f))[t]
                         : ((double *)PyArray_DATA(v->g))[t - m];
        if (!isfinite(x)) {
            PyErr_Format(PyExc_ValueError, "%s must be finite", t < m ? "row_fill" : "col_fill");
            return -1;
        }
    }
    if (by_col) {
        if (csr_view_get(&v->cols, by_col, m, "by_col") < 0)
            return -1;
        if (csr_views_transposed(&v->rows, &v->cols, "by_row", "by_col") < 0)
            return -1;
        v->in.cols = v->cols.csr;
    }
    v->in.rows = v->rows.csr;
    v->in.row_fill = PyArray_DATA(v->f);
    v->in.col_fill = PyArray_DATA(v->g);
    v->in.add_fill = add_fill;
    return 0;
}

BINDING_KW(svd_dense, "(a, k, overwrite_a=False, n_threads=1)",
"SVD of a dense float64 matrix through LAPACK dgesdd. Returns (s, U, V):\n"
"all min(m, n) singular values (descending), U (m x k) and V (n x k), the\n"
"first k singular vectors (v_j's entry of largest magnitude positive).\n"
"With overwrite_a, a (float64, C-contiguous) is used as workspace.")
{
    static char *kwlist[] = {"a", "k", "overwrite_a", "n_threads", NULL};
    PyObject *ao, *result = NULL;
    Py_ssize_t k;
    int overwrite = 0, n_threads = 1, status;
    PyArrayObject *a = NULL, *s = NULL, *U = NULL, *V = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "On|pi", kwlist, &ao, &k, &overwrite,
                                     &n_threads))
        return NULL;
    if (overwrite) {
        if (!PyArray_Check(ao) || PyArray_TYPE((PyArrayObject *)ao) != NPY_FLOAT64 ||
            PyArray_NDIM((PyArrayObject *)ao) != 2 || !PyArray_ISCARRAY((PyArrayObject *)ao)) {
            PyErr_SetString(PyExc_TypeError, "a: overwrite_a needs a writeable C-contiguous "
                                             "2-D float64 array");
            return NULL;
        }
        Py_INCREF(ao);
        a = (PyArrayObject *)ao;
    } else {
        a = (PyArrayObject *)PyArray_FROM_OTF(ao, NPY_FLOAT64,
                                              NPY_ARRAY_CARRAY | NPY_ARRAY_ENSURECOPY);
        if (!a) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "a: expected an array convertible to float64");
            return NULL;
        }
        if (PyArray_NDIM(a) != 2) {
            PyErr_Format(PyExc_ValueError, "a: expected a 2-D array, got %d-D", PyArray_NDIM(a));
            goto cleanup;
        }
    }
    npy_intp m = PyArray_DIM(a, 0), n = PyArray_DIM(a, 1), r = m < n ? m : n;
    if (m < 1 || n < 1 || (int64_t)m * n > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "a: shape (%zd, %zd) is empty or too large for the "
                     "dense SVD (at most 2**31 - 1 entries)", (Py_ssize_t)m, (Py_ssize_t)n);
        goto cleanup;
    }
    if (k < 1 || k > r) {
        PyErr_Format(PyExc_ValueError, "k must be in [1, min(m, n)] = [1, %zd], got %zd",
                     (Py_ssize_t)r, k);
        goto cleanup;
    }
    npy_intp ds[1] = {r}, du[2] = {m, k}, dv[2] = {n, k};
    if (!(s = (PyArrayObject *)PyArray_SimpleNew(1, ds, NPY_FLOAT64)) ||
        !(U = (PyArrayObject *)PyArray_SimpleNew(2, du, NPY_FLOAT64)) ||
        !(V = (PyArrayObject *)PyArray_SimpleNew(2, dv, NPY_FLOAT64)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_svd_dense(PyArray_DATA(a), (int32_t)m, (int32_t)n, (int32_t)k,
                           PyArray_DATA(s), PyArray_DATA(U), PyArray_DATA(V), n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, status == MFR_ENONFINITE ? "svd_dense: a" : "svd_dense");
        goto cleanup;
    }
    result = PyTuple_Pack(3, s, U, V);
cleanup:
    Py_XDECREF(a);
    Py_XDECREF(s);
    Py_XDECREF(U);
    Py_XDECREF(V);
    return result;
}

BINDING_KW(svd_densify, "(by_row, row_fill, col_fill, add_fill=False, n_threads=1)",
"The matrix A = P_Omega(R - F) (+ F if add_fill) as a dense float64 array,\n"
"F = row_fill 1^T + 1 col_fill^T, R given by by_row = (indptr, indices,\n"
"values) (see csrc/core/mfrec.h).")
{
    static char *kwlist[] = {"by_row", "row_fill", "col_fill", "add_fill", "n_threads", NULL};
    PyObject *ro, *fo, *go;
    int add_fill = 0, n_threads = 1, status;
    PyArrayObject *out = NULL;
    svd_view v;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|pi", kwlist, &ro, &fo, &go, &add_fill,
                                     &n_threads))
        return NULL;
    if (svd_view_get(&v, ro, NULL, fo, go, add_fill) < 0)
        goto cleanup;
    npy_intp dims[2] = {v.in.rows.n_rows, v.in.rows.n_cols};
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT64)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_svd_densify(&v.in, PyArray_DATA(out), n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "svd_densify");
        Py_CLEAR(out);
    }
cleanup:
    svd_view_release(&v);
    return (PyObject *)out;
}

BINDING_KW(svd_frobenius2, "(by_row, row_fill, col_fill, add_fill=False)",
"||A||_F^2 of the matrix of svd_densify, computed exactly from the sparse\n"
"part and the rank-2 fill (A is not formed).")
{
    static char *kwlist[] = {"by_row", "row_fill", "col_fill", "add_fill", NULL};
    PyObject *ro, *fo, *go, *result = NULL;
    int add_fill = 0, status;
    double out = 0.0;
    svd_view v;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|p", kwlist, &ro, &fo, &go, &add_fill))
        return NULL;
    if (svd_view_get(&v, ro, NULL, fo, go, add_fill) < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_svd_frobenius2(&v.in, &out);
    Py_END_ALLOW_THREADS
    result = status == MFR_OK ? PyFloat_FromDouble(out) : raise_status(status, "svd_frobenius2");
cleanup:
    svd_view_release(&v);
    return result;
}

BINDING_KW(svd_randomized, "(by_row, by_col, row_fill, col_fill, k, *, add_fill=False,\n"
"               oversampling=20, power_iterations=20, seed=0, n_threads=1)",
"Randomized truncated SVD of the matrix of svd_densify, never formed:\n"
"by_col must be by_row transposed (as build_csr of the swapped triplets).\n"
"Returns (s, U, V): k singular values, U (m x k), V (n x k), float64.")
{
    static char *kwlist[] = {"by_row", "by_col", "row_fill", "col_fill", "k", "add_fill",
                             "oversampling", "power_iterations", "seed", "n_threads", NULL};
    PyObject *ro, *co, *fo, *go, *result = NULL;
    Py_ssize_t k;
    int add_fill = 0, status;
    unsigned long long seed = 0;
    mfr_svd_params p = mfr_svd_default_params();
    PyArrayObject *s = NULL, *U = NULL, *V = NULL;
    svd_view v;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOn|$piiKi", kwlist, &ro, &co, &fo, &go,
                                     &k, &add_fill, &p.oversampling, &p.power_iterations,
                                     &seed, &p.n_threads))
        return NULL;
    p.seed = seed;
    if (svd_view_get(&v, ro, co, fo, go, add_fill) < 0)
        goto cleanup;
    const int32_t m = v.in.rows.n_rows, n = v.in.rows.n_cols;
    if (k < 1 || k > (m < n ? m : n)) {
        PyErr_Format(PyExc_ValueError, "k must be in [1, min(m, n)] = [1, %d], got %zd",
                     m < n ? m : n, k);
        goto cleanup;
    }
    if (p.oversampling < 0 || p.power_iterations < 0) {
        PyErr_SetString(PyExc_ValueError, "oversampling and power_iterations must be >= 0");
        goto cleanup;
    }
    npy_intp ds[1] = {k}, du[2] = {m, k}, dv[2] = {n, k};
    if (!(s = (PyArrayObject *)PyArray_SimpleNew(1, ds, NPY_FLOAT64)) ||
        !(U = (PyArrayObject *)PyArray_SimpleNew(2, du, NPY_FLOAT64)) ||
        !(V = (PyArrayObject *)PyArray_SimpleNew(2, dv, NPY_FLOAT64)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_svd_randomized(&v.in, (int32_t)k, &p, PyArray_DATA(s), PyArray_DATA(U),
                                PyArray_DATA(V));
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "svd_randomized");
        goto cleanup;
    }
    result = PyTuple_Pack(3, s, U, V);
cleanup:
    svd_view_release(&v);
    Py_XDECREF(s);
    Py_XDECREF(U);
    Py_XDECREF(V);
    return result;
}

BINDING_KW(baseline_biases, "(by_user, by_item, mu, reg_user, reg_item, passes, n_threads=1)",
"Damped baseline biases by alternating passes (see csrc/core/mfrec.h). by_item\n"
"must be by_user transposed. Returns (user_bias, item_bias), float64.")
{
    static char *kwlist[] = {"by_user", "by_item", "mu", "reg_user", "reg_item", "passes",
                             "n_threads", NULL};
    PyObject *uo, *io, *result = NULL;
    double mu, reg_user, reg_item;
    int passes, n_threads = 1, status;
    csr_view bu = {0}, bi = {0};
    PyArrayObject *ub = NULL, *ib = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOdddi|i", kwlist, &uo, &io, &mu, &reg_user,
                                     &reg_item, &passes, &n_threads))
        return NULL;
    if (!isfinite(mu) || !(reg_user >= 0.0) || !(reg_item >= 0.0) || !isfinite(reg_user) ||
        !isfinite(reg_item) || passes < 1) {
        PyErr_SetString(PyExc_ValueError, "mu must be finite, reg_user and reg_item finite "
                                          "and >= 0, passes >= 1");
        return NULL;
    }
    if (!PyTuple_Check(io) || PyTuple_GET_SIZE(io) != 3) {
        PyErr_Format(PyExc_TypeError, "by_item: expected a tuple (indptr, indices, values)");
        return NULL;
    }
    /* by_item's row count is the number of items, i.e. by_user's columns */
    Py_ssize_t n_items = PyObject_Length(PyTuple_GET_ITEM(io, 0)) - 1;
    if (n_items < 0) {
        PyErr_Clear();
        n_items = 0;
    }
    if (csr_view_get(&bu, uo, n_items, "by_user") < 0 ||
        csr_view_get(&bi, io, bu.csr.n_rows, "by_item") < 0 ||
        csr_views_transposed(&bu, &bi, "by_user", "by_item") < 0)
        goto cleanup;
    npy_intp dm[1] = {bu.csr.n_rows}, dn[1] = {bi.csr.n_rows};
    if (!(ub = (PyArrayObject *)PyArray_SimpleNew(1, dm, NPY_FLOAT64)) ||
        !(ib = (PyArrayObject *)PyArray_SimpleNew(1, dn, NPY_FLOAT64)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_baseline_biases(&bu.csr, &bi.csr, mu, reg_user, reg_item, passes,
                                 PyArray_DATA(ub), PyArray_DATA(ib), n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "baseline_biases");
        goto cleanup;
    }
    result = PyTuple_Pack(2, ub, ib);
cleanup:
    csr_view_release(&bu);
    csr_view_release(&bi);
    Py_XDECREF(ub);
    Py_XDECREF(ib);
    return result;
}

PyMethodDef mfr_py_svd_functions[] = {METHOD(svd_dense), METHOD(svd_densify),
                                      METHOD(svd_frobenius2), METHOD(svd_randomized),
                                      METHOD(baseline_biases), {NULL}};
