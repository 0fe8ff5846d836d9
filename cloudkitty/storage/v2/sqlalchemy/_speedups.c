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
 * The compiled forms of cloudkitty.storage.v2.sqlalchemy.fastpath's functions.
 *
 * encode_known() does what the pure-Python function does, step for step,
 * and stops where that one stops: at the first point whose series is not
 * cached under its plain key or whose qty or price is not a Decimal ready
 * to store. Into a bytearray it writes each row as PostgreSQL's binary
 * COPY reads it (fastpath.copy_row()). The caller then takes that point
 * through the full checks, so every refusal and every rounding stays in
 * Python (money.check()).
 * rebuild() turns read rows back into points, or runs of them. fastpath.py
 * is the reference; the unit tests compare both forms on the same inputs.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>


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

/* The floor of units / hundred and what remains, as Python's divmod(). */
static void
floor_pair(long long units, long long hundred, long long *hundreds,
           long long *rest)
{
    *hundreds = units / hundred;
    *rest = units % hundred;
    if (*rest < 0) {
        *rest += hundred;
        *hundreds -= 1;
    }
}

/* floor_pair() of units, as ints, at row[at]. */
static int
set_pair(PyObject *row, Py_ssize_t at, long long units, long long hundred)
{
    long long hundreds, rest;
    PyObject *first, *second;

    floor_pair(units, hundred, &hundreds, &rest);
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

/* value at out, big-endian, in size bytes (2, 4 or 8). */
static unsigned char *
put_big_endian(unsigned char *out, unsigned long long value, int size)
{
    int at;

    for (at = size - 1; at >= 0; at--) {
        out[at] = (unsigned char)(value & 0xff);
        value >>= 8;
    }
    return out + size;
}

/* Bytes of one row in binary COPY: 7 fields, an int4 and six int8. */
#define COPY_ROW_SIZE (2 + 4 + 4 + 6 * (4 + 8))

/*
 * A row appended to the bytearray out as fastpath.copy_row() lays it out:
 * 1 done, 0 when the series id does not fit int4 (the caller takes the
 * point), -1 on error. frame holds begin and end, already read.
 */
static int
append_copy_row(PyObject *out, PyObject *series, const long long *frame,
                long long qty, long long price, long long hundred)
{
    long long values[7];
    unsigned char *at;
    Py_ssize_t size = PyByteArray_GET_SIZE(out);
    int overflow, index;

    if (!PyLong_CheckExact(series))
        return 0;
    values[0] = PyLong_AsLongLongAndOverflow(series, &overflow);
    if (values[0] == -1 && PyErr_Occurred())
        return -1;
    if (overflow || values[0] < INT32_MIN || values[0] > INT32_MAX)
        return 0;
    values[1] = frame[0];
    values[2] = frame[1];
    floor_pair(qty, hundred, &values[3], &values[4]);
    floor_pair(price, hundred, &values[5], &values[6]);
    if (PyByteArray_Resize(out, size + COPY_ROW_SIZE) < 0)
        return -1;
    at = (unsigned char *)PyByteArray_AS_STRING(out) + size;
    at = put_big_endian(at, 7, 2);
    at = put_big_endian(at, 4, 4);
    at = put_big_endian(at, (unsigned long long)values[0] & 0xffffffffULL,
                        4);
    for (index = 1; index < 7; index++) {
        at = put_big_endian(at, 8, 4);
        at = put_big_endian(at, (unsigned long long)values[index], 8);
    }
    return 1;
}

/*
 * One point: 1 and its row appended, 0 when the caller must take it, -1
 * on error.
 */
static int
encode_point(PyObject *out, PyObject *point, PyObject *scope_id,
             PyObject *type_, PyObject *begin, PyObject *end,
             const long long *frame, PyObject *known,
             PyObject *mapping_types, PyObject *decimal_type,
             long long bound, long long hundred)
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
    /* NOTE: held, not borrowed: comparing keys may run Python code. */
    series = Py_XNewRef(PyDict_GetItemWithError(known, key));
    Py_DECREF(key);
    if (series == NULL)
        return PyErr_Occurred() ? -1 : 0;
    taken = fast_units(PyTuple_GET_ITEM(point, 1), decimal_type, bound,
                       &qty);
    if (taken == 1)
        taken = fast_units(PyTuple_GET_ITEM(point, 2), decimal_type, bound,
                           &price);
    if (taken <= 0) {
        Py_DECREF(series);
        return taken;
    }
    if (frame != NULL) {
        taken = append_copy_row(out, series, frame, qty, price, hundred);
        Py_DECREF(series);
        return taken;
    }
    row = PyTuple_New(7);
    if (row == NULL) {
        Py_DECREF(series);
        return -1;
    }
    PyTuple_SET_ITEM(row, 0, series);
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
    long long bound, hundred, frame[2];
    const long long *copying = NULL;
    int overflow;

    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "encode_known() takes 10 arguments");
        return NULL;
    }
    out = args[0];
    run = args[1];
    known = args[6];
    config = args[8];
    if (!(PyList_Check(out) || PyByteArray_Check(out)) ||
            !PyList_Check(run) || !PyDict_Check(known) ||
            !PyTuple_Check(config) || PyTuple_GET_SIZE(config) != 3) {
        PyErr_SetString(PyExc_TypeError, "encode_known(): bad arguments");
        return NULL;
    }
    if (PyByteArray_Check(out)) {
        /* The frame's bounds, read once: each row of a run repeats them. */
        frame[0] = PyLong_AsLongLong(args[4]);
        if (frame[0] == -1 && PyErr_Occurred())
            return NULL;
        frame[1] = PyLong_AsLongLong(args[5]);
        if (frame[1] == -1 && PyErr_Occurred())
            return NULL;
        copying = frame;
    }
    decimal_type = PyTuple_GET_ITEM(config, 0);
    /* A bound past 64 bits bounds nothing here: the units taken fit. */
    bound = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(config, 1),
                                         &overflow);
    if (bound == -1 && PyErr_Occurred())
        return NULL;
    if (overflow > 0)
        bound = LLONG_MAX;
    hundred = PyLong_AsLongLong(PyTuple_GET_ITEM(config, 2));
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
                            copying, known, args[7], decimal_type, bound,
                            hundred);
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

