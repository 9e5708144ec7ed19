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

/* ==== side features ==================================================== */

/* The features of one side, given from Python as the tuple
 * (indptr int64, indices int32, weights float32, factors float32 2-D,
 * bias float32 1-D or None); factors (and bias) are updated in place. */
typedef struct {
    mfr_features f;
    PyArrayObject *held[5];
} features_view;

static void features_view_release(features_view *v)
{
    for (int j = 0; j < 5; j++)
        Py_CLEAR(v->held[j]);
}

/* Fill v from obj (None leaves v empty and returns 0 with *present = 0).
 * Checks the shapes against n_rows and k; the contents are checked by the
 * core (mfr_features_check). */
static int features_view_get(PyObject *obj, features_view *v, npy_intp n_rows, npy_intp k,
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
    if (!(v->held[0] = as_array(indptr, NPY_INT64, 1, "features indptr")) ||
        !(v->held[1] = as_array(indices, NPY_INT32, 1, "features indices")) ||
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

PyDoc_STRVAR(features_apply_doc,
"features_apply(features, free, free_bias, eff, eff_bias, n_threads=1)\n--\n\n"
"Effective rows from free rows and side features: eff = free + X V and,\n"
"when free_bias and eff_bias are given, eff_bias = free_bias + X c.\n"
"features: (indptr, indices, weights, factors, bias or None). eff and\n"
"eff_bias are written in place.");

static PyObject *features_apply(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"features", "free", "free_bias", "eff", "eff_bias", "n_threads",
                             NULL};
    PyObject *fo, *free_o, *fb_o, *eff_o, *eb_o, *result = NULL;
    PyArrayObject *free = NULL, *free_bias = NULL, *eff = NULL, *eff_bias = NULL;
    features_view v = {0};
    int n_threads = 1, present, status;
    (void)module;
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

static PyMethodDef features_functions[] = {
    {"features_apply", (PyCFunction)(void (*)(void))features_apply,
     METH_VARARGS | METH_KEYWORDS, features_apply_doc},
    {NULL}};

/* A CSR passed as the tuple (indptr int64, indices int32, values float32)
 * that build_csr returns, with n_cols columns; checked in full. */
typedef struct {
    mfr_csr csr;
    PyArrayObject *held[3];
} csr_view;

static void csr_view_release(csr_view *v)
{
    for (int j = 0; j < 3; j++)
        Py_CLEAR(v->held[j]);
}

static int csr_view_get(csr_view *v, PyObject *obj, Py_ssize_t n_cols, const char *name)
{
    static const char *parts[3] = {"indptr", "indices", "values"};
    static const int types[3] = {NPY_INT64, NPY_INT32, NPY_FLOAT32};
    char label[64];
    memset(v, 0, sizeof *v);
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 3) {
        PyErr_Format(PyExc_TypeError, "%s: expected a tuple (indptr, indices, values), got %T",
                     name, obj);
        return -1;
    }
    for (int j = 0; j < 3; j++) {
        snprintf(label, sizeof label, "%s %s", name, parts[j]);
        if (!(v->held[j] = as_array(PyTuple_GET_ITEM(obj, j), types[j], 1, label)))
            return -1;
    }
    npy_intp n_rows = PyArray_DIM(v->held[0], 0) - 1;
    if (n_rows < 0 || check_int32_size(n_rows, "the number of rows") < 0 ||
        check_int32_size(n_cols, "the number of columns") < 0)
        return -1;
    if (PyArray_DIM(v->held[1], 0) != PyArray_DIM(v->held[2], 0)) {
        PyErr_Format(PyExc_ValueError, "%s: indices and values must have the same length",
                     name);
        return -1;
    }
    v->csr = (mfr_csr){(int32_t)n_rows, (int32_t)n_cols, PyArray_DIM(v->held[1], 0),
                       PyArray_DATA(v->held[0]), PyArray_DATA(v->held[1]),
                       PyArray_DATA(v->held[2])};
    int status = mfr_csr_check(&v->csr);
    if (status != MFR_OK) {
        PyErr_Format(PyExc_ValueError, "%s: not a valid CSR matrix with %zd columns (%s)", name, n_cols,
                     mfr_strerror(status));
        return -1;
    }
    return 0;
}

/* ==== SGD ============================================================== */

/* Negative sampling's arguments: negatives >= 0, a finite negative_rating,
 * and with negatives the CSR by user of the training pairs. */
static int sgd_rated_get(const mfr_sgd_params *p, PyObject *rated_o, const mfr_model *m,
                         csr_view *rated)
{
    if (p->negatives < 0 || !isfinite(p->negative_rating)) {
        PyErr_Format(PyExc_ValueError,
                     "sgd: need negatives >= 0 and a finite negative_rating; got %d and %g",
                     p->negatives, (double)p->negative_rating);
        return -1;
    }
    if (p->negatives == 0)
        return 0;
    if (rated_o == Py_None) {
        PyErr_SetString(PyExc_ValueError, "sgd: negatives > 0 needs rated (the CSR by user)");
        return -1;
    }
    if (csr_view_get(rated, rated_o, m->n_items, "rated") < 0)
        return -1;
    if (rated->csr.n_rows != m->n_users) {
        PyErr_Format(PyExc_ValueError, "rated: %d rows for a model of %d users",
                     (int)rated->csr.n_rows, (int)m->n_users);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(sgd_epoch_doc,
"sgd_epoch(model, users, items, ratings, *, learning_rate, regularization,\n"
"          biases, seed, epoch, n_threads, negatives=0, negative_rating=0.0,\n"
"          rated=None)\n--\n\n"
"One SGD epoch over int32 index arrays and float32 ratings, updating the\n"
"model's arrays in place. Returns the mean squared error of the updates.\n"
"FloatingPointError if the iteration diverges. negatives > 0 also trains\n"
"that many unrated items per rating towards negative_rating; rated is then\n"
"the CSR by user (build_csr's tuple) of the training pairs.");

static PyObject *sgd_epoch(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"model", "users", "items", "ratings", "learning_rate",
                             "regularization", "biases", "seed", "epoch", "n_threads",
                             "negatives", "negative_rating", "rated", NULL};
    PyObject *mo, *uo, *io, *ro, *rated_o = Py_None, *result = NULL;
    PyArrayObject *users = NULL, *items = NULL, *ratings = NULL;
    mfr_sgd_params p = mfr_sgd_default_params();
    unsigned long long seed = 0;
    int epoch = 0, status;
    double loss = 0.0;
    model_view v = {0};
    csr_view rated = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|$ffpKiiifO", kwlist, &mo, &uo, &io, &ro,
                                     &p.learning_rate, &p.regularization, &p.biases, &seed,
                                     &epoch, &p.n_threads, &p.negatives, &p.negative_rating,
                                     &rated_o))
        return NULL;
    p.seed = seed;
    ModelObject *model = as_model(module, mo);
    if (!model || model_view_get(model, &v, p.biases) < 0 ||
        sgd_rated_get(&p, rated_o, &v.m, &rated) < 0)
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
                           PyArray_DATA(ratings), p.negatives ? &rated.csr : NULL, epoch,
                           &loss);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "sgd_epoch");
        goto cleanup;
    }
    result = PyFloat_FromDouble(loss);
cleanup:
    model_view_release(&v);
    csr_view_release(&rated);
    Py_XDECREF(users);
    Py_XDECREF(items);
    Py_XDECREF(ratings);
    return result;
}

PyDoc_STRVAR(sgd_epoch_features_doc,
"sgd_epoch_features(model, users, items, ratings, *, user_features,\n"
"                   item_features, learning_rate, regularization, biases,\n"
"                   seed, epoch, negatives=0, negative_rating=0.0,\n"
"                   rated=None)\n--\n\n"
"One sequential SGD epoch of the model with side features. `model` holds\n"
"the free factors and biases; user_features and item_features are None or\n"
"(indptr, indices, weights, factors, bias or None) with one row per user\n"
"(item) of the model; factors and biases are updated in place. Returns\n"
"the mean squared error of the updates. Negatives as in sgd_epoch.");

