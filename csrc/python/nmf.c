/*
 * nmf.c - binding of csrc/core/nmf.c: one NMF epoch, and the objective.
 */
#include "binding.h"

/* Both functions: the same arguments, checked alike. */
static PyObject *nmf_call(PyObject *module, PyObject *args, PyObject *kwds, int epoch)
{
    static char *kwlist[] = {"model", "by_user", "by_item", "regularization",
                             "bias_regularization", "biases", "n_threads", NULL};
    const char *what = epoch ? "nmf_epoch" : "nmf_objective";
    PyObject *mo, *uo, *io, *result = NULL;
    mfr_nmf_params p = mfr_nmf_default_params();
    double out = 0.0;
    int status;
    model_view v = {0};
    csr_view bu = {0}, bi = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|$ffpi", kwlist, &mo, &uo, &io,
                                     &p.regularization, &p.bias_regularization, &p.biases,
                                     &p.n_threads))
        return NULL;
    ModelObject *model = as_model(module, mo);
    if (!model || model_view_get(model, &v, p.biases) < 0)
        goto cleanup;
    if (!(p.regularization >= 0.0f) || !isfinite(p.regularization) ||
        !(p.bias_regularization >= 0.0f) || !isfinite(p.bias_regularization)) {
        PyErr_SetString(PyExc_ValueError,
                        "regularization and bias_regularization must be finite and >= 0");
        goto cleanup;
    }
    if (csr_view_get_by_user(&bu, uo, &v.m, "by_user") < 0 ||
        csr_view_get(&bi, io, v.m.n_users, "by_item") < 0)
        goto cleanup;
    if (csr_views_transposed(&bu, &bi, "by_user", "by_item") < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = epoch ? mfr_nmf_epoch(&v.m, &p, &bu.csr, &bi.csr, &out)
                   : mfr_nmf_objective(&v.m, &p, &bu.csr, &bi.csr, &out);
    Py_END_ALLOW_THREADS
    if (status == MFR_EINVAL)
        PyErr_Format(PyExc_ValueError, "%s: the factors must be finite and non-negative", what);
    else if (status != MFR_OK)
        raise_status(status, what);
    else
        result = PyFloat_FromDouble(out);
cleanup:
    model_view_release(&v);
    csr_view_release(&bu);
    csr_view_release(&bi);
    return result;
}

BINDING_KW(nmf_epoch, "(model, by_user, by_item, *, regularization=0.1,\n"
"          bias_regularization=15.0, biases=False, n_threads=1)",
"One NMF epoch (csrc/core/nmf.c) updating the model's arrays in place; by_item\n"
"must be by_user transposed and the factors non-negative. Returns the\n"
"objective after the epoch.")
{
    return nmf_call(module, args, kwds, 1);
}

BINDING_KW(nmf_objective, "(model, by_user, by_item, *, regularization=0.1,\n"
"              bias_regularization=15.0, biases=False, n_threads=1)",
"The NMF objective of the model as it is (same arguments as nmf_epoch).")
{
    return nmf_call(module, args, kwds, 0);
}

PyMethodDef mfr_py_nmf_functions[] = {METHOD(nmf_epoch), METHOD(nmf_objective), {NULL}};