/*
 * The Decimal worth units of 10**-12, as money.from_units() makes it: an
 * integer Decimal when the units are whole, else the exact quotient (no
 * trailing zero), made from its text.
 */
static PyObject *
decimal_of_long(long long units, PyObject *decimal_type)
{
    const unsigned long long scale = 1000000000000ULL;
    unsigned long long magnitude, whole, fraction;
    char text[48], *at;
    int digits;
    PyObject *string, *value;

    magnitude = units < 0 ? 0ULL - (unsigned long long)units
                          : (unsigned long long)units;
    whole = magnitude / scale;
    fraction = magnitude % scale;
    /* Written backwards from the end of the buffer. */
    at = text + sizeof(text) - 1;
    *at = '\0';
    if (fraction) {
        digits = 12;
        while (fraction % 10 == 0) {
            fraction /= 10;
            digits--;
        }
        while (digits-- > 0) {
            *--at = (char)('0' + fraction % 10);
            fraction /= 10;
        }
        *--at = '.';
    }
    do {
        *--at = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    if (units < 0)
        *--at = '-';
    string = PyUnicode_FromStringAndSize(at, text + sizeof(text) - 1 - at);
    if (string == NULL)
        return NULL;
    value = PyObject_CallOneArg(decimal_type, string);
    Py_DECREF(string);
    return value;
}

/*
 * The Decimal a stored pair is worth, as fastpath.decimal_of_pair() makes
 * it: hundreds * 10**14 + rest units of 10**-12. Pairs past 64 bits of
 * units go to slow(hundreds, rest).
 */
static PyObject *
decimal_of_pair(PyObject *hundreds, PyObject *rest, PyObject *decimal_type,
                PyObject *slow)
{
    /* 92232 * 10**14 + 10**14 stays below 2**63. */
    const long long limit = 92232, hundred = 100000000000000LL;
    long long high, low;
    int overflow;

    high = PyLong_AsLongLongAndOverflow(hundreds, &overflow);
    if (high == -1 && PyErr_Occurred())
        return NULL;
    if (overflow || high > limit || high < -limit)
        return PyObject_CallFunctionObjArgs(slow, hundreds, rest, NULL);
    low = PyLong_AsLongLongAndOverflow(rest, &overflow);
    if (low == -1 && PyErr_Occurred())
        return NULL;
    if (overflow || low < 0 || low >= hundred)
        return PyObject_CallFunctionObjArgs(slow, hundreds, rest, NULL);
    return decimal_of_long(high * hundred + low, decimal_type);
}

/*
 * decimal_of_units(decimal_type, slow, units): the Decimal worth units of
 * 10**-12 (an int); units past 64 bits go to slow(units).
 */
static PyObject *
decimal_of_units(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long long units;
    int overflow;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "decimal_of_units() takes 3 arguments");
        return NULL;
    }
    if (!PyLong_Check(args[2]))
        return PyObject_CallOneArg(args[1], args[2]);
    units = PyLong_AsLongLongAndOverflow(args[2], &overflow);
    if (units == -1 && PyErr_Occurred())
        return NULL;
    if (overflow)
        return PyObject_CallOneArg(args[1], args[2]);
    return decimal_of_long(units, args[0]);
}