static PyObject *sgd_epoch_features(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"model", "users", "items", "ratings", "user_features",
                             "item_features", "learning_rate", "regularization", "biases",
                             "seed", "epoch", "negatives", "negative_rating", "rated", NULL};
    PyObject *mo, *uo, *io, *ro, *ufo = Py_None, *ifo = Py_None, *rated_o = Py_None;
    PyObject *result = NULL;
    PyArrayObject *users = NULL, *items = NULL, *ratings = NULL;
    mfr_sgd_params p = mfr_sgd_default_params();
    unsigned long long seed = 0;
    int epoch = 0, status, has_uf = 0, has_if = 0;
    double loss = 0.0;
    model_view v = {0};
    features_view uf = {0}, itf = {0};
    csr_view rated = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|$OOffpKiifO", kwlist, &mo, &uo, &io,
                                     &ro, &ufo, &ifo, &p.learning_rate, &p.regularization,
                                     &p.biases, &seed, &epoch, &p.negatives,
                                     &p.negative_rating, &rated_o))
        return NULL;
    p.seed = seed;
    ModelObject *model = as_model(module, mo);
    if (!model || model_view_get(model, &v, p.biases) < 0 ||
        sgd_rated_get(&p, rated_o, &v.m, &rated) < 0)
        goto cleanup;
    if (features_view_get(ufo, &uf, v.m.n_users, v.m.k, "user_features", &has_uf) < 0 ||
        features_view_get(ifo, &itf, v.m.n_items, v.m.k, "item_features", &has_if) < 0)
        goto cleanup;
    if (!(users = as_array(uo, NPY_INT32, 1, "users")) ||
        !(items = as_array(io, NPY_INT32, 1, "items")) ||
        !(ratings = as_array(ro, NPY_FLOAT32, 1, "ratings")))
        goto cleanup;
    npy_intp n = same_length(users, items, "users", "items");
    if (n < 0 || same_length(users, ratings, "users", "ratings") < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_sgd_epoch_features(&v.m, has_uf ? &uf.f : NULL, has_if ? &itf.f : NULL, &p,
                                    n, PyArray_DATA(users), PyArray_DATA(items),
                                    PyArray_DATA(ratings), p.negatives ? &rated.csr : NULL,
                                    epoch, &loss);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "sgd_epoch_features");
        goto cleanup;
    }
    result = PyFloat_FromDouble(loss);
cleanup:
    model_view_release(&v);
    features_view_release(&uf);
    features_view_release(&itf);
    csr_view_release(&rated);
    Py_XDECREF(users);
    Py_XDECREF(items);
    Py_XDECREF(ratings);
    return result;
}

static PyMethodDef sgd_functions[] = {
    {"sgd_epoch", (PyCFunction)(void (*)(void))sgd_epoch, METH_VARARGS | METH_KEYWORDS,
     sgd_epoch_doc},
    {"sgd_epoch_features", (PyCFunction)(void (*)(void))sgd_epoch_features,
     METH_VARARGS | METH_KEYWORDS, sgd_epoch_features_doc},
    {NULL}};

/* ==== truncated SVD ==================================================== */

/* The filled matrix of svd.c: by_row, optionally by_col, and the fill. */
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
        if (mfr_csr_check_transpose(&v->rows.csr, &v->cols.csr) != MFR_OK) {
            PyErr_SetString(PyExc_ValueError,
                            "by_col must hold the entries of by_row, transposed");
            return -1;
        }
        v->in.cols = v->cols.csr;
    }
    v->in.rows = v->rows.csr;
    v->in.row_fill = PyArray_DATA(v->f);
    v->in.col_fill = PyArray_DATA(v->g);
    v->in.add_fill = add_fill;
    return 0;
}

PyDoc_STRVAR(svd_dense_doc,
"svd_dense(a, k, overwrite_a=False, n_threads=1)\n--\n\n"
"SVD of a dense float64 matrix through LAPACK dgesdd. Returns (s, U, V):\n"
"all min(m, n) singular values (descending), U (m x k) and V (n x k), the\n"
"first k singular vectors (v_j's entry of largest magnitude positive).\n"
"With overwrite_a, a (float64, C-contiguous) is used as workspace.");

static PyObject *svd_dense(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"a", "k", "overwrite_a", "n_threads", NULL};
    PyObject *ao, *result = NULL;
    Py_ssize_t k;
    int overwrite = 0, n_threads = 1, status;
    PyArrayObject *a = NULL, *s = NULL, *U = NULL, *V = NULL;
    (void)module;
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

PyDoc_STRVAR(svd_densify_doc,
"svd_densify(by_row, row_fill, col_fill, add_fill=False, n_threads=1)\n--\n\n"
"The matrix A = P_Omega(R - F) (+ F if add_fill) as a dense float64 array,\n"
"F = row_fill 1^T + 1 col_fill^T, R given by by_row = (indptr, indices,\n"
"values) (see csrc/mfrec.h).");

static PyObject *svd_densify(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"by_row", "row_fill", "col_fill", "add_fill", "n_threads", NULL};
    PyObject *ro, *fo, *go;
    int add_fill = 0, n_threads = 1, status;
    PyArrayObject *out = NULL;
    svd_view v;
    (void)module;
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

PyDoc_STRVAR(svd_frobenius2_doc,
"svd_frobenius2(by_row, row_fill, col_fill, add_fill=False)\n--\n\n"
"||A||_F^2 of the matrix of svd_densify, computed exactly from the sparse\n"
"part and the rank-2 fill (A is not formed).");

static PyObject *svd_frobenius2(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"by_row", "row_fill", "col_fill", "add_fill", NULL};
    PyObject *ro, *fo, *go, *result = NULL;
    int add_fill = 0, status;
    double out = 0.0;
    svd_view v;
    (void)module;
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

PyDoc_STRVAR(svd_randomized_doc,
"svd_randomized(by_row, by_col, row_fill, col_fill, k, *, add_fill=False,\n"
"               oversampling=20, power_iterations=20, seed=0, n_threads=1)\n--\n\n"
"Randomized truncated SVD of the matrix of svd_densify, never formed:\n"
"by_col must be by_row transposed (as build_csr of the swapped triplets).\n"
"Returns (s, U, V): k singular values, U (m x k), V (n x k), float64.");

static PyObject *svd_randomized(PyObject *module, PyObject *args, PyObject *kwds)
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
    (void)module;
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

PyDoc_STRVAR(baseline_biases_doc,
"baseline_biases(by_user, by_item, mu, reg_user, reg_item, passes, n_threads=1)\n--\n\n"
"Damped baseline biases by alternating passes (see csrc/mfrec.h). by_item\n"
"must be by_user transposed. Returns (user_bias, item_bias), float64.");

static PyObject *baseline_biases(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"by_user", "by_item", "mu", "reg_user", "reg_item", "passes",
                             "n_threads", NULL};
    PyObject *uo, *io, *result = NULL;
    double mu, reg_user, reg_item;
    int passes, n_threads = 1, status;
    csr_view bu = {0}, bi = {0};
    PyArrayObject *ub = NULL, *ib = NULL;
    (void)module;
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
        csr_view_get(&bi, io, bu.csr.n_rows, "by_item") < 0)
        goto cleanup;
    if (mfr_csr_check_transpose(&bu.csr, &bi.csr) != MFR_OK) {
        PyErr_SetString(PyExc_ValueError, "by_item must hold the entries of by_user, transposed");
        goto cleanup;
    }
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

static PyMethodDef svd_functions[] = {
    {"svd_dense", (PyCFunction)(void (*)(void))svd_dense, METH_VARARGS | METH_KEYWORDS,
     svd_dense_doc},
    {"svd_densify", (PyCFunction)(void (*)(void))svd_densify, METH_VARARGS | METH_KEYWORDS,
     svd_densify_doc},
    {"svd_frobenius2", (PyCFunction)(void (*)(void))svd_frobenius2,
     METH_VARARGS | METH_KEYWORDS, svd_frobenius2_doc},
    {"svd_randomized", (PyCFunction)(void (*)(void))svd_randomized,
     METH_VARARGS | METH_KEYWORDS, svd_randomized_doc},
    {"baseline_biases", (PyCFunction)(void (*)(void))baseline_biases,
     METH_VARARGS | METH_KEYWORDS, baseline_biases_doc},
    {NULL}};

