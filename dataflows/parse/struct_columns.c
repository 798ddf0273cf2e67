/* Columns of decoded structs, read in C: the venues' fast paths (dataflows/venues/checked.py)
 * turn a batch of msgspec structs into trade columns. In Python that was a comprehension per
 * field, a class check per value and a numpy conversion per column: ~0.2-0.35 us a trade,
 * a third of the whole parse (bench/normalize_stages.py). Here it is one pass.
 *
 *   columns(items, fields) -> (ok, column, ...)
 *   flatten(items, name) -> (values, counts)      (defined below)
 *   factorize(values) -> (codes, distinct)          (defined below)
 *   split(messages) -> (received, frames, typed)    (defined below)
 *
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

typedef struct {
    PyObject *name;
    char kind;
    PyObject *table; /* "m" */
    PyObject *cls;   /* "m" */
    Py_ssize_t offset; /* of the current struct type */
    PyObject *list;    /* "o", "t", "m" */
    PyObject *bytes;   /* "f", "i", "d", "z": a bytearray of n 8-byte values */
} Field;

static int offsets_of(PyTypeObject *type, Field *fields, Py_ssize_t count) {
    for (Py_ssize_t f = 0; f < count; f++) {
        PyObject *descr = PyObject_GetAttr((PyObject *)type, fields[f].name);
        if (descr == NULL) return -1;
        int slot = Py_IS_TYPE(descr, &PyMemberDescr_Type)
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
        PyObject *item = PyList_GET_ITEM(items, i);
        if (Py_TYPE(item) != type) {
            type = Py_TYPE(item);
            if (offsets_of(type, &field, 1) < 0) goto fail;
        }
        PyObject *inner = *(PyObject **)((char *)item + field.offset);
        if (inner == NULL || !PyList_CheckExact(inner)) {
            PyErr_Format(PyExc_TypeError, "%s.%U is not a list", type->tp_name, name);
            goto fail;
        }
        PyObject *count = PyLong_FromSsize_t(PyList_GET_SIZE(inner));
        if (count == NULL) goto fail;
        PyList_SET_ITEM(counts, i, count);
        total += PyList_GET_SIZE(inner);
    }
    if ((values = PyList_New(total)) == NULL) goto fail;
    type = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (Py_TYPE(item) != type) {
            type = Py_TYPE(item);
            if (offsets_of(type, &field, 1) < 0) goto fail;
        }
        PyObject *inner = *(PyObject **)((char *)item + field.offset);
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

static PyMethodDef methods[] = {
    {"columns", columns, METH_VARARGS,
     "columns(items, fields) -> (ok, column, ...): see dataflows/parse/struct_columns.c"},
    {"flatten", flatten, METH_VARARGS, "flatten(items, name) -> (values, counts)"},
    {"factorize", factorize, METH_O, "factorize(values) -> (codes, distinct)"},
    {"split", split, METH_O, "split(messages) -> (received, frames, typed)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_struct_columns", "Columns of decoded structs, read in C.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__struct_columns(void) { return PyModule_Create(&module); }
