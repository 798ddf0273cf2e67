/* The venues' trade fast paths, the loops in C (dataflows/venues/typed.py, checked.py,
 * dataflows/parse/trade_columns.py). In Python each was a comprehension per field, a class
 * check per value, a dict lookup per trade or ~15 numpy calls per batch: together half of
 * a trade's parse beside msgspec's decode (bench/normalize_stages.py, issue 16). Each
 * function is one pass over a batch and gives exactly what the per-frame code gives
 * (tests/ingest/test_venues_columns_exact.py):
 *
 *   columns(items, fields) -> (ok, column, ...)     decoded structs as checked columns
 *   flatten(items, name) -> (values, counts)         the lists of a push, one after another
 *   factorize(values) -> (codes, distinct)           each symbol's place among the distinct
 *   split(messages) -> (received, frames, typed)     a batch's (received_ts, frame) pairs
 *   base_amounts(inverse, price, size, contract_size) -> amounts    contract sizes in BASE
 *   round_each(values, digits) -> values             Python's round, exactly
 *
 * Numeric columns come back as bytearrays of 8-byte values (numpy.frombuffer reads them
 * without a copy), so no numpy headers are needed to build this.
 *
 * columns:
 * `items`: a list of struct instances (they may be of several struct types, e.g. a tagged
 * union's members: each type's slot offsets are looked up once). `fields`: a tuple of
 * (name, kind) or (name, "m", table, cls) tuples, one column each:
 *   "o"  the values as they are (list)
 *   "f"  float64 (bytearray of doubles); a value that is not a float refuses its row
 *   "i"  int64 (bytearray); a value that is not an int within int64 refuses its row
 *   "t"  str of each int (list), ids stored as text; not an int64: refused
 *   "s"  a str of 1-128 characters (list), ids sent as text; anything else: refused
 *   "d"  digit text (1-18 ASCII digits) as int64 (bytearray)
 *   "z"  'YYYY-MM-DDTHH:MM:SS.ffffffZ' (UTC) as int64 us since 1970 (bytearray)
 *   "m"  table[value] (list); a value whose class is not exactly `cls`, or not in table,
 *        refuses its row (True == 1 as a dict key: the class is checked first)
 * "d" and "z" write -1 where the text has another shape: the caller reads those few with
 * the per-value reader, whose rules are wider (Unicode digits, other ISO forms).
 * `ok`: a bytearray of 1 (row taken) or 0 (refused: the frame goes through `parse`).
 * Class checks are exact, as the per-frame `parse` is (`value.__class__ is int`): bool is
 * not an int here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>

static PyObject *_format_6g; /* ".6g" */

typedef struct {
    PyObject *name;
    char kind;
    PyObject *table; /* "m" */
    PyObject *cls;   /* "m" */
    Py_ssize_t offset; /* of the current struct type */
    PyObject *list;    /* "o", "t", "s", "m" */
    PyObject *bytes;   /* "f", "i", "d", "z": a bytearray of n 8-byte values */
} Field;

static int offsets_of(PyTypeObject *type, Field *fields, Py_ssize_t count) {
    for (Py_ssize_t f = 0; f < count; f++) {
        PyObject *descr = PyObject_GetAttr((PyObject *)type, fields[f].name);
        if (descr == NULL) return -1;
        /* a slot of the instance's own layout: the member of `type` or a base of it */
        int slot = Py_IS_TYPE(descr, &PyMemberDescr_Type)
                   && PyType_IsSubtype(type, PyDescr_TYPE(descr))
                   && (((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX
                       || ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT);
        if (slot) fields[f].offset = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
        if (!slot) {
            PyErr_Format(PyExc_TypeError, "%s.%U is not a struct field", type->tp_name,
                         fields[f].name);
            return -1;
        }
    }
    return 0;
}

/* 1-18 ASCII digits as their number; -1 for any other text */
static int64_t digits_of(PyObject *value) {
    if (!PyUnicode_CheckExact(value) || !PyUnicode_IS_ASCII(value)) return -1;
    Py_ssize_t len = PyUnicode_GET_LENGTH(value);
    const char *s = (const char *)PyUnicode_DATA(value);
    if (len < 1 || len > 18) return -1;
    int64_t n = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        n = n * 10 + (s[i] - '0');
    }
    return n;
}

static int64_t number(const char *s, int width) {
    int64_t n = 0;
    for (int i = 0; i < width; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        n = n * 10 + (s[i] - '0');
    }
    return n;
}

/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil) */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* 'YYYY-MM-DDTHH:MM:SS.ffffffZ' as us since 1970; -1 for any other text or a date off the
 * calendar (the caller's per-value reader decides those) */
static int64_t iso_z_of(PyObject *value) {
    static const int month_days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!PyUnicode_CheckExact(value) || !PyUnicode_IS_ASCII(value)
        || PyUnicode_GET_LENGTH(value) != 27) return -1;
    const char *s = (const char *)PyUnicode_DATA(value);
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':'
        || s[19] != '.' || s[26] != 'Z') return -1;
    int64_t year = number(s, 4), month = number(s + 5, 2), day = number(s + 8, 2);
    int64_t hour = number(s + 11, 2), minute = number(s + 14, 2), second = number(s + 17, 2);
    int64_t micros = number(s + 20, 6);
    if (year < 1 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0
        || minute > 59 || second < 0 || second > 59 || micros < 0) return -1;
    int leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    if (day > month_days[month] + (leap && month == 2)) return -1;
    return ((days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
            * 1000000 + micros);
}