/* ==== NMF ============================================================== */

PyDoc_STRVAR(nmf_epoch_doc,
"nmf_epoch(model, by_user, by_item, *, regularization=0.1,\n"
"          bias_regularization=15.0, biases=False, n_threads=1)\n--\n\n"
"One NMF epoch (csrc/nmf.c) updating the model's arrays in place; by_item\n"
"must be by_user transposed and the factors non-negative. Returns the\n"
"objective after the epoch.");

PyDoc_STRVAR(nmf_objective_doc,
"nmf_objective(model, by_user, by_item, *, regularization=0.1,\n"
"              bias_regularization=15.0, biases=False, n_threads=1)\n--\n\n"
"The NMF objective of the model as it is (same arguments as nmf_epoch).");

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
    if (csr_view_get(&bu, uo, v.m.n_items, "by_user") < 0 ||
        csr_view_get(&bi, io, v.m.n_users, "by_item") < 0)
        goto cleanup;
    if (bu.csr.n_rows != v.m.n_users) {
        PyErr_Format(PyExc_ValueError, "by_user has %d rows for a model of %d users",
                     bu.csr.n_rows, v.m.n_users);
        goto cleanup;
    }
    if (mfr_csr_check_transpose(&bu.csr, &bi.csr) != MFR_OK) {
        PyErr_SetString(PyExc_ValueError, "by_item must hold the entries of by_user, transposed");
        goto cleanup;
    }
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

static PyObject *nmf_epoch(PyObject *module, PyObject *args, PyObject *kwds)
{
    return nmf_call(module, args, kwds, 1);
}

static PyObject *nmf_objective(PyObject *module, PyObject *args, PyObject *kwds)
{
    return nmf_call(module, args, kwds, 0);
}

static PyMethodDef nmf_functions[] = {
    {"nmf_epoch", (PyCFunction)(void (*)(void))nmf_epoch, METH_VARARGS | METH_KEYWORDS,
     nmf_epoch_doc},
    {"nmf_objective", (PyCFunction)(void (*)(void))nmf_objective,
     METH_VARARGS | METH_KEYWORDS, nmf_objective_doc},
    {NULL}};

/* ==== top-N and ranking metrics ======================================== */

/* Output arrays for n_query lists of length n; -1 with an exception set
 * if n is not >= 1 or an allocation fails. */
static int lists_new(npy_intp n_query, Py_ssize_t n, PyArrayObject **items,
                     PyArrayObject **scores, PyArrayObject **counts, mfr_topn_lists *out)
{
    if (n < 1 || n > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "n must be an integer >= 1, got %zd", n);
        return -1;
    }
    npy_intp dims[2] = {n_query, n};
    if (!(*items = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_INT32)) ||
        !(*scores = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32)) ||
        !(*counts = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT32)))
        return -1;
    out->n = (int32_t)n;
    out->items = PyArray_DATA(*items);
    out->scores = PyArray_DATA(*scores);
    out->counts = PyArray_DATA(*counts);
    return 0;
}

/* An optional candidate pool (None or int32 indices); -1 on error. */
static int pool_get(PyObject *obj, PyArrayObject **pool)
{
    *pool = NULL;
    if (obj == Py_None)
        return 0;
    if (!(*pool = as_array(obj, NPY_INT32, 1, "pool")))
        return -1;
    return check_int32_size(PyArray_DIM(*pool, 0), "len(pool)");
}

PyDoc_STRVAR(topn_recommend_doc,
"recommend(model, users, n, *, exclude_seen, pool, n_threads)\n--\n\n"
"Top-n lists for user indices (int32; None = every user): returns (items\n"
"int32, scores float32, counts int32), rows best first (higher score, then\n"
"lower index), padded with -1 / NaN after counts[r] entries.\n"
"exclude_seen skips each user's training items (seen_indptr/seen_indices);\n"
"pool (strictly ascending item indices, or None) restricts the candidates.");

static PyObject *topn_recommend(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"model", "users", "n", "exclude_seen", "pool", "n_threads", NULL};
    PyObject *mo, *uo, *po, *result = NULL;
    Py_ssize_t n;
    int exclude_seen, n_threads, status;
    PyArrayObject *users = NULL, *pool = NULL, *indptr = NULL, *indices = NULL;
    PyArrayObject *items = NULL, *scores = NULL, *counts = NULL;
    mfr_topn_lists out;
    model_view v = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOn$pOi", kwlist, &mo, &uo, &n,
                                     &exclude_seen, &po, &n_threads))
        return NULL;
    ModelObject *model = as_model(module, mo);
    if (!model || model_view_get(model, &v, 0) < 0)
        goto cleanup;
    npy_intp n_query = v.m.n_users;
    if (uo != Py_None) {
        if (!(users = as_array(uo, NPY_INT32, 1, "users")))
            goto cleanup;
        n_query = PyArray_DIM(users, 0);
    }
    if (pool_get(po, &pool) < 0)
        goto cleanup;
    mfr_csr seen = {0};
    if (exclude_seen) {
        indptr = model->seen_indptr;
        indices = model->seen_indices;
        if (!indptr || !indices || PyArray_DIM(indptr, 0) != (npy_intp)v.m.n_users + 1) {
            PyErr_SetString(PyExc_ValueError,
                            "exclude_seen: the model has no valid training-item index "
                            "(seen_indptr/seen_indices)");
            indptr = indices = NULL;
            goto cleanup;
        }
        Py_INCREF(indptr);
        Py_INCREF(indices);
        seen = (mfr_csr){v.m.n_users, v.m.n_items, PyArray_DIM(indices, 0),
                         PyArray_DATA(indptr), PyArray_DATA(indices), NULL};
    }
    if (lists_new(n_query, n, &items, &scores, &counts, &out) < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_recommend(&v.m, n_query, users ? PyArray_DATA(users) : NULL,
                           exclude_seen ? &seen : NULL,
                           pool ? (int32_t)PyArray_DIM(pool, 0) : 0,
                           pool ? PyArray_DATA(pool) : NULL, &out, n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "recommend (users, pool or the training-item index)");
        goto cleanup;
    }
    result = PyTuple_Pack(3, items, scores, counts);
cleanup:
    model_view_release(&v);
    Py_XDECREF(users);
    Py_XDECREF(pool);
    Py_XDECREF(indptr);
    Py_XDECREF(indices);
    Py_XDECREF(items);
    Py_XDECREF(scores);
    Py_XDECREF(counts);
    return result;
}

PyDoc_STRVAR(topn_recommend_vector_doc,
"recommend_vector(model, x, bias, skip, pool, n)\n--\n\n"
"One top-n list for a user given by factors x (float32, k) and bias (used\n"
"when the model has biases), skipping the item indices in skip (int32).\n"
"Returns (items, scores, counts) as recommend, with one row.");

static PyObject *topn_recommend_vector(PyObject *module, PyObject *args)
{
    PyObject *mo, *xo, *so, *po, *result = NULL;
    float bias;
    Py_ssize_t n;
    int status;
    PyArrayObject *x = NULL, *skip = NULL, *pool = NULL;
    PyArrayObject *items = NULL, *scores = NULL, *counts = NULL;
    mfr_topn_lists out;
    model_view v = {0};
    if (!PyArg_ParseTuple(args, "OOfOOn", &mo, &xo, &bias, &so, &po, &n))
        return NULL;
    ModelObject *model = as_model(module, mo);
    if (!model || model_view_get(model, &v, 0) < 0)
        goto cleanup;
    if (!(x = as_array(xo, NPY_FLOAT32, 1, "x")) ||
        !(skip = as_array(so, NPY_INT32, 1, "skip")) || pool_get(po, &pool) < 0 ||
        check_int32_size(PyArray_DIM(skip, 0), "len(skip)") < 0)
        goto cleanup;
    if (PyArray_DIM(x, 0) != v.m.k) {
        PyErr_Format(PyExc_ValueError, "x must have the model's %d factors, got %zd",
                     (int)v.m.k, (Py_ssize_t)PyArray_DIM(x, 0));
        goto cleanup;
    }
    if (lists_new(1, n, &items, &scores, &counts, &out) < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_recommend_vector(&v.m, PyArray_DATA(x), bias, (int32_t)PyArray_DIM(skip, 0),
                                  PyArray_DATA(skip), pool ? (int32_t)PyArray_DIM(pool, 0) : 0,
                                  pool ? PyArray_DATA(pool) : NULL, &out);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "recommend_vector (skip or pool)");
        goto cleanup;
    }
    result = PyTuple_Pack(3, items, scores, counts);
