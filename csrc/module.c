/*
 * module.c - the CPython binding of the mfrec core: mfrec._core.
 *
 * The only file that includes Python.h. It validates and converts every
 * argument, holds references to every array the C code touches, releases
 * the GIL around the C call, and turns status codes into exceptions.
 *
 * Layout: shared helpers, the Model type (which owns the factor arrays),
 * then one section per capability, each with its own function table that
 * the module's exec slot adds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#include <numpy/arrayobject.h>

#include "blas.h"
#include "mfrec.h"

/* ==== shared helpers =================================================== */

/* Set the exception that matches a core status; returns NULL. */
static PyObject *raise_status(int status, const char *what)
{
    PyObject *type;
    switch (status) {
    case MFR_ENOMEM: type = PyExc_MemoryError; break;
    case MFR_EDIVERGED: type = PyExc_FloatingPointError; break;
    case MFR_EINDEX: type = PyExc_IndexError; break;
    case MFR_ELAPACK: type = PyExc_RuntimeError; break;
    default: type = PyExc_ValueError; break;
    }
    PyErr_Format(type, "%s: %s", what, mfr_strerror(status));
    return NULL;
}

/* Replace the exception of a failed conversion of argument `name` to
 * `typenum` by a TypeError that names the argument. */
static void conversion_error(const char *name, int typenum)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_Format(PyExc_TypeError, "%s: expected an array convertible to %s (%S)", name,
                 typenum == NPY_INT32 ? "int32" : typenum == NPY_INT64 ? "int64" :
                 typenum == NPY_FLOAT32 ? "float32" :
                 typenum == NPY_FLOAT64 ? "float64" : "the required dtype",
                 value ? value : Py_None);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* A new reference to an aligned, C-contiguous array of `typenum` with
 * `ndim` dimensions, converted from obj only where the cast is safe.
 * NULL with an exception that names the argument otherwise. */
static PyArrayObject *as_array(PyObject *obj, int typenum, int ndim, const char *name)
{
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROM_OTF(obj, typenum, NPY_ARRAY_IN_ARRAY);
    if (!arr) {
        conversion_error(name, typenum);
        return NULL;
    }
    if (PyArray_NDIM(arr) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s: expected a %d-D array, got %d-D", name,
                     ndim, PyArray_NDIM(arr));
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

/* Like as_array, for arrays the core writes into: never a copy. */
static PyArrayObject *as_output(PyObject *obj, int typenum, int ndim, const char *name)
{
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != typenum ||
        PyArray_NDIM((PyArrayObject *)obj) != ndim ||
        !PyArray_ISCARRAY((PyArrayObject *)obj)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: expected a writeable C-contiguous %d-D array of %s", name,
                     ndim, typenum == NPY_FLOAT32 ? "float32" : "the required dtype");
        return NULL;
    }
    Py_INCREF(obj);
    return (PyArrayObject *)obj;
}

/* 1-D arrays that must all have the same length; returns it, or -1. */
static npy_intp same_length(PyArrayObject *a, PyArrayObject *b, const char *na,
                            const char *nb)
{
    if (PyArray_DIM(a, 0) != PyArray_DIM(b, 0)) {
        PyErr_Format(PyExc_ValueError, "%s and %s must have the same length (%zd != %zd)",
                     na, nb, (Py_ssize_t)PyArray_DIM(a, 0), (Py_ssize_t)PyArray_DIM(b, 0));
        return -1;
    }
    return PyArray_DIM(a, 0);
}

static int check_int32_size(Py_ssize_t n, const char *name)
{
    if (n < 0 || n > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s must be in [0, 2**31 - 1], got %zd", name, n);
        return -1;
    }
    return 0;
}

/* ==== module state and the Model type ================================== */

typedef struct {
    PyTypeObject *model_type;
} module_state;

/* The factor model: prediction = mu + b_u + b_i + P[u] . Q[i]. The arrays
 * are owned here (float32, C-contiguous); the kernels update them in place.
 * seen_indptr/seen_indices: the training items of each user (CSR). */
