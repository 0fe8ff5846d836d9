/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain
 * a copy of the License at
 *
 *      http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
 * WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
 * License for the specific language governing permissions and limitations
 * under the License.
 *
 * The compiled form of cloudkitty.storage.v2.fastpath.encode_known().
 *
 * It does what the pure-Python function does, step for step, and stops
 * where that one stops: at the first point whose series is not cached
 * under its plain key or whose qty or price is not a Decimal ready to
 * store. The caller then takes that point through the full checks, so
 * every refusal and every rounding stays in Python (money.check()).
 * fastpath.py is the reference; the unit tests compare both on the same
 * inputs.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>


/* (k, v) pairs of a dict, in its order: tuple(mapping.items()). */
static PyObject *
items_tuple(PyObject *mapping)
{
    Py_ssize_t size = PyDict_GET_SIZE(mapping), pos = 0, at = 0;
    PyObject *key, *value;
    PyObject *items = PyTuple_New(size);

    if (items == NULL)
        return NULL;
    while (PyDict_Next(mapping, &pos, &key, &value)) {
        PyObject *pair;

        if (at >= size) {
            /* The mapping grew while read: let Python handle it. */
            Py_DECREF(items);
            return Py_NewRef(Py_None);
        }
        pair = PyTuple_Pack(2, key, value);
        if (pair == NULL) {
            Py_DECREF(items);
            return NULL;
        }
        PyTuple_SET_ITEM(items, at++, pair);
    }
    if (at != size) {
        Py_DECREF(items);
        return Py_NewRef(Py_None);
    }
    return items;
}

/*
 * The exact 10**-12 units of a Decimal's text, when they fit 64 bits.
 *
 * The text is what str() gives a Decimal: an optional sign, digits with
 * an optional point, an optional exponent (E+n, E-n); NaN and Infinity
 * are not digits. Returns 1 and sets *units when the value times 10**12
 * is an integer of fewer than 19 digits, else 0: the caller then leaves
 * the value to Python, which takes it exactly or rounds it.
 */
static int
text_units(const char *text, Py_ssize_t length, long long *units)
{
    const char *end = text + length;
    long long mantissa = 0;
    long exponent = 0, shift;
    int negative = 0, digits = 0, seen_point = 0;

    if (text < end && (*text == '-' || *text == '+')) {
        negative = *text == '-';
        text++;
    }
    for (; text < end && (('0' <= *text && *text <= '9') || *text == '.');
            text++) {
        if (*text == '.') {
            if (seen_point)
                return 0;
            seen_point = 1;
            continue;
        }
        /* Leading zeros cost no digit of precision. */
        if (mantissa == 0 && *text == '0') {
            if (seen_point)
                exponent--;
            continue;
        }
        if (++digits > 18)
            return 0;
        mantissa = mantissa * 10 + (*text - '0');
        if (seen_point)
            exponent--;
    }
    if (text < end) {
        long written = 0;
        int exponent_negative = 0, exponent_digits = 0;

        if (*text != 'E' && *text != 'e')
            return 0;
        text++;
        if (text < end && (*text == '-' || *text == '+')) {
            exponent_negative = *text == '-';
            text++;
        }
        for (; text < end && '0' <= *text && *text <= '9'; text++) {
            if (++exponent_digits > 6)
                return 0;
            written = written * 10 + (*text - '0');
        }
        if (text != end || exponent_digits == 0)
            return 0;
        exponent += exponent_negative ? -written : written;
    }
    /* value = mantissa * 10**exponent; units = value * 10**12. */
    shift = exponent + 12;
    if (mantissa == 0) {
        *units = 0;
        return 1;
    }
    for (; shift < 0; shift++) {
        if (mantissa % 10)
            return 0;
        mantissa /= 10;
    }
    for (; shift > 0; shift--) {
        if (mantissa > 922337203685477580LL)
            return 0;
        mantissa *= 10;
    }
    *units = negative ? -mantissa : mantissa;
    return 1;
}

/*
 * A Decimal ready to store as its units: 1 and *units set, 0 when it is
 * not one (or does not fit 64 bits), -1 on error. As the fast path of
 * money.point_units(), which takes what this leaves.
 */
static int
fast_units(PyObject *value, PyObject *decimal_type, long long bound,
           long long *units)
{
    PyObject *text;
    const char *chars;
    Py_ssize_t length;
    int taken;

    if ((PyObject *)Py_TYPE(value) != decimal_type)
        return 0;
    text = PyObject_Str(value);
    if (text == NULL)
        return -1;
    chars = PyUnicode_AsUTF8AndSize(text, &length);
    if (chars == NULL) {
        Py_DECREF(text);
        return -1;
    }
    taken = text_units(chars, length, units);
    Py_DECREF(text);
    return taken && -bound < *units && *units < bound;
}

/* The floor of units / hundred and what remains, as ints, at row[at]. */
static int
set_pair(PyObject *row, Py_ssize_t at, long long units, long long hundred)
{
    long long hundreds = units / hundred, rest = units % hundred;
    PyObject *first, *second;

    if (rest < 0) {
        rest += hundred;
        hundreds -= 1;
    }
    first = PyLong_FromLongLong(hundreds);
    if (first == NULL)
        return -1;
    second = PyLong_FromLongLong(rest);
    if (second == NULL) {
        Py_DECREF(first);
        return -1;
    }
    PyTuple_SET_ITEM(row, at, first);
    PyTuple_SET_ITEM(row, at + 1, second);
    return 0;
}