static int parse_fields(PyObject *spec, Field *fields, Py_ssize_t count, Py_ssize_t n) {
    for (Py_ssize_t f = 0; f < count; f++) {
        PyObject *one = PyTuple_GET_ITEM(spec, f);
        const char *kind;
        if (!PyTuple_Check(one) || PyTuple_GET_SIZE(one) < 2
            || !PyUnicode_Check(PyTuple_GET_ITEM(one, 0))
            || (kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(one, 1))) == NULL
            || strlen(kind) != 1 || strchr("ofitsdzm", kind[0]) == NULL) {
            PyErr_Format(PyExc_ValueError, "field %zd: want (name, kind), kind one of ofitsdzm",
                         f);
            return -1;
        }
        fields[f].name = PyTuple_GET_ITEM(one, 0);
        fields[f].kind = kind[0];
        if (kind[0] == 'm') {
            if (PyTuple_GET_SIZE(one) != 4 || !PyDict_Check(PyTuple_GET_ITEM(one, 2))
                || !PyType_Check(PyTuple_GET_ITEM(one, 3))) {
                PyErr_Format(PyExc_ValueError, "field %zd: want (name, 'm', dict, class)", f);
                return -1;
            }
            fields[f].table = PyTuple_GET_ITEM(one, 2);
            fields[f].cls = PyTuple_GET_ITEM(one, 3);
        }
        if (strchr("otsm", kind[0]) != NULL) fields[f].list = PyList_New(n);
        else fields[f].bytes = PyByteArray_FromStringAndSize(NULL, n * 8);
        if (fields[f].list == NULL && fields[f].bytes == NULL) return -1;
    }
    return 0;
}

/* one value into its column; 0: taken, 1: refuses the row, -1: error */
static int put(Field *field, Py_ssize_t i, PyObject *value) {
    int overflow = 0;
    int64_t got;
    switch (field->kind) {
    case 'o':
        Py_INCREF(value);
        PyList_SET_ITEM(field->list, i, value);
        return 0;
    case 's':
        Py_INCREF(value);
        PyList_SET_ITEM(field->list, i, value);
        return !PyUnicode_CheckExact(value) || PyUnicode_GET_LENGTH(value) < 1
               || PyUnicode_GET_LENGTH(value) > 128;
    case 'f':
        ((double *)PyByteArray_AS_STRING(field->bytes))[i] =
            PyFloat_CheckExact(value) ? PyFloat_AS_DOUBLE(value) : 0.0;
        return !PyFloat_CheckExact(value);
    case 'i':
    case 't':
        got = PyLong_CheckExact(value) ? PyLong_AsLongLongAndOverflow(value, &overflow) : 0;
        if (!PyLong_CheckExact(value) || overflow) {
            if (field->kind == 'i') ((int64_t *)PyByteArray_AS_STRING(field->bytes))[i] = 0;
            else PyList_SET_ITEM(field->list, i, Py_NewRef(Py_None));
            return 1;
        }
        if (field->kind == 'i') {
            ((int64_t *)PyByteArray_AS_STRING(field->bytes))[i] = got;
            return 0;
        }
        if ((value = PyObject_Str(value)) == NULL) return -1;
        PyList_SET_ITEM(field->list, i, value);
        return 0;
    case 'd':
    case 'z':
        ((int64_t *)PyByteArray_AS_STRING(field->bytes))[i] =
            field->kind == 'd' ? digits_of(value) : iso_z_of(value);
        return 0;
    default: /* 'm' */
        got = Py_IS_TYPE(value, (PyTypeObject *)field->cls);
        value = got ? PyDict_GetItemWithError(field->table, value) : NULL;
        if (value == NULL && PyErr_Occurred()) return -1;
        PyList_SET_ITEM(field->list, i, Py_NewRef(value ? value : Py_None));
        return value == NULL;
    }
}