cleanup:
    model_view_release(&v);
    Py_XDECREF(x);
    Py_XDECREF(skip);
    Py_XDECREF(pool);
    Py_XDECREF(items);
    Py_XDECREF(scores);
    Py_XDECREF(counts);
    return result;
}

PyDoc_STRVAR(topn_similar_doc,
"similar(factors, query, n, pool=None, n_threads=1)\n--\n\n"
"Cosine neighbours among the rows of factors (float32, rows x k) for the\n"
"row indices in query (int32), each row itself skipped; a zero row has\n"
"cosine 0 with every row. pool (strictly ascending row indices, or None)\n"
"restricts the candidates. Returns (items, scores, counts) as recommend.");

static PyObject *topn_similar(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"factors", "query", "n", "pool", "n_threads", NULL};
    PyObject *fo, *qo, *po = Py_None, *result = NULL;
    Py_ssize_t n;
    int n_threads = 1, status;
    PyArrayObject *F = NULL, *query = NULL, *pool = NULL;
    PyArrayObject *items = NULL, *scores = NULL, *counts = NULL;
    mfr_topn_lists out;
    (void)module;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOn|Oi", kwlist, &fo, &qo, &n, &po,
                                     &n_threads))
        return NULL;
    if (!(F = as_array(fo, NPY_FLOAT32, 2, "factors")) ||
        !(query = as_array(qo, NPY_INT32, 1, "query")) || pool_get(po, &pool) < 0 ||
        check_int32_size(PyArray_DIM(F, 0), "len(factors)") < 0 ||
        check_int32_size(PyArray_DIM(F, 1), "the number of factors") < 0)
        goto cleanup;
    if (lists_new(PyArray_DIM(query, 0), n, &items, &scores, &counts, &out) < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_similar((int32_t)PyArray_DIM(F, 0), (int32_t)PyArray_DIM(F, 1),
                         PyArray_DATA(F), PyArray_DIM(query, 0), PyArray_DATA(query),
                         pool ? (int32_t)PyArray_DIM(pool, 0) : 0,
                         pool ? PyArray_DATA(pool) : NULL, &out, n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "similar (query or factors)");
        goto cleanup;
    }
    result = PyTuple_Pack(3, items, scores, counts);
cleanup:
    Py_XDECREF(F);
    Py_XDECREF(query);
    Py_XDECREF(pool);
    Py_XDECREF(items);
    Py_XDECREF(scores);
    Py_XDECREF(counts);
    return result;
}

PyDoc_STRVAR(topn_fold_in_doc,
"fold_in(model, items, ratings, regularization, unrated_weight=0.0,\n"
"        unrated_value=0.0)\n--\n\n"
"Ridge fold-in of a new user (see mfr_fold_in): item indices (int32) and\n"
"their ratings (float32) -> (factors float32 (k,), bias float; 0.0 for a\n"
"model without biases). unrated_weight > 0 adds every item not rated,\n"
"with that weight, as a rating of unrated_value.");

static PyObject *topn_fold_in(PyObject *module, PyObject *args, PyObject *kwds)
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

PyDoc_STRVAR(topn_ranking_metrics_doc,
"ranking_metrics(recommended, rel_indptr, rel_indices, n_items, n_threads=1)\n--\n\n"
"Ranking metrics at k = recommended.shape[1] (see mfr_ranking_metrics):\n"
"recommended (int32, users x k, -1 = empty rank), the relevant labels as a\n"
"CSR (int64 indptr, int32 indices ascending per user). Returns (dict of the\n"
"means, coverage and n_evaluated; per-user array users x 5 of precision,\n"
"recall, ndcg, ap, hit, NaN for users with no relevant label).");

static PyObject *topn_ranking_metrics(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"recommended", "rel_indptr", "rel_indices", "n_items",
                             "n_threads", NULL};
    PyObject *ro, *po, *io, *result = NULL;
    Py_ssize_t n_items;
    int n_threads = 1, status;
    PyArrayObject *rec = NULL, *indptr = NULL, *indices = NULL, *per_user = NULL;
    mfr_ranking r;
    (void)module;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOn|i", kwlist, &ro, &po, &io, &n_items,
                                     &n_threads))
        return NULL;
    if (!(rec = as_array(ro, NPY_INT32, 2, "recommended")) ||
        !(indptr = as_array(po, NPY_INT64, 1, "rel_indptr")) ||
        !(indices = as_array(io, NPY_INT32, 1, "rel_indices")))
        goto cleanup;
    npy_intp n_users = PyArray_DIM(rec, 0), k = PyArray_DIM(rec, 1);
    if (n_items < 1 || n_items > INT32_MAX || k < 1 || k > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError,
                        "ranking_metrics: need n_items >= 1 and at least one rank (k >= 1)");
        goto cleanup;
    }
    if (PyArray_DIM(indptr, 0) != n_users + 1 ||
        ((const int64_t *)PyArray_DATA(indptr))[n_users] != PyArray_DIM(indices, 0)) {
        PyErr_SetString(PyExc_ValueError,
                        "rel_indptr must have one entry per user plus one, ending at "
                        "len(rel_indices)");
        goto cleanup;
    }
    npy_intp dims[2] = {n_users, MFR_RANK_METRICS};
    if (!(per_user = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT64)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_ranking_metrics(n_users, (int32_t)k, PyArray_DATA(rec), PyArray_DATA(indptr),
                                 PyArray_DATA(indices), (int32_t)n_items,
                                 PyArray_DATA(per_user), &r, n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, status == MFR_EINDEX
                                 ? "ranking_metrics: a recommended item is outside [-1, n_items)"
                             : status == MFR_EDUPLICATE
                                 ? "ranking_metrics: a list repeats a relevant item"
                                 : "ranking_metrics: relevant labels must be >= 0 and "
                                   "strictly ascending per user");
        goto cleanup;
    }
    result = Py_BuildValue("({s:d,s:d,s:d,s:d,s:d,s:d,s:L}O)", "precision", r.precision,
                           "recall", r.recall, "ndcg", r.ndcg, "map", r.map, "hit_rate",
                           r.hit_rate, "coverage", r.coverage, "n_evaluated",
                           (long long)r.n_evaluated, per_user);
cleanup:
    Py_XDECREF(rec);
    Py_XDECREF(indptr);
    Py_XDECREF(indices);
    Py_XDECREF(per_user);
    return result;
}

static PyMethodDef topn_functions[] = {
    {"recommend", (PyCFunction)(void (*)(void))topn_recommend, METH_VARARGS | METH_KEYWORDS,
     topn_recommend_doc},
    {"recommend_vector", topn_recommend_vector, METH_VARARGS, topn_recommend_vector_doc},
    {"similar", (PyCFunction)(void (*)(void))topn_similar, METH_VARARGS | METH_KEYWORDS,
     topn_similar_doc},
    {"fold_in", (PyCFunction)(void (*)(void))topn_fold_in, METH_VARARGS | METH_KEYWORDS,
     topn_fold_in_doc},
    {"ranking_metrics", (PyCFunction)(void (*)(void))topn_ranking_metrics,
     METH_VARARGS | METH_KEYWORDS, topn_ranking_metrics_doc},
    {NULL}};

/* ==== ALS family ======================================================= */

