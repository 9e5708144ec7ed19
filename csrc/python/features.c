/*
 * features.c - binding of csrc/core/features.c: side features of users or
 * items, as the tuples the SGD epoch with features also takes.
 */
#include "binding.h"

void features_view_release(features_view *v)
{
    for (int j = 0; j < 5; j++)
        Py_CLEAR(v->held[j]);
}

int features_view_get(PyObject *obj, features_view *v, npy_intp n_rows, npy_intp k,
                      const char *name, int *present)
{
    memset(v, 0, sizeof *v);
    *present = 0;
    if (obj == Py_None)
        return 0;
    PyObject *indptr, *indices, *weights, *factors, *bias;
    if (!PyTuple_Check(obj) ||
        !PyArg_ParseTuple(obj, "OOOOO", &indptr, &indices, &weights, &factors, &bias)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected None or a tuple (indptr, indices, "
                     "weights, factors, bias)", name);
        return -1;
    }
    if (!(v->held[0] = as_indices(indptr, NPY_INT64, 1, "features indptr")) ||
        !(v->held[1] = as_indices(indices, NPY_INT32, 1, "features indices")) ||
        !(v->held[2] = as_array(weights, NPY_FLOAT32, 1, "features weights")) ||
        !(v->held[3] = as_output(factors, NPY_FLOAT32, 2, "features factors")) ||
        (bias != Py_None && !(v->held[4] = as_output(bias, NPY_FLOAT32, 1, "features bias"))))
        return -1;
    npy_intp n_features = PyArray_DIM(v->held[3], 0);
    if (PyArray_DIM(v->held[0], 0) != n_rows + 1 || PyArray_DIM(v->held[3], 1) != k ||
        same_length(v->held[1], v->held[2], "features indices", "features weights") < 0 ||
        (v->held[4] && PyArray_DIM(v->held[4], 0) != n_features) ||
        check_int32_size(n_features, "the number of features") < 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "%s: expected indptr of %zd entries, factors with "
                         "%zd columns and one bias per feature", name, (Py_ssize_t)n_rows + 1,
                         (Py_ssize_t)k);
        return -1;
    }
    v->f.x.n_rows = (int32_t)n_rows;
    v->f.x.n_cols = (int32_t)n_features;
    v->f.x.nnz = PyArray_DIM(v->held[1], 0);
    v->f.x.indptr = PyArray_DATA(v->held[0]);
    v->f.x.indices = PyArray_DATA(v->held[1]);
    v->f.x.values = PyArray_DATA(v->held[2]);
    v->f.V = PyArray_DATA(v->held[3]);
    v->f.bias = v->held[4] ? PyArray_DATA(v->held[4]) : NULL;
    *present = 1;
    return 0;
}

BINDING_KW(features_apply, "(features, free, free_bias, eff, eff_bias, n_threads=1)",
"Effective rows from free rows and side features: eff = free + X V and,\n"
"when free_bias and eff_bias are given, eff_bias = free_bias + X c.\n"
"features: (indptr, indices, weights, factors, bias or None). eff and\n"
"eff_bias are written in place.")
{
    static char *kwlist[] = {"features", "free", "free_bias", "eff", "eff_bias", "n_threads",
                             NULL};
    PyObject *fo, *free_o, *fb_o, *eff_o, *eb_o, *result = NULL;
    PyArrayObject *free = NULL, *free_bias = NULL, *eff = NULL, *eff_bias = NULL;
    features_view v = {0};
    int n_threads = 1, present, status;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOO|i", kwlist, &fo, &free_o, &fb_o,
                                     &eff_o, &eb_o, &n_threads))
        return NULL;
    if (!(free = as_array(free_o, NPY_FLOAT32, 2, "free")) ||
        !(eff = as_output(eff_o, NPY_FLOAT32, 2, "eff")))
        goto cleanup;
    if ((fb_o == Py_None) != (eb_o == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "free_bias and eff_bias: give both or neither");
        goto cleanup;
    }
    if (fb_o != Py_None && (!(free_bias = as_array(fb_o, NPY_FLOAT32, 1, "free_bias")) ||
                            !(eff_bias = as_output(eb_o, NPY_FLOAT32, 1, "eff_bias"))))
        goto cleanup;
    npy_intp n = PyArray_DIM(free, 0), k = PyArray_DIM(free, 1);
    if (PyArray_DIM(eff, 0) != n || PyArray_DIM(eff, 1) != k ||
        (free_bias && (PyArray_DIM(free_bias, 0) != n || PyArray_DIM(eff_bias, 0) != n))) {
        PyErr_SetString(PyExc_ValueError, "free, eff, free_bias and eff_bias must have one "
                        "row per row of the features, and free and eff the same shape");
        goto cleanup;
    }
    if (check_int32_size(n, "rows") < 0 || check_int32_size(k, "columns") < 0 ||
        features_view_get(fo, &v, n, k, "features", &present) < 0)
        goto cleanup;
    if (!present) {
        PyErr_SetString(PyExc_TypeError, "features: expected a tuple, got None");
        goto cleanup;
    }
    Py_BEGIN_ALLOW_THREADS
    status = mfr_features_apply(&v.f, (int32_t)k, PyArray_DATA(free),
                                free_bias ? PyArray_DATA(free_bias) : NULL, PyArray_DATA(eff),
                                eff_bias ? PyArray_DATA(eff_bias) : NULL, n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "features_apply");
        goto cleanup;
    }
    Py_INCREF(Py_None);
    result = Py_None;
cleanup:
    features_view_release(&v);
    Py_XDECREF(free);
    Py_XDECREF(free_bias);
    Py_XDECREF(eff);
    Py_XDECREF(eff_bias);
    return result;
}

PyMethodDef mfr_py_features_functions[] = {METHOD(features_apply), {NULL}};