/*
 * One point: 1 and its row appended, 0 when the caller must take it, -1
 * on error.
 */
static int
encode_point(PyObject *out, PyObject *point, PyObject *scope_id,
             PyObject *type_, PyObject *begin, PyObject *end,
             PyObject *known, PyObject *mapping_types,
             PyObject *decimal_type, long long bound, long long hundred)
{
    PyObject *groupby, *metadata, *groupby_items, *metadata_items;
    PyObject *key, *series, *row;
    long long qty, price;
    int known_type, taken;

    if (!PyTuple_Check(point) || PyTuple_GET_SIZE(point) != 6)
        return 0;
    groupby = PyTuple_GET_ITEM(point, 3);
    metadata = PyTuple_GET_ITEM(point, 4);
    known_type = PySequence_Contains(mapping_types,
                                     (PyObject *)Py_TYPE(groupby));
    if (known_type == 1)
        known_type = PySequence_Contains(mapping_types,
                                         (PyObject *)Py_TYPE(metadata));
    if (known_type <= 0)
        return known_type;
    groupby_items = items_tuple(groupby);
    if (groupby_items == NULL)
        return -1;
    metadata_items = items_tuple(metadata);
    if (metadata_items == NULL) {
        Py_DECREF(groupby_items);
        return -1;
    }
    if (groupby_items == Py_None || metadata_items == Py_None) {
        Py_DECREF(groupby_items);
        Py_DECREF(metadata_items);
        return 0;
    }
    key = PyTuple_Pack(6, scope_id, type_, PyTuple_GET_ITEM(point, 0),
                       groupby_items, metadata_items,
                       PyTuple_GET_ITEM(point, 5));
    Py_DECREF(groupby_items);
    Py_DECREF(metadata_items);
    if (key == NULL)
        return -1;
    series = PyDict_GetItemWithError(known, key);
    Py_DECREF(key);
    if (series == NULL)
        return PyErr_Occurred() ? -1 : 0;
    taken = fast_units(PyTuple_GET_ITEM(point, 1), decimal_type, bound,
                       &qty);
    if (taken == 1)
        taken = fast_units(PyTuple_GET_ITEM(point, 2), decimal_type, bound,
                           &price);
    if (taken <= 0)
        return taken;
    row = PyTuple_New(7);
    if (row == NULL)
        return -1;
    PyTuple_SET_ITEM(row, 0, Py_NewRef(series));
    PyTuple_SET_ITEM(row, 1, Py_NewRef(begin));
    PyTuple_SET_ITEM(row, 2, Py_NewRef(end));
    /* NOTE: a half-filled tuple holds NULLs, which its deallocation
     * skips. */
    if (set_pair(row, 3, qty, hundred) < 0 ||
            set_pair(row, 5, price, hundred) < 0 ||
            PyList_Append(out, row) < 0) {
        Py_DECREF(row);
        return -1;
    }
    Py_DECREF(row);
    return 1;
}

static PyObject *
encode_known(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *out, *run, *known, *config, *decimal_type;
    Py_ssize_t index, size;
    long long bound, hundred;
    int overflow;

    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "encode_known() takes 10 arguments");
        return NULL;
    }
    out = args[0];
    run = args[1];
    known = args[6];
    config = args[8];
    if (!PyList_Check(out) || !PyList_Check(run) || !PyDict_Check(known) ||
            !PyTuple_Check(config) || PyTuple_GET_SIZE(config) != 7) {
        PyErr_SetString(PyExc_TypeError, "encode_known(): bad arguments");
        return NULL;
    }
    decimal_type = PyTuple_GET_ITEM(config, 0);
    /* A bound past 64 bits bounds nothing here: the units taken fit. */
    bound = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(config, 4),
                                         &overflow);
    if (bound == -1 && PyErr_Occurred())
        return NULL;
    if (overflow > 0)
        bound = LLONG_MAX;
    hundred = PyLong_AsLongLong(PyTuple_GET_ITEM(config, 6));
    if (hundred == -1 && PyErr_Occurred())
        return NULL;
    if (overflow < 0 || hundred <= 0) {
        PyErr_SetString(PyExc_ValueError, "encode_known(): bad config");
        return NULL;
    }
    index = PyLong_AsSsize_t(args[9]);
    if (index == -1 && PyErr_Occurred())
        return NULL;
    size = PyList_GET_SIZE(run);
    for (; index < size; index++) {
        PyObject *point = PyList_GET_ITEM(run, index);
        int done;

        Py_INCREF(point);
        done = encode_point(out, point, args[2], args[3], args[4], args[5],
                            known, args[7], decimal_type, bound, hundred);
        Py_DECREF(point);
        if (done < 0)
            return NULL;
        if (done == 0)
            break;
        /* The run may have shrunk meanwhile (it should not). */
        size = PyList_GET_SIZE(run);
    }
    return PyLong_FromSsize_t(index);
}

static PyMethodDef methods[] = {
    {"encode_known", (PyCFunction)(void (*)(void))encode_known,
     METH_FASTCALL,
     "encode_known(out, run, scope_id, type_, begin, end, known, "
     "mapping_types, config, start) -> index\n\n"
     "See cloudkitty.storage.v2.fastpath.encode_known()."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups",
    "Compiled forms of cloudkitty.storage.v2.fastpath's functions.", -1,
    methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