typedef struct {
    PyObject_HEAD
    PyArrayObject *user_factors, *item_factors, *user_bias, *item_bias;
    PyArrayObject *seen_indptr, *seen_indices;
    double global_mean;
} ModelObject;

static int model_traverse(ModelObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->user_factors);
    Py_VISIT(self->item_factors);
    Py_VISIT(self->user_bias);
    Py_VISIT(self->item_bias);
    Py_VISIT(self->seen_indptr);
    Py_VISIT(self->seen_indices);
    return 0;
}

static int model_clear(ModelObject *self)
{
    Py_CLEAR(self->user_factors);
    Py_CLEAR(self->item_factors);
    Py_CLEAR(self->user_bias);
    Py_CLEAR(self->item_bias);
    Py_CLEAR(self->seen_indptr);
    Py_CLEAR(self->seen_indices);
    return 0;
}

static void model_dealloc(ModelObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    model_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* A consistent mfr_model over the object's arrays, holding a reference to
 * each so that the GIL can be released while the core uses them. */
typedef struct {
    mfr_model m;
    PyArrayObject *held[4];
} model_view;

static void model_view_release(model_view *v)
{
    for (int j = 0; j < 4; j++)
        Py_CLEAR(v->held[j]);
}

static int model_view_get(ModelObject *self, model_view *v, int need_bias)
{
    memset(v, 0, sizeof *v);
    PyArrayObject *P = self->user_factors, *Q = self->item_factors;
    PyArrayObject *bu = self->user_bias, *bi = self->item_bias;
    if (!P || !Q) {
        PyErr_SetString(PyExc_ValueError, "the model has no factors yet: call fit first");
        return -1;
    }
    if (PyArray_DIM(P, 1) != PyArray_DIM(Q, 1) || PyArray_DIM(P, 1) < 1) {
        PyErr_SetString(PyExc_ValueError,
                        "user_factors and item_factors must have the same number of columns");
        return -1;
    }
    if ((bu == NULL) != (bi == NULL) ||
        (bu && (PyArray_DIM(bu, 0) != PyArray_DIM(P, 0) ||
                PyArray_DIM(bi, 0) != PyArray_DIM(Q, 0)))) {
        PyErr_SetString(PyExc_ValueError,
                        "user_bias and item_bias must both be set, with one entry per "
                        "user and per item, or both be None");
        return -1;
    }
    if (need_bias && !bu) {
        PyErr_SetString(PyExc_ValueError, "this operation needs user_bias and item_bias");
        return -1;
    }
    v->m.n_users = (int32_t)PyArray_DIM(P, 0);
    v->m.n_items = (int32_t)PyArray_DIM(Q, 0);
    v->m.k = (int32_t)PyArray_DIM(P, 1);
    v->m.P = PyArray_DATA(P);
    v->m.Q = PyArray_DATA(Q);
    v->m.user_bias = bu ? PyArray_DATA(bu) : NULL;
    v->m.item_bias = bi ? PyArray_DATA(bi) : NULL;
    v->m.global_mean = self->global_mean;
    PyArrayObject *arrays[4] = {P, Q, bu, bi};
    for (int j = 0; j < 4; j++) {
        Py_XINCREF(arrays[j]);
        v->held[j] = arrays[j];
    }
    return 0;
}

/* Attributes holding arrays: None or a float32/int array of fixed ndim,
 * copied into an owned C-contiguous array when it is not one already. */
typedef struct {
    size_t offset;
    int typenum;
    int ndim;
    const char *name;
} array_slot;

#define ARRAY_SLOT(field, typenum, ndim) {offsetof(ModelObject, field), typenum, ndim, #field}
static const array_slot slot_user_factors = ARRAY_SLOT(user_factors, NPY_FLOAT32, 2);
static const array_slot slot_item_factors = ARRAY_SLOT(item_factors, NPY_FLOAT32, 2);
static const array_slot slot_user_bias = ARRAY_SLOT(user_bias, NPY_FLOAT32, 1);
static const array_slot slot_item_bias = ARRAY_SLOT(item_bias, NPY_FLOAT32, 1);
static const array_slot slot_seen_indptr = ARRAY_SLOT(seen_indptr, NPY_INT64, 1);
static const array_slot slot_seen_indices = ARRAY_SLOT(seen_indices, NPY_INT32, 1);

static PyObject *model_get_array(ModelObject *self, void *closure)
{
    const array_slot *s = closure;
    PyObject *a = *(PyObject **)((char *)self + s->offset);
    if (!a)
        Py_RETURN_NONE;
    Py_INCREF(a);
    return a;
}

static int model_set_array(ModelObject *self, PyObject *value, void *closure)
{
    const array_slot *s = closure;
    PyArrayObject **field = (PyArrayObject **)((char *)self + s->offset);
    PyArrayObject *arr = NULL;
    if (value && value != Py_None) {
        arr = (PyArrayObject *)PyArray_FROM_OTF(value, s->typenum, NPY_ARRAY_CARRAY);
        if (!arr) {
            conversion_error(s->name, s->typenum);
            return -1;
        }
        if (PyArray_NDIM(arr) != s->ndim) {
            PyErr_Format(PyExc_ValueError, "%s: expected a %d-D array, got %d-D", s->name,
                         s->ndim, PyArray_NDIM(arr));
            Py_DECREF(arr);
            return -1;
        }
        /* rows and columns are int32 in the core */
        for (int d = 0; d < s->ndim; d++)
            if (PyArray_DIM(arr, d) > INT32_MAX) {
                PyErr_Format(PyExc_ValueError, "%s: dimension %d exceeds 2**31 - 1",
                             s->name, d);
                Py_DECREF(arr);
                return -1;
            }
    }
    Py_XSETREF(*field, arr);
    return 0;
}

static PyObject *model_get_global_mean(ModelObject *self, void *closure)
{
    (void)closure;
    return PyFloat_FromDouble(self->global_mean);
}

static int model_set_global_mean(ModelObject *self, PyObject *value, void *closure)
{
    (void)closure;
    double x = value ? PyFloat_AsDouble(value) : 0.0;
    if (x == -1.0 && PyErr_Occurred())
        return -1;
    if (!isfinite(x)) {
        PyErr_SetString(PyExc_ValueError, "global_mean must be finite");
        return -1;
    }
    self->global_mean = x;
    return 0;
}

static PyGetSetDef model_getset[] = {
    {"user_factors", (getter)model_get_array, (setter)model_set_array,
     "User factors P (n_users x k, float32), or None.", (void *)&slot_user_factors},
    {"item_factors", (getter)model_get_array, (setter)model_set_array,
     "Item factors Q (n_items x k, float32), or None.", (void *)&slot_item_factors},
    {"user_bias", (getter)model_get_array, (setter)model_set_array,
     "User biases (n_users, float32), or None.", (void *)&slot_user_bias},
    {"item_bias", (getter)model_get_array, (setter)model_set_array,
     "Item biases (n_items, float32), or None.", (void *)&slot_item_bias},
    {"seen_indptr", (getter)model_get_array, (setter)model_set_array,
     "Row pointers (int64) of the users' training items, or None.", (void *)&slot_seen_indptr},
    {"seen_indices", (getter)model_get_array, (setter)model_set_array,
     "Training items (int32) of each user, by seen_indptr, or None.", (void *)&slot_seen_indices},
    {"global_mean", (getter)model_get_global_mean, (setter)model_set_global_mean,
     "Global mean rating mu.", NULL},
    {NULL}};

PyDoc_STRVAR(model_predict_doc,
"_predict(users, items, n_threads=1)\n--\n\n"
"Predictions for pairs of contiguous indices (int32; -1 = unknown, which\n"
"falls back to the global mean plus the known bias).");

static PyObject *model_predict(ModelObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"users", "items", "n_threads", NULL};
    PyObject *uo, *io, *result = NULL;
    PyArrayObject *users = NULL, *items = NULL, *out = NULL;
    int n_threads = 1, status;
    model_view v = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|i", kwlist, &uo, &io, &n_threads))
        return NULL;
    if (model_view_get(self, &v, 0) < 0)
        goto cleanup;
    if (!(users = as_array(uo, NPY_INT32, 1, "users")) ||
        !(items = as_array(io, NPY_INT32, 1, "items")))
        goto cleanup;
    npy_intp n = same_length(users, items, "users", "items");
    if (n < 0)
        goto cleanup;
    out = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_FLOAT32);
    if (!out)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_predict(&v.m, n, PyArray_DATA(users), PyArray_DATA(items),
                         PyArray_DATA(out), n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "predict");
        goto cleanup;
    }
    result = (PyObject *)out;
    out = NULL;
