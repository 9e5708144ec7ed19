/*
 * foldin.c - binding of csrc/core/foldin.c: the factors of a new user from
 * their ratings (ridge regression against the fixed item factors).
 */
#include "binding.h"

BINDING_KW(fold_in, "(model, items, ratings, regularization, unrated_weight=0.0,\n"
"        unrated_value=0.0)",
"Ridge fold-in of a new user (see mfr_fold_in): item indices (int32) and\n"
"their ratings (float32) -> (factors float32 (k,), bias float; 0.0 for a\n"
"model without biases). unrated_weight > 0 adds every item not rated,\n"
"with that weight, as a rating of unrated_value.")
{
    static char *kwlist[] = {"model", "items", "ratings", "regularization", "unrated_weight",
                             "unrated_value", NULL};
    PyObject *mo, *io, *ro, *result = NULL;
    double lambda, unrated_weight = 0.0, unrated_value = 0.0;
    float b = 0.0f;
    int status;
    PyArrayObject *items = NULL, *ratings = NULL, *x = NULL;
    model_view v = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOd|dd", kwlist, &mo, &io, &ro, &lambda,
                                     &unrated_weight, &unrated_value))
        return NULL;
    ModelObject *model = as_model(module, mo);
    if (!model || model_view_get(model, &v, 0) < 0)
        goto cleanup;
    if (!(items = as_array(io, NPY_INT32, 1, "items")) ||
        !(ratings = as_array(ro, NPY_FLOAT32, 1, "ratings")))
        goto cleanup;
    npy_intp n = same_length(items, ratings, "items", "ratings");
    if (n < 0 || check_int32_size(n, "len(items)") < 0)
        goto cleanup;
    if (n == 0 || !(lambda > 0.0) || !isfinite(lambda)) {
        PyErr_SetString(PyExc_ValueError,
                        "fold_in: needs at least one rating and a finite regularization > 0");
        goto cleanup;
    }
    if (!(unrated_weight >= 0.0) || !isfinite(unrated_weight) || !isfinite(unrated_value)) {
        PyErr_SetString(PyExc_ValueError,
                        "fold_in: unrated_weight must be finite and >= 0, unrated_value finite");
        goto cleanup;
    }
    npy_intp k = v.m.k;
    if (!(x = (PyArrayObject *)PyArray_SimpleNew(1, &k, NPY_FLOAT32)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_fold_in(&v.m, (int32_t)n, PyArray_DATA(items), PyArray_DATA(ratings), lambda,
                         unrated_weight, unrated_value, PyArray_DATA(x), &b);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, status == MFR_ENOTPD
                                 ? "fold_in: the system is singular (regularization too "
                                   "small for these items)"
                             : status == MFR_ERANGE
                                 ? "fold_in: ratings: so extreme that the new user's "
                                   "factors, bias or scores overflow float32"
                                 : "fold_in (items or ratings)");
        goto cleanup;
    }
    result = Py_BuildValue("(Od)", x, (double)b);
cleanup:
    model_view_release(&v);
    Py_XDECREF(items);
    Py_XDECREF(ratings);
    Py_XDECREF(x);
    return result;
}

PyMethodDef mfr_py_foldin_functions[] = {METHOD(fold_in), {NULL}};