/* times[micros], made by from_micros(micros) once (new reference). */
static PyObject *
time_of(PyObject *micros, PyObject *times, PyObject *from_micros)
{
    PyObject *value = PyDict_GetItemWithError(times, micros);

    if (value != NULL)
        return Py_NewRef(value);
    if (PyErr_Occurred())
        return NULL;
    value = PyObject_CallOneArg(from_micros, micros);
    if (value == NULL)
        return NULL;
    if (PyDict_SetItem(times, micros, value) < 0) {
        Py_DECREF(value);
        return NULL;
    }
    return value;
}

/*
 * Add a point to the last run of runs, or start a run (start, stop, type,
 * [point]) when it differs in one of those. Takes no reference.
 */
static int
add_to_runs(PyObject *runs, PyObject *start, PyObject *stop, PyObject *type,
            PyObject *point)
{
    Py_ssize_t size = PyList_GET_SIZE(runs);
    PyObject *list, *run;
    int result;

    if (size > 0) {
        PyObject *last = PyList_GET_ITEM(runs, size - 1);
        int same = 0;

        /* NOTE: bounds come from one times dict: equal ones are one
         * object; types compare by value. */
        if (PyTuple_GET_ITEM(last, 0) == start &&
                PyTuple_GET_ITEM(last, 1) == stop) {
            same = PyObject_RichCompareBool(PyTuple_GET_ITEM(last, 2), type,
                                            Py_EQ);
            if (same < 0)
                return -1;
        }
        if (same)
            return PyList_Append(PyTuple_GET_ITEM(last, 3), point);
    }
    list = PyList_New(1);
    if (list == NULL)
        return -1;
    PyList_SET_ITEM(list, 0, Py_NewRef(point));
    run = PyTuple_Pack(4, start, stop, type, list);
    Py_DECREF(list);
    if (run == NULL)
        return -1;
    result = PyList_Append(runs, run);
    Py_DECREF(run);
    return result;
}

