/*
 * vocab.c - binding of csrc/core/vocab.c: the distinct values of an array
 * of string, bytes or integer ids in order of first occurrence.
 */
#include "binding.h"

BINDING_ARGS(factorize_records, "(records, /)",
"Number the distinct values of a 1-D str, bytes or integer array in order\n"
"of first occurrence: returns (codes int32, first int64), codes[j] the\n"
"number of records[j] and first[c] the index of number c's first\n"
"occurrence, so that records[first][codes] equals records. Values are\n"
"compared as their bytes (NumPy pads str and bytes with NULs). The GIL\n"
"is released while it hashes.")
{
    PyObject *obj, *result = NULL;
    PyArrayObject *records = NULL, *codes = NULL, *first = NULL, *distinct = NULL;
    int64_t n_unique = 0;
    int status;
    if (!PyArg_ParseTuple(args, "O:factorize_records", &obj))
        return NULL;
    if (!PyArray_Check(obj) || !strchr("USiu", PyArray_DESCR((PyArrayObject *)obj)->kind) ||
        PyArray_NDIM((PyArrayObject *)obj) != 1) {
        PyErr_SetString(PyExc_TypeError,
                        "records: expected a 1-D NumPy array of str, bytes or integers");
        return NULL;
    }
    records = (PyArrayObject *)PyArray_FromAny(obj, NULL, 1, 1, NPY_ARRAY_IN_ARRAY, NULL);
    if (!records)
        return NULL;
    npy_intp n = PyArray_DIM(records, 0);
    if (!(codes = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_INT32)) ||
        !(first = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_INT64)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_factorize_records(n, PyArray_DATA(records), (size_t)PyArray_ITEMSIZE(records),
                                   PyArray_DATA(codes), PyArray_DATA(first), &n_unique);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status_msg(status, status == MFR_EINVAL
                                     ? "records: more than 2**31 - 1 distinct values"
                                     : "factorize_records");
        goto cleanup;
    }
    npy_intp k = (npy_intp)n_unique; /* first's used part, copied: its room was n */
    if (!(distinct = (PyArrayObject *)PyArray_SimpleNew(1, &k, NPY_INT64)))
        goto cleanup;
    memcpy(PyArray_DATA(distinct), PyArray_DATA(first), (size_t)k * sizeof(int64_t));
    result = PyTuple_Pack(2, codes, distinct);
cleanup:
    Py_XDECREF(records);
    Py_XDECREF(codes);
    Py_XDECREF(first);
    Py_XDECREF(distinct);
    return result;
}

PyMethodDef mfr_py_vocab_functions[] = {METHOD(factorize_records), {NULL}};