cleanup:
    model_view_release(&v);
    Py_XDECREF(users);
    Py_XDECREF(items);
    Py_XDECREF(out);
    return result;
}

static PyMethodDef model_methods[] = {
    {"_predict", (PyCFunction)(void (*)(void))model_predict, METH_VARARGS | METH_KEYWORDS,
     model_predict_doc},
    {NULL}};

PyDoc_STRVAR(model_doc,
"Model()\n--\n\n"
"The factor model of the C core: arrays user_factors, item_factors,\n"
"user_bias, item_bias and the scalar global_mean. mfrec.Model builds on it.");

static PyType_Slot model_slots[] = {
    {Py_tp_doc, (void *)model_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, model_dealloc},
    {Py_tp_traverse, model_traverse},
    {Py_tp_clear, model_clear},
    {Py_tp_methods, model_methods},
    {Py_tp_getset, model_getset},
    {0, NULL}};

static PyType_Spec model_spec = {
    .name = "mfrec._core.Model",
    .basicsize = sizeof(ModelObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = model_slots,
};

/* The ModelObject behind an argument that must be a _core.Model. */
static ModelObject *as_model(PyObject *module, PyObject *obj)
{
    module_state *st = PyModule_GetState(module);
    if (!PyObject_TypeCheck(obj, st->model_type)) {
        /* %T needs Python 3.13; tp_name works on every supported version */
        PyErr_Format(PyExc_TypeError, "model: expected an mfrec._core.Model, got %s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return (ModelObject *)obj;
}

/* ==== library information ============================================== */

static PyObject *info_openblas_config(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return PyUnicode_FromFormat("%s (core: %s)", MFR_BLAS(openblas_get_config)(),
                                MFR_BLAS(openblas_get_corename)());
}

static PyObject *info_simd_variant(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return PyUnicode_FromString(mfr_simd_variant());
}

static PyMethodDef info_functions[] = {
    {"openblas_config", info_openblas_config, METH_NOARGS,
     "openblas_config()\n--\n\nOpenBLAS build configuration and the kernel it selected."},
    {"simd_variant", info_simd_variant, METH_NOARGS,
     "simd_variant()\n--\n\nInstruction-set variant of the multi-versioned kernels."},
    {NULL}};

/* ==== ratings: COO -> CSR, accuracy ==================================== */

PyDoc_STRVAR(build_csr_doc,
"build_csr(rows, cols, values, n_rows, n_cols)\n--\n\n"
"Compress triplets by row: returns (indptr int64, indices int32, values\n"
"float32) with columns ascending in each row. values may be None (ones).\n"
"ValueError on an index out of range or a repeated (row, col) pair.");

static PyObject *ratings_build_csr(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"rows", "cols", "values", "n_rows", "n_cols", NULL};
    PyObject *ro, *co, *vo, *result = NULL;
    Py_ssize_t n_rows, n_cols;
    PyArrayObject *rows = NULL, *cols = NULL, *vals = NULL;
    PyArrayObject *indptr = NULL, *indices = NULL, *values = NULL;
    int status;
    (void)module;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOnn", kwlist, &ro, &co, &vo, &n_rows,
                                     &n_cols))
        return NULL;
    if (check_int32_size(n_rows, "n_rows") < 0 || check_int32_size(n_cols, "n_cols") < 0)
        return NULL;
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
        !(values = (PyArrayObject *)PyArray_SimpleNew(1, &nnz, NPY_FLOAT32)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_csr_from_coo(nnz, PyArray_DATA(rows), PyArray_DATA(cols),
                              vals ? PyArray_DATA(vals) : NULL, (int32_t)n_rows,
                              (int32_t)n_cols, PyArray_DATA(indptr), PyArray_DATA(indices),
                              PyArray_DATA(values));
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "build_csr");
        goto cleanup;
    }
    result = PyTuple_Pack(3, indptr, indices, values);