static PyObject *
rebuild(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *rows, *info, *times, *from_micros, *decimal_type, *slow;
    PyTypeObject *point_type;
    PyObject *points;
    Py_ssize_t index, size;
    int runs = 0, untrack;

    if (nargs != 7 && nargs != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "rebuild() takes 7 or 8 arguments");
        return NULL;
    }
    if (nargs == 8) {
        runs = PyObject_IsTrue(args[7]);
        if (runs < 0)
            return NULL;
    }
    rows = args[0];
    info = args[1];
    times = args[2];
    from_micros = args[3];
    point_type = (PyTypeObject *)args[4];
    decimal_type = args[5];
    slow = args[6];
    if (!PyList_Check(rows) || !PyDict_Check(info) || !PyDict_Check(times) ||
            !PyType_Check(args[4]) ||
            !PyType_IsSubtype(point_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "rebuild(): bad arguments");
        return NULL;
    }
    /*
     * NOTE: a point holds strings, Decimals and the series' frozen
     * attributes, none of which can reach back to it: it is never part
     * of a cycle, and the collector need not walk it (the read pauses
     * the collector, whose first collection afterwards walked every
     * point: 1 ms of a read of 10,200, measured). Not so for a subclass
     * with a __dict__.
     */
    untrack = point_type->tp_dictoffset == 0;
    size = PyList_GET_SIZE(rows);
    /* Rows of another kind (SQLAlchemy's, streamed): the caller's. */
    if (size > 0 && !PyTuple_CheckExact(PyList_GET_ITEM(rows, 0)))
        Py_RETURN_NONE;
    points = PyList_New(0);
    if (points == NULL)
        return NULL;
    for (index = 0; index < size; index++) {
        /* NOTE: every reference held: from_micros() and slow() are
         * Python code, which could change what is only borrowed. */
        PyObject *row = NULL, *series = NULL, *start = NULL, *stop = NULL;
        PyObject *qty = NULL, *price = NULL, *point = NULL, *item = NULL;
        Py_ssize_t at;
        int failed = 1;

        if (index >= PyList_GET_SIZE(rows)) {
            PyErr_SetString(PyExc_RuntimeError,
                            "rebuild(): the rows changed size");
            goto done;
        }
        row = Py_NewRef(PyList_GET_ITEM(rows, index));
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 7) {
            PyErr_SetString(PyExc_TypeError,
                            "rebuild(): a row is not a 7-tuple");
            goto done;
        }
        series = Py_XNewRef(PyDict_GetItemWithError(
            info, PyTuple_GET_ITEM(row, 0)));
        if (series == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, PyTuple_GET_ITEM(row, 0));
            goto done;
        }
        if (!PyTuple_Check(series) || PyTuple_GET_SIZE(series) != 5) {
            PyErr_SetString(PyExc_TypeError,
                            "rebuild(): a series is not a 5-tuple");
            goto done;
        }
        start = time_of(PyTuple_GET_ITEM(row, 1), times, from_micros);
        if (start == NULL)
            goto done;
        stop = time_of(PyTuple_GET_ITEM(row, 2), times, from_micros);
        if (stop == NULL)
            goto done;
        qty = decimal_of_pair(PyTuple_GET_ITEM(row, 3),
                              PyTuple_GET_ITEM(row, 4), decimal_type, slow);
        if (qty == NULL)
            goto done;
        price = decimal_of_pair(PyTuple_GET_ITEM(row, 5),
                                PyTuple_GET_ITEM(row, 6), decimal_type, slow);
        if (price == NULL)
            goto done;
        /* As tuple.__new__(point_type, ...) makes it. */
        point = point_type->tp_alloc(point_type, 6);
        if (point == NULL)
            goto done;
        PyTuple_SET_ITEM(point, 0, Py_NewRef(PyTuple_GET_ITEM(series, 1)));
        PyTuple_SET_ITEM(point, 1, qty);
        PyTuple_SET_ITEM(point, 2, price);
        qty = price = NULL;
        for (at = 2; at < 5; at++)
            PyTuple_SET_ITEM(point, at + 1,
                             Py_NewRef(PyTuple_GET_ITEM(series, at)));
        if (untrack && PyObject_GC_IsTracked(point))
            PyObject_GC_UnTrack(point);
        if (runs) {
            if (add_to_runs(points, start, stop, PyTuple_GET_ITEM(series, 0),
                            point) == 0)
                failed = 0;
            goto done;
        }
        item = PyTuple_Pack(4, start, stop, PyTuple_GET_ITEM(series, 0),
                            point);
        if (item != NULL && PyList_Append(points, item) == 0)
            failed = 0;
done:
        Py_XDECREF(row);
        Py_XDECREF(series);
        Py_XDECREF(start);
        Py_XDECREF(stop);
        Py_XDECREF(qty);
        Py_XDECREF(price);
        Py_XDECREF(point);
        Py_XDECREF(item);
        if (failed) {
            Py_DECREF(points);
            return NULL;
        }
    }
    return points;
}