/* An optional 1-D float32 array of length n (None -> NULL), `writeable`
 * for outputs. Returns -1 with an exception naming the argument. */
static int als_vector(PyObject *obj, npy_intp n, int writeable, const char *name,
                      PyArrayObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    *out = writeable ? as_output(obj, NPY_FLOAT32, 1, name) : as_array(obj, NPY_FLOAT32, 1, name);
    if (!*out)
        return -1;
    if (PyArray_DIM(*out, 0) != n) {
        PyErr_Format(PyExc_ValueError, "%s must have length %zd, got %zd", name, (Py_ssize_t)n,
                     (Py_ssize_t)PyArray_DIM(*out, 0));
        Py_CLEAR(*out);
        return -1;
    }
    return 0;
}

static int als_check_param(float v, const char *name)
{
    if (!(v >= 0.0f) || !isfinite(v)) {
        PyObject *shown = PyFloat_FromDouble(v);
        if (shown)
            PyErr_Format(PyExc_ValueError, "%s must be a finite number >= 0, got %R", name,
                         shown);
        Py_XDECREF(shown);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(als_half_step_doc,
"als_half_step(indptr, indices, values, Y, X, *, x_bias=None, y_bias=None,\n"
"              offset=0.0, row_weights=None, col_weights=None,\n"
"              regularization=0.1, scale_regularization=False,\n"
"              unobserved_weight=0.0, alpha=0.0, binary=False,\n"
"              solver='cholesky', cg_steps=3, n_threads=1, loss=True)\n--\n\n"
"One weighted-least-squares half-step (csrc/als.c): every row i of X\n"
"(float32, n_rows x k, updated in place; the CG warm start) becomes the\n"
"minimizer of\n"
"  sum_obs c_ij (t_ij - x.y_j)^2 + w0 sum_unobs (x.y_j)^2 + lambda_i |x|^2\n"
"over row i of the CSR (indptr int64, indices int32, values float32 or\n"
"None for ones) with Y (float32, n_cols x k) fixed:\n"
"c_ij = row_weights[i] col_weights[j] (1 + alpha v_ij),\n"
"t_ij = (1[v_ij > 0] if binary else v_ij) - offset - y_bias[j],\n"
"lambda_i = regularization (times the row's count if scale_regularization),\n"
"w0 = unobserved_weight. With x_bias (written) and y_bias (read), the\n"
"unknowns are (x_i, x_bias[i]) and the features (y_j, 1); w0 must be 0.\n\n"
"Returns a dict: data (the rows' weighted squared errors over all\n"
"entries at their new values; 0 when loss=False), reg (sum lambda_i |x_i|^2),\n"
"gram_seconds, solve_seconds.");

static PyObject *als_half_step(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"indptr", "indices", "values", "Y", "X", "x_bias", "y_bias",
                             "offset", "row_weights", "col_weights", "regularization",
                             "scale_regularization", "unobserved_weight", "alpha", "binary",
                             "solver", "cg_steps", "n_threads", "loss", NULL};
    PyObject *po, *io, *vo, *yo, *xo, *xbo = Py_None, *ybo = Py_None, *rwo = Py_None,
             *cwo = Py_None, *result = NULL;
    PyArrayObject *indptr = NULL, *indices = NULL, *values = NULL, *Y = NULL, *X = NULL,
                  *xb = NULL, *yb = NULL, *rw = NULL, *cw = NULL;
    mfr_als_params p = mfr_als_default_params();
    mfr_als_stats stats = {0};
    float offset = 0.0f;
    const char *solver = "cholesky";
    int status;
    (void)module;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOO|$OOfOOfpffpsiip", kwlist, &po, &io, &vo,
                                     &yo, &xo, &xbo, &ybo, &offset, &rwo, &cwo,
                                     &p.regularization, &p.scale_regularization,
                                     &p.unobserved_weight, &p.alpha, &p.binary, &solver,
                                     &p.cg_steps, &p.n_threads, &p.loss))
        return NULL;
    if (als_check_param(p.regularization, "regularization") < 0 ||
        als_check_param(p.unobserved_weight, "unobserved_weight") < 0 ||
        als_check_param(p.alpha, "alpha") < 0)
        return NULL;
    if (!isfinite(offset)) {
        PyErr_SetString(PyExc_ValueError, "offset must be finite");
        return NULL;
    }
    if (strcmp(solver, "cholesky") == 0) {
        p.solver = MFR_ALS_CHOLESKY;
    } else if (strcmp(solver, "cg") == 0) {
        p.solver = MFR_ALS_CG;
        if (p.cg_steps < 1) {
            PyErr_Format(PyExc_ValueError, "cg_steps must be >= 1, got %d", p.cg_steps);
            return NULL;
        }
    } else {
        PyErr_Format(PyExc_ValueError, "solver must be 'cholesky' or 'cg', got '%s'", solver);
        return NULL;
    }
    if ((xbo == Py_None) != (ybo == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "x_bias and y_bias must both be given or both be None");
        return NULL;
    }
    if (xbo != Py_None && p.unobserved_weight != 0.0f) {
        PyErr_SetString(PyExc_ValueError, "biases need unobserved_weight == 0");
        return NULL;
    }
    if (!(indptr = as_array(po, NPY_INT64, 1, "indptr")) ||
        !(indices = as_array(io, NPY_INT32, 1, "indices")) ||
        (vo != Py_None && !(values = as_array(vo, NPY_FLOAT32, 1, "values"))) ||
        !(Y = as_array(yo, NPY_FLOAT32, 2, "Y")) || !(X = as_output(xo, NPY_FLOAT32, 2, "X")))
        goto cleanup;
    if (values && same_length(indices, values, "indices", "values") < 0)
        goto cleanup;
    npy_intp n_rows = PyArray_DIM(X, 0), n_cols = PyArray_DIM(Y, 0), k = PyArray_DIM(X, 1);
    if (PyArray_DIM(indptr, 0) != n_rows + 1) {
        PyErr_Format(PyExc_ValueError, "indptr must have X.shape[0] + 1 = %zd entries, got %zd",
                     (Py_ssize_t)(n_rows + 1), (Py_ssize_t)PyArray_DIM(indptr, 0));
        goto cleanup;
    }
    if (PyArray_DIM(Y, 1) != k || k < 1) {
        PyErr_Format(PyExc_ValueError, "X and Y must have the same number (>= 1) of columns "
                     "(%zd != %zd)", (Py_ssize_t)k, (Py_ssize_t)PyArray_DIM(Y, 1));
        goto cleanup;
    }
    if (check_int32_size(n_rows, "X.shape[0]") < 0 || check_int32_size(n_cols, "Y.shape[0]") < 0 ||
        check_int32_size(k, "X.shape[1]") < 0 ||
        als_vector(xbo, n_rows, 1, "x_bias", &xb) < 0 ||
        als_vector(ybo, n_cols, 0, "y_bias", &yb) < 0 ||
        als_vector(rwo, n_rows, 0, "row_weights", &rw) < 0 ||
        als_vector(cwo, n_cols, 0, "col_weights", &cw) < 0)
        goto cleanup;
    mfr_csr R = {(int32_t)n_rows, (int32_t)n_cols, PyArray_DIM(indices, 0), PyArray_DATA(indptr),
                 PyArray_DATA(indices), values ? PyArray_DATA(values) : NULL};
    mfr_als_side xs = {PyArray_DATA(X), xb ? PyArray_DATA(xb) : NULL,
                       rw ? PyArray_DATA(rw) : NULL};
    mfr_als_side ys = {PyArray_DATA(Y), yb ? PyArray_DATA(yb) : NULL,
                       cw ? PyArray_DATA(cw) : NULL};
    Py_BEGIN_ALLOW_THREADS
    status = mfr_als_half_step(&R, (int32_t)k, &xs, &ys, offset, &p, &stats);
    Py_END_ALLOW_THREADS
    switch (status) {
    case MFR_OK:
        result = Py_BuildValue("{sdsdsdsd}", "data", stats.data, "reg", stats.reg,
                               "gram_seconds", stats.gram_seconds, "solve_seconds",
                               stats.solve_seconds);
        break;
    case MFR_EINDEX:
        PyErr_Format(PyExc_IndexError, "als_half_step: indices must lie in [0, Y.shape[0] = %zd)",
                     (Py_ssize_t)n_cols);
        break;
    case MFR_EINVAL:
        PyErr_SetString(PyExc_ValueError,
                        "als_half_step: invalid input: indptr must start at 0, never decrease "
                        "and end at len(indices); weights must be >= 0; and the confidence "
                        "1 + alpha * values must be >= 0");
        break;
    case MFR_ENONFINITE:
        PyErr_SetString(PyExc_ValueError, "als_half_step: values, factors and biases must be "
                        "finite (NaN or infinity found)");
        break;
    case MFR_ENOTPD:
        PyErr_SetString(PyExc_ValueError, "als_half_step: a row's normal equations are "
                        "singular (not positive definite): use regularization > 0");
        break;
    default:
        raise_status(status, "als_half_step");
    }