cleanup:
    Py_XDECREF(rows);
    Py_XDECREF(cols);
    Py_XDECREF(vals);
    Py_XDECREF(indptr);
    Py_XDECREF(indices);
    Py_XDECREF(values);
    return result;
}

PyDoc_STRVAR(rmse_mae_doc,
"rmse_mae(predictions, truth)\n--\n\n"
"Root mean squared and mean absolute error (float32 inputs, double sums).");

static PyObject *ratings_rmse_mae(PyObject *module, PyObject *args)
{
    PyObject *po, *to, *result = NULL;
    PyArrayObject *pred = NULL, *truth = NULL;
    double rmse = 0.0, mae = 0.0;
    int status;
    (void)module;
    if (!PyArg_ParseTuple(args, "OO", &po, &to))
        return NULL;
    if (!(pred = as_array(po, NPY_FLOAT32, 1, "predictions")) ||
        !(truth = as_array(to, NPY_FLOAT32, 1, "truth")))
        goto cleanup;
    npy_intp n = same_length(pred, truth, "predictions", "truth");
    if (n < 0)
        goto cleanup;
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "rmse_mae: no predictions to score");
        goto cleanup;
    }
    Py_BEGIN_ALLOW_THREADS
    status = mfr_rmse_mae(n, PyArray_DATA(pred), PyArray_DATA(truth), &rmse, &mae);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "rmse_mae");
        goto cleanup;
    }
    result = Py_BuildValue("(dd)", rmse, mae);
