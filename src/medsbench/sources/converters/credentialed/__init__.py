"""Converters for sources we cannot redistribute (credentialed or hosted elsewhere).

Each reads the official file layout of its release, so a user who has the data points
``medsbench data convert NAME --raw DIR`` at it. They are tested on small synthetic
look-alike files with the real column names (tests/test_sources_credentialed.py).
"""

from importlib import import_module
from pkgutil import iter_modules

for _mod in iter_modules(__path__):
    import_module(f"{__name__}.{_mod.name}")
