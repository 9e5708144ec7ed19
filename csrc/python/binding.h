/*
 * binding.h - what every file of the CPython binding (mfrec._core) shares.
 *
 * The binding is the only C that includes Python.h. Each file mirrors one
 * capability of the core (csrc/core/): it validates and converts the
 * arguments, holds a reference to every array the C code touches,
 * releases the GIL around the C call and turns status codes into
 * exceptions. module.c imports NumPy's C API once for all of them.
 */
#ifndef MFREC_BINDING_H
#define MFREC_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL mfrec_ARRAY_API
#ifndef MFREC_BINDING_IMPORTS_NUMPY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "mfrec.h"

/* ---- functions: name, calling convention and docstring written once ----
 * BINDING_KW(name, "(signature)", "doc") { ... } opens the definition of
 * name(module, args, kwds) and records its docstring (the signature line
 * first, as __text_signature__ reads it) and its flags; METHOD(name) is
 * then its entry in a file's PyMethodDef table. BINDING_ARGS is for
 * positional-only functions, BINDING_NOARGS for functions without
 * arguments; the _AS forms give a Python name that differs from the C one.
 * The kwlist and format stay beside the parse call; tests/test_binding.py
 * checks that every function parses what its signature says. */
#define BINDING_DEF_(cname, pyname, flags, sig, doc)                 \
    static const char cname##__name[] = pyname;                      \
    PyDoc_STRVAR(cname##__doc__, pyname sig "\n--\n\n" doc);         \
    enum { cname##__flags = (flags) }
#define BINDING_KW_AS(cname, pyname, sig, doc)                                 \
    BINDING_DEF_(cname, pyname, METH_VARARGS | METH_KEYWORDS, sig, doc);       \
    static PyObject *cname(PyObject *module, PyObject *args, PyObject *kwds)
#define BINDING_KW(name, sig, doc) BINDING_KW_AS(name, #name, sig, doc)
#define BINDING_ARGS(name, sig, doc)                           \
    BINDING_DEF_(name, #name, METH_VARARGS, sig, doc);         \
    static PyObject *name(PyObject *module, PyObject *args)
#define BINDING_NOARGS(name, doc)                              \
    BINDING_DEF_(name, #name, METH_NOARGS, "()", doc);         \
    static PyObject *name(PyObject *module, PyObject *unused)
#define METHOD(cname) \
    {cname##__name, (PyCFunction)(void (*)(void))cname, cname##__flags, cname##__doc__}

/* Each file's functions, added by the module's exec slot (module.c). */
extern PyMethodDef mfr_py_info_functions[], mfr_py_ratings_functions[],
    mfr_py_features_functions[], mfr_py_sgd_functions[], mfr_py_als_functions[],
    mfr_py_svd_functions[], mfr_py_nmf_functions[], mfr_py_topn_functions[],
    mfr_py_metrics_functions[], mfr_py_foldin_functions[], mfr_py_bayes_functions[],
    mfr_py_vocab_functions[];

/* ---- status codes and arguments (convert.c) ----------------------------- */

/* Set the exception that matches a core status; returns NULL.
 * MFR_ENOTPD raises numpy.linalg.LinAlgError (a ValueError); MFR_EDIVERGED
 * and MFR_ERANGE FloatingPointError. */
PyObject *raise_status(int status, const char *what);
/* Like raise_status with a message of the caller's own. */
PyObject *raise_status_msg(int status, const char *message);
/* Replace the exception of a failed conversion of argument `name` to
 * `typenum` by a TypeError that names the argument. */
void conversion_error(const char *name, int typenum);
/* A new reference to an aligned, C-contiguous array of `typenum` with
 * `ndim` dimensions, converted from obj only where the cast is safe.
 * NULL with an exception that names the argument otherwise. */
PyArrayObject *as_array(PyObject *obj, int typenum, int ndim, const char *name);
/* As as_array, a private copy unless obj is sealed: for indices the core
 * checks in one pass and reads again in another, with the GIL released in
 * between, so that no other thread can change them after the check. */
PyArrayObject *as_indices(PyObject *obj, int typenum, int ndim, const char *name);
/* A read-only array over the data of `owner` (stolen), which it keeps
 * alive, and which no thread can write through Python (see convert.c):
 * the model's arrays and the CSRs build_csr returns. */
PyArrayObject *sealed(PyArrayObject *owner);
/* Like as_array, for arrays the core writes into: never a copy. */
PyArrayObject *as_output(PyObject *obj, int typenum, int ndim, const char *name);
/* 1-D arrays that must have the same length; returns it, or -1. */
npy_intp same_length(PyArrayObject *a, PyArrayObject *b, const char *na, const char *nb);
int check_int32_size(Py_ssize_t n, const char *name);

/* A CSR passed as the tuple (indptr int64, indices int32, values float32)
 * that build_csr returns, with n_cols columns; checked in full. */
typedef struct {
    mfr_csr csr;
    PyArrayObject *held[3];
} csr_view;

int csr_view_get(csr_view *v, PyObject *obj, Py_ssize_t n_cols, const char *name);
/* As csr_view_get; values may also be None (ones: csr.values NULL) if
 * `optional`, for the kernels that take binary data. */
int csr_view_get_values(csr_view *v, PyObject *obj, Py_ssize_t n_cols, const char *name,
                        int optional);
void csr_view_release(csr_view *v);
/* As csr_view_get, for the ratings of model m by user: n_items columns and
 * one row per user. */
int csr_view_get_by_user(csr_view *v, PyObject *obj, const mfr_model *m, const char *name);
/* by_col must hold the entries of by_row transposed: -1 with a ValueError
 * naming both otherwise. */
int csr_views_transposed(const csr_view *by_row, const csr_view *by_col, const char *row_name,
                         const char *col_name);

/* ---- side features (features.c) ------------------------------------------
 * The features of one side, given from Python as the tuple
 * (indptr int64, indices int32, weights float32, factors float32 2-D,
 * bias float32 1-D or None); factors (and bias) are updated in place. */
typedef struct {
    mfr_features f;
    PyArrayObject *held[5];
} features_view;

/* Fill v from obj (None leaves v empty and returns 0 with *present = 0).
 * Checks the shapes against n_rows and k; the contents are checked by the
 * core (mfr_features_check). */
int features_view_get(PyObject *obj, features_view *v, npy_intp n_rows, npy_intp k,
                      const char *name, int *present);
void features_view_release(features_view *v);

/* ---- the Model type (module.c) ------------------------------------------ */

typedef struct {
    PyTypeObject *model_type;
} module_state;

/* The factor model: prediction = mu + b_u + b_i + P[u] . Q[i]. The arrays
 * are owned here (float32, C-contiguous; private copies, read-only to
 * Python: see sealed in convert.c); the training kernels update them in place.
 * seen_indptr/seen_indices: the training items of each user (CSR). */
typedef struct {
    PyObject_HEAD
    PyArrayObject *user_factors, *item_factors, *user_bias, *item_bias;
    PyArrayObject *seen_indptr, *seen_indices;
    double global_mean;
} ModelObject;

/* A consistent mfr_model over the object's arrays, holding a reference to
 * each so that the GIL can be released while the core uses them. */
typedef struct {
    mfr_model m;
    PyArrayObject *held[4];
} model_view;

int model_view_get(ModelObject *self, model_view *v, int need_bias);
void model_view_release(model_view *v);
/* The ModelObject behind an argument that must be a _core.Model. */
ModelObject *as_model(PyObject *module, PyObject *obj);

#endif /* MFREC_BINDING_H */