static PyObject *columns(PyObject *module, PyObject *args) {
    PyObject *items, *spec;
    if (!PyArg_ParseTuple(args, "O!O!:columns", &PyList_Type, &items, &PyTuple_Type, &spec))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(items), count = PyTuple_GET_SIZE(spec);
    Field *fields = PyMem_Calloc(count ? count : 1, sizeof(Field));
    PyObject *ok = PyByteArray_FromStringAndSize(NULL, n), *out = NULL;
    if (fields == NULL || ok == NULL || parse_fields(spec, fields, count, n) < 0) goto done;
    char *ok_rows = PyByteArray_AS_STRING(ok);
    PyTypeObject *type = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (Py_TYPE(item) != type) {
            type = Py_TYPE(item);
            if (offsets_of(type, fields, count) < 0) goto done;
        }
        ok_rows[i] = 1;
        for (Py_ssize_t f = 0; f < count; f++) {
            PyObject *value = *(PyObject **)((char *)item + fields[f].offset);
            if (value == NULL) {
                PyErr_Format(PyExc_AttributeError, "%s.%U is not set", type->tp_name,
                             fields[f].name);
                goto done;
            }
            int refused = put(&fields[f], i, value);
            if (refused < 0) goto done;
            if (refused) ok_rows[i] = 0;
        }
    }
    if ((out = PyTuple_New(count + 1)) == NULL) goto done;
    PyTuple_SET_ITEM(out, 0, Py_NewRef(ok));
    for (Py_ssize_t f = 0; f < count; f++)
        PyTuple_SET_ITEM(out, f + 1, Py_NewRef(fields[f].list ? fields[f].list : fields[f].bytes));
done:
    if (fields != NULL) {
        for (Py_ssize_t f = 0; f < count; f++) {
            Py_XDECREF(fields[f].list);
            Py_XDECREF(fields[f].bytes);
        }
        PyMem_Free(fields);
    }
    Py_XDECREF(ok);
    return out;
}

/* the list in a struct's field (borrowed), the offsets looked up when the type changes;
 * NULL and an error when the field holds no list */
static PyObject *list_in(PyObject *item, Field *field, PyTypeObject **type) {
    if (Py_TYPE(item) != *type) {
        *type = Py_TYPE(item);
        if (offsets_of(*type, field, 1) < 0) return NULL;
    }
    PyObject *inner = *(PyObject **)((char *)item + field->offset);
    if (inner == NULL || !PyList_CheckExact(inner)) {
        PyErr_Format(PyExc_TypeError, "%s.%U is not a list", (*type)->tp_name, field->name);
        return NULL;
    }
    return inner;
}

/* flatten(items, name) -> (values, counts): the lists in each struct's field `name`, one
 * after the other, and each list's length (a push of several trades per frame) */
static PyObject *flatten(PyObject *module, PyObject *args) {
    PyObject *items, *name, *values = NULL, *counts = NULL;
    if (!PyArg_ParseTuple(args, "O!U:flatten", &PyList_Type, &items, &name)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(items), total = 0, at = 0;
    Field field = {.name = name};
    PyTypeObject *type = NULL;
    if ((counts = PyList_New(n)) == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) { /* the lengths first: one allocation */
        PyObject *inner = list_in(PyList_GET_ITEM(items, i), &field, &type);
        if (inner == NULL) goto fail;
        PyObject *count = PyLong_FromSsize_t(PyList_GET_SIZE(inner));
        if (count == NULL) goto fail;
        PyList_SET_ITEM(counts, i, count);
        total += PyList_GET_SIZE(inner);
    }
    if ((values = PyList_New(total)) == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *inner = list_in(PyList_GET_ITEM(items, i), &field, &type);
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(inner); j++)
            PyList_SET_ITEM(values, at++, Py_NewRef(PyList_GET_ITEM(inner, j)));
    }
    return Py_BuildValue("(NN)", values, counts);
fail:
    Py_XDECREF(values);
    Py_XDECREF(counts);
    return NULL;
}

