"""The one compiled piece (pyproject.toml holds everything else): the C reader of decoded
structs into columns, the venues' fast paths (dataflows/parse/struct_columns.c)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("dataflows.parse._struct_columns",
                             ["dataflows/parse/struct_columns.c"],
                             extra_compile_args=["-O2", "-Wall", "-Werror"])])