cleanup:
    Py_XDECREF(indptr);
    Py_XDECREF(indices);
    Py_XDECREF(values);
    Py_XDECREF(Y);
    Py_XDECREF(X);
    Py_XDECREF(xb);
    Py_XDECREF(yb);
    Py_XDECREF(rw);
    Py_XDECREF(cw);
    return result;
}

static PyMethodDef als_functions[] = {
    {"als_half_step", (PyCFunction)(void (*)(void))als_half_step, METH_VARARGS | METH_KEYWORDS,
     als_half_step_doc},
    {NULL}};

/* ==== Bayesian MF (Gibbs sampling) ===================================== */

/* A float64 C-contiguous 2-D array with `cols` columns and, for rows >= 0,
 * that many rows; `out`: written in place (never a copy). */
static PyArrayObject *bayes_matrix(PyObject *obj, npy_intp rows, npy_intp cols, int out,
                                   const char *name)
{
    PyArrayObject *a;
    if (out) {
        if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_FLOAT64 ||
            PyArray_NDIM((PyArrayObject *)obj) != 2 ||
            !PyArray_ISCARRAY((PyArrayObject *)obj)) {
            PyErr_Format(PyExc_TypeError, "%s: expected a writeable C-contiguous 2-D float64 "
                         "array", name);
            return NULL;
        }
        Py_INCREF(obj);
        a = (PyArrayObject *)obj;
    } else if (!(a = as_array(obj, NPY_FLOAT64, 2, name))) {
        return NULL;
    }
    if ((rows >= 0 && PyArray_DIM(a, 0) != rows) || (cols >= 0 && PyArray_DIM(a, 1) != cols) ||
        check_int32_size(PyArray_DIM(a, 0), name) < 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "%s: expected shape (%zd, %zd), got (%zd, %zd)", name,
                         (Py_ssize_t)rows, (Py_ssize_t)cols, (Py_ssize_t)PyArray_DIM(a, 0),
                         (Py_ssize_t)PyArray_DIM(a, 1));
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* The prior (mean: groups x d, prec: groups x d x d, as 2-D groups x d*d). */
static int bayes_prior(PyObject *mo, PyObject *po, npy_intp groups, npy_intp d,
                       PyArrayObject **mean, PyArrayObject **prec)
{
    *mean = bayes_matrix(mo, groups, d, 0, "prior_mean");
    *prec = *mean ? bayes_matrix(po, groups, d * d, 0, "prior_prec") : NULL;
    return *prec ? 0 : -1;
}

/* The optional per-row Gram arrays (None, None) or (n x d*d, n x d). */
static int bayes_gram(PyObject *go, PyObject *bo, npy_intp n, npy_intp d, int out,
                      PyArrayObject **G, PyArrayObject **B)
{
    *G = *B = NULL;
    if ((go == Py_None) != (bo == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "gram and gram_rhs must both be given or both None");
        return -1;
    }
    if (go == Py_None)
        return 0;
    if (!(*G = bayes_matrix(go, n, d * d, out, "gram")) ||
        !(*B = bayes_matrix(bo, n, d, out, "gram_rhs"))) {
        Py_CLEAR(*G);
        return -1;
    }
    return 0;
}

static int bayes_check_noise(double mu, double alpha)
{
    if (!isfinite(mu) || !isfinite(alpha) || !(alpha > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "mu must be finite and alpha finite and > 0");
        return -1;
    }
    return 0;
}

static PyObject *bayes_status(int status, const char *what)
{
    if (status == MFR_ENOTPD) {
        PyErr_Format(PyExc_FloatingPointError, "%s: a conditional precision is not positive "
                     "definite (the sampler diverged)", what);
        return NULL;
    }
    return raise_status(status, what);
}

PyDoc_STRVAR(bayes_rows_doc,
"bayes_rows(ratings, other, free, eff, prior_mean, prior_prec, *, mu, alpha,\n"
"           seed, stream, n_threads=1, gram=None, gram_rhs=None)\n--\n\n"
"Draw every free row of one side (csrc/bayes.c mfr_bayes_rows): ratings is\n"
"this side's CSR (indptr, indices, values float32), other the other side's\n"
"effective rows (float64, n_other x d), free and eff (float64, n x d)\n"
"are updated in place; the prior is N(prior_mean (1 x d),\n"
"prior_prec (1 x d*d)^-1). gram / gram_rhs (float64, n x d*d and n x d),\n"
"optional, receive each row's sum x x^T and sum x (r - mu - V_i[k]).");

static PyObject *bayes_rows(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ratings", "other", "free", "eff", "prior_mean", "prior_prec",
                             "mu", "alpha", "seed", "stream", "n_threads", "gram", "gram_rhs",
                             NULL};
    PyObject *ro, *oo, *fo, *eo, *mo, *po, *go = Py_None, *bo = Py_None, *result = NULL;
    PyArrayObject *other = NULL, *fr = NULL, *ef = NULL, *mean = NULL, *prec = NULL,
                  *G = NULL, *B = NULL;
    double mu = NAN, alpha = NAN; /* required: NaN fails the check */
    unsigned long long seed = 0, stream = 0;
    int n_threads = 1, status;
    csr_view R = {0};
    (void)module;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO|$ddKKiOO", kwlist, &ro, &oo, &fo,
                                     &eo, &mo, &po, &mu, &alpha, &seed, &stream, &n_threads,
                                     &go, &bo) ||
        bayes_check_noise(mu, alpha) < 0 || !(other = bayes_matrix(oo, -1, -1, 0, "other")))
        return NULL;
    npy_intp d = PyArray_DIM(other, 1);
    if (d < 2) {
        PyErr_SetString(PyExc_ValueError, "other: needs d >= 2 columns (factors and bias)");
        goto cleanup;
    }
    if (csr_view_get(&R, ro, PyArray_DIM(other, 0), "ratings") < 0 ||
        !(fr = bayes_matrix(fo, R.csr.n_rows, d, 1, "free")) ||
        !(ef = bayes_matrix(eo, R.csr.n_rows, d, 1, "eff")) ||
        bayes_prior(mo, po, 1, d, &mean, &prec) < 0 ||
        bayes_gram(go, bo, R.csr.n_rows, d, 1, &G, &B) < 0)
        goto cleanup;
    mfr_bayes_side s = {R.csr, (int32_t)d, PyArray_DATA(fr), PyArray_DATA(ef),
                        PyArray_DATA(mean), PyArray_DATA(prec), mu, alpha,
                        G ? PyArray_DATA(G) : NULL, B ? PyArray_DATA(B) : NULL};
    Py_BEGIN_ALLOW_THREADS
    status = mfr_bayes_rows(&s, PyArray_DATA(other), (int32_t)PyArray_DIM(other, 0), seed,
                            stream, n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK)
        bayes_status(status, "bayes_rows");
    else
        result = Py_NewRef(Py_None);
cleanup:
    csr_view_release(&R);
    Py_XDECREF(other);
    Py_XDECREF(fr);
    Py_XDECREF(ef);
    Py_XDECREF(mean);
    Py_XDECREF(prec);
    Py_XDECREF(G);
    Py_XDECREF(B);
    return result;
}