/* split(messages) -> (received, frames, typed): a batch's (received_ts, frame) pairs as
 * received_ts (int64 bytearray) and frames (list), and whether a typed decoder may take
 * the frames as they are: all text, or all ASCII bytes (a typed decoder skips the fields
 * it does not declare without checking their UTF-8) */
static PyObject *split(PyObject *module, PyObject *messages) {
    if (!PyList_Check(messages)) {
        PyErr_SetString(PyExc_TypeError, "split: want a list of (received_ts, frame)");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(messages);
    PyObject *received = PyByteArray_FromStringAndSize(NULL, n * 8), *frames = PyList_New(n);
    if (received == NULL || frames == NULL) goto fail;
    int64_t *at = (int64_t *)PyByteArray_AS_STRING(received);
    int text = 1, ascii_bytes = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(messages, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError, "split: message %zd is not (received_ts, frame)", i);
            goto fail;
        }
        at[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(pair, 0));
        if (at[i] == -1 && PyErr_Occurred()) goto fail;
        PyObject *frame = PyTuple_GET_ITEM(pair, 1);
        PyList_SET_ITEM(frames, i, Py_NewRef(frame));
        text = text && PyUnicode_CheckExact(frame);
        if (ascii_bytes) {
            ascii_bytes = PyBytes_CheckExact(frame);
            const unsigned char *b = ascii_bytes ? (const unsigned char *)PyBytes_AS_STRING(frame)
                                                 : NULL;
            for (Py_ssize_t j = 0; ascii_bytes && j < PyBytes_GET_SIZE(frame); j++)
                ascii_bytes = b[j] < 128;
        }
    }
    return Py_BuildValue("(NNO)", received, frames, n && (text || ascii_bytes) ? Py_True
                                                                              : Py_False);
fail:
    Py_XDECREF(received);
    Py_XDECREF(frames);
    return NULL;
}

/* factorize(values) -> (codes, distinct): each value's place (int64 bytearray) in the list
 * of distinct values, first seen first: per-symbol facts become per-trade columns by numpy
 * indexing, not a dict lookup per trade in Python */
static PyObject *factorize(PyObject *module, PyObject *values) {
    if (!PyList_Check(values)) {
        PyErr_SetString(PyExc_TypeError, "factorize: want a list");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(values);
    PyObject *codes = PyByteArray_FromStringAndSize(NULL, n * 8);
    PyObject *distinct = PyList_New(0), *places = PyDict_New();
    if (codes == NULL || distinct == NULL || places == NULL) goto fail;
    int64_t *code = (int64_t *)PyByteArray_AS_STRING(codes);
    PyObject *last = NULL; /* runs of one symbol are common: skip the dict for them */
    int64_t last_code = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = PyList_GET_ITEM(values, i);
        if (value == last) {
            code[i] = last_code;
            continue;
        }
        PyObject *place = PyDict_GetItemWithError(places, value);
        if (place == NULL) {
            if (PyErr_Occurred()) goto fail;
            place = PyLong_FromSsize_t(PyList_GET_SIZE(distinct));
            if (place == NULL || PyDict_SetItem(places, value, place) < 0
                || PyList_Append(distinct, value) < 0) {
                Py_XDECREF(place);
                goto fail;
            }
            Py_DECREF(place); /* the dict holds it */
        }
        last = value;
        code[i] = last_code = PyLong_AsLongLong(place);
    }
    Py_DECREF(places);
    return Py_BuildValue("(NN)", codes, distinct);
fail:
    Py_XDECREF(codes);
    Py_XDECREF(distinct);
    Py_XDECREF(places);
    return NULL;
}

/* Python's round(value, digits), exactly: p = value *
 * 10**digits (10**digits exact) lies within half a spacing of the exact product, so when
 * p < 2**52 lies farther than one spacing from a half, rint(p) is the exact product's
 * nearest integer N and N / 10**digits the same correctly rounded read as Python's. The
 * other values (near a half, huge, negative, not finite) go through Python's round. */
static int rounded(double value, int digits, double scale, double *out) {
    double p = value * scale;
    if (p >= 0.0 && p < 4503599627370496.0 /* 2**52 */
        && fabs(p - floor(p) - 0.5) > nextafter(p, INFINITY) - p) {
        *out = rint(p) / scale;
        return 0;
    }
    PyObject *number = PyFloat_FromDouble(value), *got = NULL;
    if (number != NULL) got = PyObject_CallMethod(number, "__round__", "i", digits);
    Py_XDECREF(number);
    if (got == NULL) return -1;
    *out = PyFloat_AsDouble(got);
    Py_DECREF(got);
    return 0;
}