/* A point's place in key order: its series, then its place in the push. */
typedef struct {
    long long series;
    Py_ssize_t index;
} place;

static int
compare_places(const void *left, const void *right)
{
    const place *a = left, *b = right;

    if (a->series != b->series)
        return a->series < b->series ? -1 : 1;
    return a->index < b->index ? -1 : (a->index > b->index);
}

/*
 * statement_rows(points, first, per_statement) -> (chunks, rest), or None
 * for points it does not take (not a list of 7-tuples with int series).
 * See fastpath.python_statement_rows().
 */
static PyObject *
statement_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *points, *chunks = NULL, *rest = NULL, *result = NULL;
    PyObject *chunk = NULL;
    place *places = NULL;
    long long first;
    Py_ssize_t size, per, whole, index, at = 0;
    int overflow;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "statement_rows() takes 3 arguments");
        return NULL;
    }
    points = args[0];
    if (!PyList_CheckExact(points) || !PyLong_Check(args[1]) ||
            !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "statement_rows(): bad arguments");
        return NULL;
    }
    first = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (first == -1 && PyErr_Occurred())
        return NULL;
    per = PyLong_AsSsize_t(args[2]);
    if (per == -1 && PyErr_Occurred())
        return NULL;
    size = PyList_GET_SIZE(points);
    if (overflow || per < 1 || first > LLONG_MAX - size)
        Py_RETURN_NONE;
    places = PyMem_New(place, size > 0 ? size : 1);
    if (places == NULL)
        return PyErr_NoMemory();
    /* Nothing below calls Python code: the list and its tuples stay. */
    for (index = 0; index < size; index++) {
        PyObject *point = PyList_GET_ITEM(points, index);
        PyObject *series;

        if (!PyTuple_CheckExact(point) || PyTuple_GET_SIZE(point) != 7)
            goto fallback;
        series = PyTuple_GET_ITEM(point, 0);
        if (!PyLong_CheckExact(series))
            goto fallback;
        places[index].series = PyLong_AsLongLongAndOverflow(series,
                                                            &overflow);
        if (places[index].series == -1 && PyErr_Occurred())
            goto done;
        if (overflow)
            goto fallback;
        places[index].index = index;
    }
    qsort(places, (size_t)size, sizeof(place), compare_places);
    whole = size / per * per;
    chunks = PyList_New(0);
    rest = PyList_New(0);
    if (chunks == NULL || rest == NULL)
        goto done;
    for (index = 0; index < size; index++) {
        PyObject *point = PyList_GET_ITEM(points, places[index].index);
        PyObject *id = PyLong_FromLongLong(first + places[index].index);
        Py_ssize_t member;

        if (id == NULL)
            goto done;
        if (index < whole) {
            if (chunk == NULL) {
                chunk = PyTuple_New(per * 8);
                if (chunk == NULL) {
                    Py_DECREF(id);
                    goto done;
                }
                at = 0;
            }
            PyTuple_SET_ITEM(chunk, at++, id);
            for (member = 0; member < 7; member++) {
                PyObject *item = PyTuple_GET_ITEM(point, member);
                Py_INCREF(item);
                PyTuple_SET_ITEM(chunk, at++, item);
            }
            if (at == per * 8) {
                if (PyList_Append(chunks, chunk) < 0)
                    goto done;
                Py_CLEAR(chunk);
            }
        } else {
            PyObject *row = PyTuple_New(8);
            if (row == NULL) {
                Py_DECREF(id);
                goto done;
            }
            PyTuple_SET_ITEM(row, 0, id);
            for (member = 0; member < 7; member++) {
                PyObject *item = PyTuple_GET_ITEM(point, member);
                Py_INCREF(item);
                PyTuple_SET_ITEM(row, member + 1, item);
            }
            if (PyList_Append(rest, row) < 0) {
                Py_DECREF(row);
                goto done;
            }
            Py_DECREF(row);
        }
    }
    result = PyTuple_Pack(2, chunks, rest);
    goto done;
fallback:
    result = Py_None;
    Py_INCREF(result);
done:
    Py_XDECREF(chunk);
    Py_XDECREF(chunks);
    Py_XDECREF(rest);
    PyMem_Free(places);
    return result;
}

