"""Make the service fixtures available when tests/conftest.py does not (yet) provide them.

tests/conftest.py imports them for the whole suite; importing them here too
would give this directory its own session instances (a second weed server).
"""

import pathlib

if not (pathlib.Path(__file__).resolve().parent.parent / "conftest.py").exists():
    from tests.fixtures.services import *  # noqa: F401,F403
