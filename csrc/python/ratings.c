/*
 * ratings.c - binding of csrc/core/ratings.c: rating triplets compressed
 * by row (COO -> CSR), and a CSR transposed.
 */
#include "binding.h"

/* The tuple (indptr, indices, values) of sealed arrays: kernels then read
 * them without a private copy (as_indices). Steals the three references
 * (and clears them), NULL on error. */
static PyObject *sealed_tuple(PyArrayObject **indptr, PyArrayObject **indices,
                              PyArrayObject **values)
{
    PyArrayObject *a = sealed(*indptr), *b = NULL, *c = NULL;
    PyObject *result = NULL;
    b = sealed(*indices);
    c = *values ? sealed(*values) : NULL; /* no values: None (ones) */
    int ok = a && b && (c || !*values);
    *indptr = *indices = *values = NULL;
    if (ok)
        result = PyTuple_Pack(3, a, b, c ? (PyObject *)c : Py_None);
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(c);
    return result;
}

BINDING_KW(build_csr, "(rows, cols, values, n_rows, n_cols, *, keep_values=True)",
"Compress triplets by row: returns (indptr int64, indices int32, values\n"
"float32), read-only, with columns ascending in each row. values may be\n"
"None (ones); keep_values=False returns None for them (the pattern only).\n"
"ValueError on an index out of range or a repeated (row, col) pair.")
{
    static char *kwlist[] = {"rows", "cols", "values", "n_rows", "n_cols", "keep_values", NULL};
    PyObject *ro, *co, *vo, *result = NULL;
    Py_ssize_t n_rows, n_cols;
    int keep_values = 1;
    PyArrayObject *rows = NULL, *cols = NULL, *vals = NULL;
    PyArrayObject *indptr = NULL, *indices = NULL, *values = NULL;
    int status;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOnn|$p", kwlist, &ro, &co, &vo, &n_rows,
                                     &n_cols, &keep_values))
        return NULL;
    if (check_int32_size(n_rows, "n_rows") < 0 || check_int32_size(n_cols, "n_cols") < 0)
        return NULL;
    /* no copies: the core checks each index where it reads it */
    if (!(rows = as_array(ro, NPY_INT32, 1, "rows")) ||
        !(cols = as_array(co, NPY_INT32, 1, "cols")))
        goto cleanup;
    npy_intp nnz = same_length(rows, cols, "rows", "cols");
    if (nnz < 0)
        goto cleanup;
    if (vo != Py_None) {
        if (!(vals = as_array(vo, NPY_FLOAT32, 1, "values")) ||
            same_length(rows, vals, "rows", "values") < 0)
            goto cleanup;
    }
    npy_intp np1 = n_rows + 1;
    if (!(indptr = (PyArrayObject *)PyArray_SimpleNew(1, &np1, NPY_INT64)) ||
        !(indices = (PyArrayObject *)PyArray_SimpleNew(1, &nnz, NPY_INT32)) ||
        (keep_values && !(values = (PyArrayObject *)PyArray_SimpleNew(1, &nnz, NPY_FLOAT32))))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_csr_from_coo(nnz, PyArray_DATA(rows), PyArray_DATA(cols),
                              vals ? PyArray_DATA(vals) : NULL, (int32_t)n_rows,
                              (int32_t)n_cols, PyArray_DATA(indptr), PyArray_DATA(indices),
                              values ? PyArray_DATA(values) : NULL);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "build_csr");
        goto cleanup;
    }
    result = sealed_tuple(&indptr, &indices, &values);
cleanup:
    Py_XDECREF(rows);
    Py_XDECREF(cols);
    Py_XDECREF(vals);
    Py_XDECREF(indptr);
    Py_XDECREF(indices);
    Py_XDECREF(values);
    return result;
}

BINDING_KW(transpose_csr, "(csr, n_cols, n_threads=1)",
"The transpose of csr, a tuple (indptr, indices, values) as build_csr\n"
"returns it with n_cols columns: the same kind of tuple, by column, rows\n"
"ascending in each (what build_csr gives for the swapped triplets).\n"
"values may be None (ones): so are the transpose's.\n"
"ValueError if csr is not a valid CSR with n_cols columns.")
{
    static char *kwlist[] = {"csr", "n_cols", "n_threads", NULL};
    PyObject *co, *result = NULL;
    Py_ssize_t n_cols;
    int n_threads = 1, status;
    csr_view a;
    PyArrayObject *indptr = NULL, *indices = NULL, *values = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "On|i", kwlist, &co, &n_cols, &n_threads))
        return NULL;
    if (csr_view_get_values(&a, co, n_cols, "csr", 1) < 0)
        goto cleanup;
    npy_intp np1 = (npy_intp)n_cols + 1, nnz = (npy_intp)a.csr.nnz;
    if (!(indptr = (PyArrayObject *)PyArray_SimpleNew(1, &np1, NPY_INT64)) ||
        !(indices = (PyArrayObject *)PyArray_SimpleNew(1, &nnz, NPY_INT32)) ||
        (a.csr.values && !(values = (PyArrayObject *)PyArray_SimpleNew(1, &nnz, NPY_FLOAT32))))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_csr_transpose(&a.csr, n_threads, PyArray_DATA(indptr), PyArray_DATA(indices),
                               values ? PyArray_DATA(values) : NULL);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "transpose_csr");
        goto cleanup;
    }
    result = sealed_tuple(&indptr, &indices, &values);
cleanup:
    csr_view_release(&a);
    Py_XDECREF(indptr);
    Py_XDECREF(indices);
    Py_XDECREF(values);
    return result;
}

BINDING_ARGS(sealed_indices, "(a, /)",
"A read-only private copy of a (int32 indices), or a itself if it is one:\n"
"kernels read it without copying it again, because no thread can change it.")
{
    PyObject *ao;
    (void)module;
    if (!PyArg_ParseTuple(args, "O", &ao))
        return NULL;
    PyArrayObject *a = as_indices(ao, NPY_INT32, 1, "a"); /* a copy unless sealed */
    if (!a || a == (PyArrayObject *)ao)
        return (PyObject *)a; /* sealed already */
    return (PyObject *)sealed(a);
}

PyMethodDef mfr_py_ratings_functions[] = {METHOD(build_csr), METHOD(transpose_csr),
                                          METHOD(sealed_indices), {NULL}};