#ifdef __SIZEOF_INT128__
typedef __int128 wide;

/*
 * The weighted sum of four int limbs, exact in 128 bits: 1 when done, 0
 * when a limb is not an int of 64 bits or the sum overflows (the caller
 * takes the row through Python), -1 on error.
 */
static int
weighted_sum(PyObject *const *limbs, const wide *weights, wide *out)
{
    wide sum = 0, product;
    long long value;
    int overflow, i;

    for (i = 0; i < 4; i++) {
        if (!PyLong_CheckExact(limbs[i]))
            return 0;
        value = PyLong_AsLongLongAndOverflow(limbs[i], &overflow);
        if (value == -1 && PyErr_Occurred())
            return -1;
        if (overflow || __builtin_mul_overflow((wide)value, weights[i],
                                               &product)
            || __builtin_add_overflow(sum, product, &sum))
            return 0;
    }
    *out = sum;
    return 1;
}

/* The int of a 128-bit value (new reference). */
static PyObject *
long_of_wide(wide value)
{
    PyObject *high, *low, *shifted, *sixty_four, *result;

    if (value >= LLONG_MIN && value <= LLONG_MAX)
        return PyLong_FromLongLong((long long)value);
    /* high * 2**64 + low, the shift an arithmetic (floor) one. */
    high = PyLong_FromLongLong((long long)(value >> 64));
    low = PyLong_FromUnsignedLongLong((unsigned long long)value);
    sixty_four = PyLong_FromLong(64);
    shifted = result = NULL;
    if (high != NULL && low != NULL && sixty_four != NULL)
        shifted = PyNumber_Lshift(high, sixty_four);
    if (shifted != NULL)
        result = PyNumber_Add(shifted, low);
    Py_XDECREF(high);
    Py_XDECREF(low);
    Py_XDECREF(sixty_four);
    Py_XDECREF(shifted);
    return result;
}

/* Whether a label's kind is str's: None, '' or 's'. */
static int
is_str_kind(PyObject *kind)
{
    if (kind == Py_None)
        return 1;
    if (!PyUnicode_CheckExact(kind))
        return 0;
    return PyUnicode_GET_LENGTH(kind) == 0
           || PyUnicode_CompareWithASCIIString(kind, "s") == 0;
}

/*
 * fastpath.label_group(row, weights, decode) for one row: ((value,),
 * count, qty, price), or None for a row of no point (new reference).
 */
static PyObject *
label_group_of(PyObject *row, const wide *weights, PyObject *decode,
               PyObject *slow, PyObject *weights_object)
{
    PyObject *const *items;
    PyObject *key, *keys, *qty, *price, *group;
    wide qty_units, price_units;
    long long count;
    int overflow, done;

    if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 11
        || !PyLong_CheckExact(PyTuple_GET_ITEM(row, 2)))
        return PyObject_CallFunctionObjArgs(slow, row, weights_object,
                                            decode, NULL);
    items = &PyTuple_GET_ITEM(row, 0);
    count = PyLong_AsLongLongAndOverflow(items[2], &overflow);
    if (count == -1 && PyErr_Occurred())
        return NULL;
    if (!overflow && count == 0)
        Py_RETURN_NONE;
    done = weighted_sum(items + 3, weights, &qty_units);
    if (done == 1)
        done = weighted_sum(items + 7, weights, &price_units);
    if (done < 0)
        return NULL;
    if (done == 0)
        return PyObject_CallFunctionObjArgs(slow, row, weights_object,
                                            decode, NULL);
    if (is_str_kind(items[1]))
        key = Py_NewRef(items[0]);
    else
        key = PyObject_CallFunctionObjArgs(decode, items[1], items[0], NULL);
    if (key == NULL)
        return NULL;
    keys = PyTuple_Pack(1, key);
    Py_DECREF(key);
    qty = long_of_wide(qty_units);
    price = long_of_wide(price_units);
    group = NULL;
    if (keys != NULL && qty != NULL && price != NULL)
        group = PyTuple_Pack(4, keys, items[2], qty, price);
    Py_XDECREF(keys);
    Py_XDECREF(qty);
    Py_XDECREF(price);
    return group;
}
#endif

