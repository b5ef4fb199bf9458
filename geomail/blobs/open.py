"""Open the configured blob store: S3 with --oss-endpoint, else a directory in --data-dir.

The only place that chooses the blob backend. Both keep objects as
``{bucket}/{key}`` (the local one under ``blobs/``), so the bucket and key
recorded in the database mean the same on either.
"""

import os

from geomail.blobs.timed import TimedBlobStore
from geomail.config import backend

BLOBS_DIR = "blobs"


def blobs_root(config):
    """The embedded store's blob directory (one subdirectory per bucket)."""
    return os.path.join(config.data_dir, BLOBS_DIR)


def open_blob_store(config, bucket=None):
    """The BlobStore of ``bucket`` (default --oss-bucket) for this process."""
    extra = {}
    if hasattr(config, "oss_multipart_threshold"):
        extra = dict(multipart_threshold=config.oss_multipart_threshold,
                     part_size=config.oss_part_size)
    bucket = bucket or config.oss_bucket
    if backend(config) == "mysql":
        from geomail.blobs.s3 import BlobStore
        store = BlobStore(endpoint=config.oss_endpoint or None, bucket=bucket,
                          access_key=config.oss_access_key or None,
                          secret_key=config.oss_secret_key or None, region=config.oss_region,
                          **extra)
    else:
        from geomail.blobs.localdir import LocalBlobStore
        store = LocalBlobStore(blobs_root(config), bucket, **extra)
    return TimedBlobStore(store)
