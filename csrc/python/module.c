/*
 * module.c - the module mfrec._core and its Model type.
 *
 * Multi-phase init: the exec slot imports NumPy's C API (for every binding
 * file), creates the heap type Model, which owns the factor arrays, and
 * adds each binding file's function table. Also here: the Model's
 * attributes and predictions, the factors' random start, and what the
 * library reports about itself.
 */
#define MFREC_BINDING_IMPORTS_NUMPY
#include "binding.h"

/* ==== the Model type ==================================================== */

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

void model_view_release(model_view *v)
{
    for (int j = 0; j < 4; j++)
        Py_CLEAR(v->held[j]);
}

int model_view_get(ModelObject *self, model_view *v, int need_bias)
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

/* The model's arrays are its own: a setter stores a private copy, read-only
 * to Python (sealed: see convert.c), so no thread can change a model's
 * state while the GIL is released around a kernel that validated it; only
 * the binding's kernels write through the data pointer (the training
 * steps, on private core models). */
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
        arr = (PyArrayObject *)PyArray_FROM_OTF(value, s->typenum,
                                                NPY_ARRAY_CARRAY | NPY_ARRAY_ENSURECOPY);
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
        if (!(arr = sealed(arr)))
            return -1;
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

/* A method of Model: the first argument (`module` in the macro) is the
 * instance. */
BINDING_KW_AS(model_predict, "_predict", "($self, users, items, n_threads=1)",
"Predictions for pairs of contiguous indices (int32; -1 = unknown, which\n"
"falls back to the global mean plus the known bias).")
{
    static char *kwlist[] = {"users", "items", "n_threads", NULL};
    PyObject *uo, *io, *result = NULL;
    PyArrayObject *users = NULL, *items = NULL, *out = NULL;
    int n_threads = 1, status;
    model_view v = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|i", kwlist, &uo, &io, &n_threads))
        return NULL;
    if (model_view_get((ModelObject *)module, &v, 0) < 0)
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

static PyMethodDef model_methods[] = {METHOD(model_predict), {NULL}};

PyDoc_STRVAR(model_doc,
"Model()\n--\n\n"
"The factor model of the C core: arrays user_factors, item_factors,\n"
"user_bias, item_bias and the scalar global_mean. mfrec.Model builds on it.\n"
"Setting an array stores a copy; reading one gives the model's array,\n"
"read-only (assign a new array to change it).");

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

ModelObject *as_model(PyObject *module, PyObject *obj)
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

/* ==== the factors' random start (rng.c) ================================ */

BINDING_ARGS(init_factors, "(out, kind, scale, seed, stream, /)",
"Fill the float32 matrix `out` in place: kind 0 = uniform [0, scale),\n"
"1 = normal(0, scale) with scale <= 1e37. Deterministic in (seed, stream).")
{
    PyObject *oo;
    PyArrayObject *out;
    int kind, status;
    float scale;
    unsigned long long seed, stream;
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

/* ==== library information ============================================== */

BINDING_NOARGS(openblas_config, "OpenBLAS build configuration and the kernel it selected.")
{
    const char *config, *corename;
    mfr_blas_info(&config, &corename);
    return PyUnicode_FromFormat("%s (core: %s)", config, corename);
}

BINDING_NOARGS(simd_variant, "Instruction-set variant of the multi-versioned kernels.")
{
    return PyUnicode_FromString(mfr_simd_variant());
}

PyMethodDef mfr_py_info_functions[] = {METHOD(init_factors), METHOD(openblas_config),
                                       METHOD(simd_variant), {NULL}};

/* ==== module =========================================================== */

static int module_exec(PyObject *m)
{
    module_state *st = PyModule_GetState(m);
    if (PyArray_ImportNumPyAPI() < 0)
        return -1;
    st->model_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &model_spec, NULL);
    if (!st->model_type || PyModule_AddType(m, st->model_type) < 0)
        return -1;
    PyMethodDef *tables[] = {mfr_py_info_functions,  mfr_py_ratings_functions,
                             mfr_py_features_functions, mfr_py_sgd_functions,
                             mfr_py_als_functions,   mfr_py_svd_functions,
                             mfr_py_nmf_functions,   mfr_py_topn_functions,
                             mfr_py_metrics_functions, mfr_py_foldin_functions,
                             mfr_py_bayes_functions, mfr_py_vocab_functions};
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
    .m_doc = "The C core of mfrec (see csrc/core/mfrec.h).",
    .m_size = sizeof(module_state),
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__core(void) { return PyModuleDef_Init(&module_def); }

