"""The one compiled piece (pyproject.toml holds everything else): the loops of the venues'
trade fast paths in C (dataflows/parse/fast_path.c). `pip install -e` builds it in place."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("dataflows.parse._fast_path",
                             ["dataflows/parse/fast_path.c"],
                             extra_compile_args=["-O2", "-Wall", "-Werror"])])