PyDoc_STRVAR(bayes_features_doc,
"bayes_features(ratings, other, eff, features, group, Y, prior_mean, prior_prec,\n"
"               *, mu, alpha, seed, stream, n_threads=1, gram=None,\n"
"               gram_rhs=None)\n--\n\n"
"Draw every feature row Y (float64, n_features x d, in place) of one side\n"
"in order (mfr_bayes_features); features is the CSR (indptr, indices,\n"
"weights float32) of the rows that have each feature, group (int32) each\n"
"feature's prior group, prior_mean (groups x d), prior_prec (groups x d*d).\n"
"eff (n x d) moves with the features. gram / gram_rhs: what bayes_rows\n"
"wrote for the same other side (computed here when None).");

static PyObject *bayes_features(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ratings", "other", "eff", "features", "group", "Y",
                             "prior_mean", "prior_prec", "mu", "alpha", "seed", "stream",
                             "n_threads", "gram", "gram_rhs", NULL};
    PyObject *ro, *oo, *eo, *xo, *go, *yo, *mo, *po, *gro = Py_None, *bo = Py_None,
             *result = NULL;
    PyArrayObject *other = NULL, *ef = NULL, *group = NULL, *Y = NULL, *mean = NULL,
                  *prec = NULL, *G = NULL, *B = NULL;
    double mu = NAN, alpha = NAN; /* required: NaN fails the check */
    unsigned long long seed = 0, stream = 0;
    int n_threads = 1, status;
    csr_view R = {0}, XT = {0};
    (void)module;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOO|$ddKKiOO", kwlist, &ro, &oo, &eo,
                                     &xo, &go, &yo, &mo, &po, &mu, &alpha, &seed, &stream,
                                     &n_threads, &gro, &bo) ||
        bayes_check_noise(mu, alpha) < 0 || !(other = bayes_matrix(oo, -1, -1, 0, "other")))
        return NULL;
    npy_intp d = PyArray_DIM(other, 1);
    if (csr_view_get(&R, ro, PyArray_DIM(other, 0), "ratings") < 0 ||
        !(ef = bayes_matrix(eo, R.csr.n_rows, d, 1, "eff")) ||
        csr_view_get(&XT, xo, R.csr.n_rows, "features") < 0 ||
        !(Y = bayes_matrix(yo, XT.csr.n_rows, d, 1, "Y")) ||
        !(group = as_array(go, NPY_INT32, 1, "group")))
        goto cleanup;
    if (PyArray_DIM(group, 0) != XT.csr.n_rows || d < 2) {
        PyErr_SetString(PyExc_ValueError, "group must have one entry per feature, and d >= 2");
        goto cleanup;
    }
    mean = bayes_matrix(mo, -1, d, 0, "prior_mean");
    if (!mean || !(prec = bayes_matrix(po, PyArray_DIM(mean, 0), d * d, 0, "prior_prec")) ||
        bayes_gram(gro, bo, R.csr.n_rows, d, 0, &G, &B) < 0)
        goto cleanup;
    mfr_bayes_side s = {R.csr, (int32_t)d, NULL, PyArray_DATA(ef), NULL, NULL, mu, alpha,
                        G ? PyArray_DATA(G) : NULL, B ? PyArray_DATA(B) : NULL};
    mfr_bayes_group f = {XT.csr, PyArray_DATA(group), (int32_t)PyArray_DIM(mean, 0),
                            PyArray_DATA(Y), PyArray_DATA(mean), PyArray_DATA(prec)};
    Py_BEGIN_ALLOW_THREADS
    status = mfr_bayes_features(&s, &f, PyArray_DATA(other), (int32_t)PyArray_DIM(other, 0),
                                seed, stream, n_threads);
    Py_END_ALLOW_THREADS
    if (status == MFR_EINDEX)
        PyErr_SetString(PyExc_IndexError, "bayes_features: group out of range");
    else if (status != MFR_OK)
        bayes_status(status, "bayes_features");
    else
        result = Py_NewRef(Py_None);
cleanup:
    csr_view_release(&R);
    csr_view_release(&XT);
    Py_XDECREF(other);
    Py_XDECREF(ef);
    Py_XDECREF(group);
    Py_XDECREF(Y);
    Py_XDECREF(mean);
    Py_XDECREF(prec);
    Py_XDECREF(G);
    Py_XDECREF(B);
    return result;
}

PyDoc_STRVAR(bayes_hyper_doc,
"bayes_hyper(rows, k, seed, stream)\n--\n\n"
"One draw of a group's prior (mean (d,), prec (d, d)) given its rows\n"
"(float64, n x d): Normal-Wishart over the first k columns (m0 = 0,\n"
"beta0 = 1, nu0 = k, W0 = I), Normal-Gamma (a0 = b0 = beta0 = 1) for the rest.");

static PyObject *bayes_hyper(PyObject *module, PyObject *args)
{
    PyObject *ro;
    int k, status;
    unsigned long long seed, stream;
    (void)module;
    if (!PyArg_ParseTuple(args, "OiKK", &ro, &k, &seed, &stream))
        return NULL;
    PyArrayObject *rows = bayes_matrix(ro, -1, -1, 0, "rows");
    if (!rows)
        return NULL;
    npy_intp d = PyArray_DIM(rows, 1), dims[2] = {d, d};
    PyArrayObject *mean = NULL, *prec = NULL;
    if (k < 0 || k > d || d < 1) {
        PyErr_Format(PyExc_ValueError, "k must be in [0, %zd], got %d", (Py_ssize_t)d, k);
        goto fail;
    }
    mean = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    prec = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT64, 0);
    if (!mean || !prec)
        goto fail;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_bayes_hyper(PyArray_DATA(rows), PyArray_DIM(rows, 0), (int32_t)d, k, seed,
                             stream, PyArray_DATA(mean), PyArray_DATA(prec));
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        bayes_status(status, "bayes_hyper");
        goto fail;
    }
    Py_DECREF(rows);
    return Py_BuildValue("NN", mean, prec);
fail:
    Py_DECREF(rows);
    Py_XDECREF(mean);
    Py_XDECREF(prec);
    return NULL;
}

PyDoc_STRVAR(bayes_noise_doc,
"bayes_noise(n, sum_e, sum_e2, mu, alpha, seed, stream)\n--\n\n"
"Draw (mu, alpha) given the n residuals' sum and sum of squares at mu\n"
"(mfr_bayes_noise).");

static PyObject *bayes_noise(PyObject *module, PyObject *args)
{
    long long n;
    double sum_e, sum_e2, mu, alpha;
    unsigned long long seed, stream;
    (void)module;
    if (!PyArg_ParseTuple(args, "LddddKK", &n, &sum_e, &sum_e2, &mu, &alpha, &seed, &stream))
        return NULL;
    int status = mfr_bayes_noise(n, sum_e, sum_e2, &mu, &alpha, seed, stream);
    if (status != MFR_OK)
        return bayes_status(status, "bayes_noise");
    return Py_BuildValue("dd", mu, alpha);
}

PyDoc_STRVAR(bayes_predict_doc,
"bayes_predict(users, items, U, V, mu, n_threads=1)\n--\n\n"
"mu + U[u, :k] . V[i, :k] + U[u, k] + V[i, k] for each pair (float64).");