/*
 * label_groups(rows, halves, decode, slow, weights): see
 * fastpath.python_label_groups(); halves holds each weight as (w >> 62,
 * w & (2**62 - 1)). A row that is not an 11-tuple of ints whose sums fit
 * 128 bits goes to slow(row, weights, decode). None for rows that are
 * not a list, or without 128-bit integers.
 */
static PyObject *
label_groups(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
#ifdef __SIZEOF_INT128__
    PyObject *rows, *halves, *groups, *row, *group;
    wide weights[4];
    long long high, low;
    Py_ssize_t index;
    int i;

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "label_groups() takes 5 arguments");
        return NULL;
    }
    rows = args[0];
    halves = args[1];
    if (!PyList_CheckExact(rows))
        Py_RETURN_NONE;
    if (!PyTuple_CheckExact(halves) || PyTuple_GET_SIZE(halves) != 8) {
        PyErr_SetString(PyExc_TypeError, "label_groups(): 8 halves expected");
        return NULL;
    }
    for (i = 0; i < 4; i++) {
        high = PyLong_AsLongLong(PyTuple_GET_ITEM(halves, 2 * i));
        if (high == -1 && PyErr_Occurred())
            return NULL;
        low = PyLong_AsLongLong(PyTuple_GET_ITEM(halves, 2 * i + 1));
        if (low == -1 && PyErr_Occurred())
            return NULL;
        weights[i] = (wide)high * ((wide)1 << 62) + low;
    }
    groups = PyList_New(0);
    if (groups == NULL)
        return NULL;
    for (index = 0; index < PyList_GET_SIZE(rows); index++) {
        /* NOTE: held across the calls into Python (decode, slow). */
        row = Py_NewRef(PyList_GET_ITEM(rows, index));
        group = label_group_of(row, weights, args[2], args[3], args[4]);
        Py_DECREF(row);
        if (group == NULL) {
            Py_DECREF(groups);
            return NULL;
        }
        if (group != Py_None && PyList_Append(groups, group) < 0) {
            Py_DECREF(group);
            Py_DECREF(groups);
            return NULL;
        }
        Py_DECREF(group);
    }
    return groups;
#else
    Py_RETURN_NONE;
#endif
}

static PyMethodDef methods[] = {
    {"encode_known", (PyCFunction)(void (*)(void))encode_known,
     METH_FASTCALL,
     "encode_known(out, run, scope_id, type_, begin, end, known, "
     "mapping_types, config, start) -> index\n\n"
     "See cloudkitty.storage.v2.sqlalchemy.fastpath.python_encode_known()."},
    {"decimal_of_units", (PyCFunction)(void (*)(void))decimal_of_units,
     METH_FASTCALL,
     "decimal_of_units(decimal_type, slow, units) -> Decimal\n\n"
     "See cloudkitty.storage.v2.sqlalchemy.fastpath.decimal_of_units."},
    {"statement_rows", (PyCFunction)(void (*)(void))statement_rows,
     METH_FASTCALL,
     "statement_rows(points, first, per_statement) -> (chunks, rest), or "
     "None\n\n"
     "See cloudkitty.storage.v2.sqlalchemy.fastpath.python_statement_rows()."},
    {"label_groups", (PyCFunction)(void (*)(void))label_groups,
     METH_FASTCALL,
     "label_groups(rows, halves, decode, slow, weights) -> groups, or "
     "None\n\n"
     "See cloudkitty.storage.v2.sqlalchemy.fastpath.python_label_groups()."},
    {"rebuild", (PyCFunction)(void (*)(void))rebuild, METH_FASTCALL,
     "rebuild(rows, info, times, from_micros, point_type, decimal_type, "
     "slow[, runs]) -> points (runs of them with runs true), or None for "
     "rows that are not tuples\n\n"
     "See cloudkitty.storage.v2.sqlalchemy.fastpath.python_rebuild() and "
     "python_rebuild_runs()."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups",
    "Compiled forms of cloudkitty.storage.v2.sqlalchemy.fastpath's functions.", -1,
    methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