cleanup:
    Py_XDECREF(pred);
    Py_XDECREF(truth);
    return result;
}

PyDoc_STRVAR(init_factors_doc,
"init_factors(out, kind, scale, seed, stream)\n--\n\n"
"Fill the float32 matrix `out` in place: kind 0 = uniform [0, scale),\n"
"1 = normal(0, scale). Deterministic in (seed, stream).");

static PyObject *ratings_init_factors(PyObject *module, PyObject *args)
{
    PyObject *oo;
    PyArrayObject *out;
    int kind, status;
    float scale;
    unsigned long long seed, stream;
    (void)module;
    if (!PyArg_ParseTuple(args, "OifKK", &oo, &kind, &scale, &seed, &stream))
        return NULL;
    if (!(out = as_output(oo, NPY_FLOAT32, 2, "out")))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_init_factors(PyArray_DATA(out), PyArray_DIM(out, 0),
                              (int32_t)PyArray_DIM(out, 1), kind, scale, seed, stream);
    Py_END_ALLOW_THREADS
    Py_DECREF(out);
    if (status != MFR_OK)
        return raise_status(status, "init_factors");
    Py_RETURN_NONE;
}

static PyMethodDef ratings_functions[] = {
    {"build_csr", (PyCFunction)(void (*)(void))ratings_build_csr,
     METH_VARARGS | METH_KEYWORDS, build_csr_doc},
    {"rmse_mae", ratings_rmse_mae, METH_VARARGS, rmse_mae_doc},
    {"init_factors", ratings_init_factors, METH_VARARGS, init_factors_doc},
    {NULL}};

/* ==== SGD ============================================================== */

PyDoc_STRVAR(sgd_epoch_doc,
"sgd_epoch(model, users, items, ratings, *, learning_rate, regularization,\n"
"          biases, seed, epoch, n_threads)\n--\n\n"
"One SGD epoch over int32 index arrays and float32 ratings, updating the\n"
"model's arrays in place. Returns the mean squared error of the updates.\n"
"FloatingPointError if the iteration diverges.");