static PyObject *bayes_predict(PyObject *module, PyObject *args)
{
    PyObject *uo, *io, *Uo, *Vo;
    double mu;
    int n_threads = 1, status;
    PyArrayObject *users = NULL, *items = NULL, *U = NULL, *V = NULL, *out = NULL;
    (void)module;
    if (!PyArg_ParseTuple(args, "OOOOd|i", &uo, &io, &Uo, &Vo, &mu, &n_threads))
        return NULL;
    if (!(users = as_array(uo, NPY_INT32, 1, "users")) ||
        !(items = as_array(io, NPY_INT32, 1, "items")) ||
        !(U = bayes_matrix(Uo, -1, -1, 0, "U")) ||
        !(V = bayes_matrix(Vo, -1, PyArray_DIM(U, 1), 0, "V")) ||
        same_length(users, items, "users", "items") < 0)
        goto cleanup;
    npy_intp n = PyArray_DIM(users, 0);
    status = mfr_check_triplets(n, PyArray_DATA(users), (int32_t)PyArray_DIM(U, 0),
                                PyArray_DATA(items), (int32_t)PyArray_DIM(V, 0), NULL);
    if (status != MFR_OK || PyArray_DIM(U, 1) < 2) {
        PyErr_SetString(PyExc_IndexError, "bayes_predict: an index is out of range (or d < 2)");
        goto cleanup;
    }
    if (!(out = (PyArrayObject *)PyArray_EMPTY(1, &n, NPY_FLOAT64, 0)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    mfr_bayes_predict(n, PyArray_DATA(users), PyArray_DATA(items), PyArray_DATA(U),
                      PyArray_DATA(V), (int32_t)PyArray_DIM(U, 1), mu, PyArray_DATA(out),
                      n_threads);
    Py_END_ALLOW_THREADS
cleanup:
    Py_XDECREF(users);
    Py_XDECREF(items);
    Py_XDECREF(U);
    Py_XDECREF(V);
    return (PyObject *)out;
}

/* The 1-D float64 latent predictions, int32 levels (same length) and
 * float64 cut points of the ordinal functions; -1 with an exception. */
static int ordinal_inputs(PyObject *po, PyObject *lo, PyObject *co, PyArrayObject **pred,
                          PyArrayObject **level, PyArrayObject **cuts)
{
    *pred = *level = *cuts = NULL;
    if (!(*pred = as_array(po, NPY_FLOAT64, 1, "pred")) ||
        !(*level = as_array(lo, NPY_INT32, 1, "level")) ||
        !(*cuts = as_array(co, NPY_FLOAT64, 1, "cuts")) ||
        same_length(*pred, *level, "pred", "level") < 0)
        return -1;
    if (PyArray_DIM(*cuts, 0) < 1 || check_int32_size(PyArray_DIM(*cuts, 0) + 1, "levels") < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "cuts: needs at least one cut point");
        return -1;
    }
    return 0;
}

static PyObject *ordinal_status(int status, const char *what)
{
    if (status == MFR_EINVAL) {
        PyErr_Format(PyExc_ValueError, "%s: cuts must be finite and increasing", what);
        return NULL;
    }
    if (status == MFR_EINDEX) {
        PyErr_Format(PyExc_IndexError, "%s: level out of range [0, len(cuts)]", what);
        return NULL;
    }
    return raise_status(status, what);
}

PyDoc_STRVAR(ordinal_latent_doc,
"ordinal_latent(pred, level, cuts, seed, stream, n_threads=1)\n--\n\n"
"z ~ N(pred, 1) truncated to each level's interval (mfr_ordinal_latent).");

static PyObject *ordinal_latent(PyObject *module, PyObject *args)
{
    PyObject *po, *lo, *co;
    unsigned long long seed, stream;
    int n_threads = 1, status;
    PyArrayObject *pred, *level, *cuts, *z = NULL;
    (void)module;
    if (!PyArg_ParseTuple(args, "OOOKK|i", &po, &lo, &co, &seed, &stream, &n_threads))
        return NULL;
    if (ordinal_inputs(po, lo, co, &pred, &level, &cuts) < 0)
        goto cleanup;
    npy_intp n = PyArray_DIM(pred, 0);
    if (!(z = (PyArrayObject *)PyArray_EMPTY(1, &n, NPY_FLOAT64, 0)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_ordinal_latent(n, PyArray_DATA(pred), PyArray_DATA(level), PyArray_DATA(cuts),
                                (int32_t)PyArray_DIM(cuts, 0) + 1, seed, stream,
                                PyArray_DATA(z), n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        Py_CLEAR(z);
        ordinal_status(status, "ordinal_latent");
    }
cleanup:
    Py_XDECREF(pred);
    Py_XDECREF(level);
    Py_XDECREF(cuts);
    return (PyObject *)z;
}

PyDoc_STRVAR(ordinal_loglik_doc,
"ordinal_loglik(pred, level, cuts, n_threads=1)\n--\n\n"
"sum log P(level | pred) under the ordered probit (mfr_ordinal_loglik).");

static PyObject *ordinal_loglik(PyObject *module, PyObject *args)
{
    PyObject *po, *lo, *co, *result = NULL;
    int n_threads = 1, status;
    double out = 0.0;
    PyArrayObject *pred, *level, *cuts;
    (void)module;
    if (!PyArg_ParseTuple(args, "OOO|i", &po, &lo, &co, &n_threads))
        return NULL;
    if (ordinal_inputs(po, lo, co, &pred, &level, &cuts) < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_ordinal_loglik(PyArray_DIM(pred, 0), PyArray_DATA(pred), PyArray_DATA(level),
                                PyArray_DATA(cuts), (int32_t)PyArray_DIM(cuts, 0) + 1, &out,
                                n_threads);
    Py_END_ALLOW_THREADS
    result = status == MFR_OK ? PyFloat_FromDouble(out) : ordinal_status(status, "ordinal_loglik");
cleanup:
    Py_XDECREF(pred);
    Py_XDECREF(level);
    Py_XDECREF(cuts);
    return result;
}

PyDoc_STRVAR(ordinal_probs_doc,
"ordinal_probs(pred, cuts, n_threads=1)\n--\n\n"
"The level probabilities (n x levels) averaged over samples: pred is\n"
"n x S latent predictions, cuts S x (levels - 1) (mfr_ordinal_probs).");

static PyObject *ordinal_probs(PyObject *module, PyObject *args)
{
    PyObject *po, *co;
    int n_threads = 1, status;
    PyArrayObject *pred = NULL, *cuts = NULL, *out = NULL;
    (void)module;
    if (!PyArg_ParseTuple(args, "OO|i", &po, &co, &n_threads))
        return NULL;
    if (!(pred = bayes_matrix(po, -1, -1, 0, "pred")) ||
        !(cuts = bayes_matrix(co, PyArray_DIM(pred, 1), -1, 0, "cuts")))
        goto cleanup;
    npy_intp dims[2] = {PyArray_DIM(pred, 0), PyArray_DIM(cuts, 1) + 1};
    if (PyArray_DIM(pred, 1) < 1 || dims[1] < 2) {
        PyErr_SetString(PyExc_ValueError, "ordinal_probs: needs >= 1 sample and >= 1 cut point");
        goto cleanup;
    }
    if (!(out = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_FLOAT64, 0)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_ordinal_probs(dims[0], (int32_t)PyArray_DIM(pred, 1), PyArray_DATA(pred),
                               PyArray_DATA(cuts), (int32_t)dims[1], PyArray_DATA(out),
                               n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        Py_CLEAR(out);
        raise_status(status, "ordinal_probs");
    }
cleanup:
    Py_XDECREF(pred);
    Py_XDECREF(cuts);
    return (PyObject *)out;
}

static PyMethodDef bayes_functions[] = {
    {"bayes_rows", (PyCFunction)(void (*)(void))bayes_rows, METH_VARARGS | METH_KEYWORDS,
     bayes_rows_doc},
    {"bayes_features", (PyCFunction)(void (*)(void))bayes_features,
     METH_VARARGS | METH_KEYWORDS, bayes_features_doc},
    {"bayes_hyper", bayes_hyper, METH_VARARGS, bayes_hyper_doc},
    {"bayes_noise", bayes_noise, METH_VARARGS, bayes_noise_doc},
    {"bayes_predict", bayes_predict, METH_VARARGS, bayes_predict_doc},
    {"ordinal_latent", ordinal_latent, METH_VARARGS, ordinal_latent_doc},
    {"ordinal_loglik", ordinal_loglik, METH_VARARGS, ordinal_loglik_doc},
    {"ordinal_probs", ordinal_probs, METH_VARARGS, ordinal_probs_doc},
    {NULL}};

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
                             als_functions,  features_functions, bayes_functions};
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
