"""Blob storage: attachment bodies in an S3-compatible service (the only code that talks to S3).

Import ``geomail.blobs.s3`` where it is needed: this package itself imports
nothing, so that the master process never loads boto3 by accident. A
local-directory implementation with the same key layout (docs/DESIGN.md
"Two backends") is meant to be a second class with BlobStore's methods.
"""