static PyObject *sgd_epoch(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"model", "users", "items", "ratings", "learning_rate",
                             "regularization", "biases", "seed", "epoch", "n_threads",
                             NULL};
    PyObject *mo, *uo, *io, *ro, *result = NULL;
    PyArrayObject *users = NULL, *items = NULL, *ratings = NULL;
    mfr_sgd_params p = mfr_sgd_default_params();
    unsigned long long seed = 0;
    int epoch = 0, status;
    double loss = 0.0;
    model_view v = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO$ffpKii", kwlist, &mo, &uo, &io, &ro,
                                     &p.learning_rate, &p.regularization, &p.biases, &seed,
                                     &epoch, &p.n_threads))
        return NULL;
    p.seed = seed;
    ModelObject *model = as_model(module, mo);
    if (!model || model_view_get(model, &v, p.biases) < 0)
        goto cleanup;
    if (!(users = as_array(uo, NPY_INT32, 1, "users")) ||
        !(items = as_array(io, NPY_INT32, 1, "items")) ||
        !(ratings = as_array(ro, NPY_FLOAT32, 1, "ratings")))
        goto cleanup;
    npy_intp n = same_length(users, items, "users", "items");
    if (n < 0 || same_length(users, ratings, "users", "ratings") < 0)
        goto cleanup;
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "sgd_epoch: no ratings (empty arrays)");
        goto cleanup;
    }
    if (!(p.learning_rate > 0.0f) || !isfinite(p.learning_rate) ||
        !(p.regularization >= 0.0f) || !isfinite(p.regularization) || epoch < 0) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "sgd_epoch: need learning_rate > 0, regularization >= 0 (finite) and "
                 "epoch >= 0; got %g, %g and %d",
                 (double)p.learning_rate, (double)p.regularization, epoch);
        PyErr_SetString(PyExc_ValueError, msg);
        goto cleanup;
    }
    Py_BEGIN_ALLOW_THREADS
    status = mfr_sgd_epoch(&v.m, &p, n, PyArray_DATA(users), PyArray_DATA(items),
                           PyArray_DATA(ratings), epoch, &loss);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "sgd_epoch");
        goto cleanup;
    }
    result = PyFloat_FromDouble(loss);
cleanup:
    model_view_release(&v);
    Py_XDECREF(users);
    Py_XDECREF(items);
    Py_XDECREF(ratings);
    return result;
}

static PyMethodDef sgd_functions[] = {
    {"sgd_epoch", (PyCFunction)(void (*)(void))sgd_epoch, METH_VARARGS | METH_KEYWORDS,
     sgd_epoch_doc},
    {NULL}};

/* ==== truncated SVD ==================================================== */

static PyMethodDef svd_functions[] = {{NULL}};

/* ==== NMF ============================================================== */

static PyMethodDef nmf_functions[] = {{NULL}};

/* ==== top-N and ranking metrics ======================================== */

static PyMethodDef topn_functions[] = {{NULL}};

/* ==== ALS family ======================================================= */

static PyMethodDef als_functions[] = {{NULL}};

/* ==== module =========================================================== */

static int module_exec(PyObject *m)
{
    module_state *st = PyModule_GetState(m);
    if (PyArray_ImportNumPyAPI() < 0)
        return -1;
    st->model_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &model_spec, NULL);
    if (!st->model_type || PyModule_AddType(m, st->model_type) < 0)
        return -1;
    PyMethodDef *tables[] = {info_functions, ratings_functions, sgd_functions,
                             svd_functions,  nmf_functions,     topn_functions,
                             als_functions};
    for (size_t j = 0; j < sizeof tables / sizeof *tables; j++)
        if (PyModule_AddFunctions(m, tables[j]) < 0)
            return -1;
    if (PyModule_AddStringConstant(m, "__version__", mfr_version()) < 0 ||
        PyModule_AddIntConstant(m, "MAX_THREADS", MFR_MAX_THREADS) < 0)
        return -1;
    return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    module_state *st = PyModule_GetState(m);
    Py_VISIT(st->model_type);
    return 0;
}

static int module_clear(PyObject *m)
{
    module_state *st = PyModule_GetState(m);
    Py_CLEAR(st->model_type);
    return 0;
}

static void module_free(void *m) { module_clear((PyObject *)m); }

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
    {0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mfrec._core",
    .m_doc = "The C core of mfrec (see csrc/mfrec.h).",
    .m_size = sizeof(module_state),
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__core(void) { return PyModuleDef_Init(&module_def); }
