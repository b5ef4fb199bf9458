"""Fixtures for the whole suite: real MariaDB, real SeaweedFS, real geomail."""

from tests.fixtures.services import *  # noqa: F401,F403  mysql_url, s3_endpoint, s3_bucket
from tests.fixtures.storage import test_storage  # noqa: F401
from tests.fixtures.server import geomail_server, start_geomail  # noqa: F401
from tests.fixtures.tls import tls_pair  # noqa: F401
from tests.fixtures.maildb import address, maildb  # noqa: F401
