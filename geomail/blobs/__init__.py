"""Blob storage: attachment bodies, in an S3-compatible service or a local directory.

Two stores with one public API (put, get, get_range, delete, list_keys,
list_objects, exists, open_uploads, abort_upload, remove, open_upload,
create_upload / upload_part / complete_upload, ensure_bucket) and one key
layout, ``{account}/{message}/{filename}``:

- ``s3``: ``BlobStore``, the production backend (the only module that uses boto3);
  ``ranged_get`` and ``sigv4`` are its own read path (FETCH);
- ``localdir``: ``LocalBlobStore``, the embedded default, ``{root}/{bucket}/{key}``;
- ``errors``: what both raise and list (BlobStoreError, BlobNotFound, InvalidKey,
  StoredObject, OpenUpload), importable without boto3;
- ``upload``: ``Upload``, one object streamed through either store;
- ``pipelined``: the SMTP path's upload, parts sent in the background under a ByteBudget;
- ``cache``: a worker's memory cache of rendered attachment segments;
- ``diskcache``: the host's disk cache of attachment objects, shared by its workers,
  filled through ``writethrough`` (a store wrapper) at upload and on a read miss.

This package itself imports nothing, so that the master process never loads
boto3 by accident.
"""
