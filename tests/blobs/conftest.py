"""Make the service fixtures available when tests/conftest.py does not (yet) provide them,
and the two-backend blob store fixtures (tests/fixtures/blobstores.py) for this directory.

tests/conftest.py imports the services for the whole suite; importing them here too
would give this directory its own session instances (a second weed server).
"""

import pathlib

from tests.fixtures.blobstores import blob_backend, blobs, make_blob_store  # noqa: F401

if not (pathlib.Path(__file__).resolve().parent.parent / "conftest.py").exists():
    from tests.fixtures.services import *  # noqa: F401,F403