/* float(f"{value:.6g}"): six significant digits, as instruments.Spec.base keeps an
 * inverse contract's amount under 1e-4 */
static int significant(double value, double *out) {
    PyObject *number = PyFloat_FromDouble(value), *text = NULL, *got = NULL;
    if (number != NULL) text = PyObject_Format(number, _format_6g);
    if (text != NULL) got = PyFloat_FromString(text);
    Py_XDECREF(number);
    Py_XDECREF(text);
    if (got == NULL) return -1;
    *out = PyFloat_AsDouble(got);
    Py_DECREF(got);
    return 0;
}

/* round_each(values, digits) -> float64 bytearray: Python's round(value, digits) of each
 * float64 of a buffer, by `rounded` (the exactness tests call it with rounding halves) */
static PyObject *round_each(PyObject *module, PyObject *args) {
    Py_buffer view = {0};
    int digits;
    if (!PyArg_ParseTuple(args, "y*i:round_each", &view, &digits)) return NULL;
    PyObject *out = NULL;
    if (digits < 0 || digits > 15 || view.len % 8) {
        PyErr_SetString(PyExc_ValueError, "round_each: want float64 values and 0-15 digits");
        goto done;
    }
    Py_ssize_t n = view.len / 8;
    if ((out = PyByteArray_FromStringAndSize(NULL, n * 8)) == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++)
        if (rounded(((const double *)view.buf)[i], digits, pow(10.0, digits),
                    &((double *)PyByteArray_AS_STRING(out))[i]) < 0) {
            Py_CLEAR(out);
            break;
        }
done:
    PyBuffer_Release(&view);
    return out;
}

/* base_amounts(inverse, price, size, contract_size) -> amounts: instruments.Spec.base per
 * trade (float64 bytearray) from contiguous buffers (bool, float64 x3, one value a trade):
 * a size as given where the contract size is unknown (0) or BASE (1, not inverse); an
 * inverse contract's size * contract_size / price rounded to 8 decimals (6 significant
 * digits under 1e-4); a linear one's size * contract_size rounded to 12 decimals */
static PyObject *base_amounts(PyObject *module, PyObject *args) {
    Py_buffer views[4] = {{0}};
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*y*:base_amounts", &views[0], &views[1], &views[2],
                          &views[3]))
        return NULL;
    Py_ssize_t n = views[0].len;
    if (views[1].len != n * 8 || views[2].len != n * 8 || views[3].len != n * 8) {
        PyErr_SetString(PyExc_ValueError, "base_amounts: want n bools and n float64 x3");
        goto done;
    }
    const char *inverse = views[0].buf;
    const double *price = views[1].buf, *size = views[2].buf, *contract = views[3].buf;
    if ((out = PyByteArray_FromStringAndSize(NULL, n * 8)) == NULL) goto done;
    double *amount = (double *)PyByteArray_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        double value = size[i] * contract[i];
        int ok = 0;
        if (contract[i] == 0.0 || (contract[i] == 1.0 && !inverse[i])) amount[i] = size[i];
        else if (!inverse[i]) ok = rounded(value, 12, 1e12, &amount[i]);
        else if (value / price[i] >= 1e-4) ok = rounded(value / price[i], 8, 1e8, &amount[i]);
        else ok = significant(value / price[i], &amount[i]);
        if (ok < 0) {
            Py_CLEAR(out);
            goto done;
        }
    }
done:
    for (int v = 0; v < 4; v++) PyBuffer_Release(&views[v]);
    return out;
}

static PyMethodDef methods[] = {
    {"columns", columns, METH_VARARGS,
     "columns(items, fields) -> (ok, column, ...): see dataflows/parse/fast_path.c"},
    {"flatten", flatten, METH_VARARGS, "flatten(items, name) -> (values, counts)"},
    {"factorize", factorize, METH_O, "factorize(values) -> (codes, distinct)"},
    {"split", split, METH_O, "split(messages) -> (received, frames, typed)"},
    {"round_each", round_each, METH_VARARGS, "round_each(values, digits) -> rounded values"},
    {"base_amounts", base_amounts, METH_VARARGS,
     "base_amounts(inverse, price, size, contract_size) -> amounts (float64 bytearray)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fast_path", "Columns of decoded structs, read in C.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__fast_path(void) {
    if (_format_6g == NULL && (_format_6g = PyUnicode_InternFromString(".6g")) == NULL)
        return NULL;
    return PyModule_Create(&module);
}
