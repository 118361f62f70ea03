"""Stage-out: upload a self-contained STAC catalog directory to S3 (the ADES stage-out step).

``python -m glacier_velocity.deploy.s3upload CATALOG_DIR BUCKET PREFIX [ENDPOINT]`` checks that
every item and asset the catalog names is a file inside the directory, then uploads every file
to ``s3://BUCKET/PREFIX/<relative path>``, so that the catalog resolves in the bucket as it did
on disk, and writes ``cwl.output.json`` with the S3 URI of ``catalog.json``.

The uploads go through boto3's managed transfer (s3transfer): files are streamed from disk,
those above :data:`MULTIPART_THRESHOLD` in parts sent side by side, and failed requests are
retried by botocore. Credentials come from boto3's usual chain: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN`` (temporary credentials), else a profile, a
web identity token (Kubernetes service accounts) or the instance's role; the region from
``AWS_DEFAULT_REGION``. An empty variable counts as unset (the CWL tool sets every variable,
empty when an input is not given).
"""

from __future__ import annotations

import argparse
import json
import logging
import mimetypes
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from ..errors import InputError

log = logging.getLogger(__name__)

#: Attempts per request (botocore's "standard" retry mode) and the timeout of each, s.
ATTEMPTS = 3
TIMEOUT_S = 60
#: Files larger than this are uploaded in parts of this size, bytes (S3's smallest part is 5 MiB).
MULTIPART_THRESHOLD = 8 * 1024 * 1024
#: The credential and region variables boto3 reads, dropped from its view when empty.
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")


def catalog_files(root: str | os.PathLike[str]) -> list[Path]:
    """Every file of a catalog directory, after checking that the catalog is self-contained.

    Raises
    ------
    InputError
        No ``catalog.json`` at the top, or a child, item or asset href that is absolute, remote
        or does not resolve to a file inside ``root`` (the catalog would arrive incomplete).
    """
    root = Path(root).resolve()
    pending, seen = [root / "catalog.json"], set()
    if not pending[0].is_file():
        raise InputError(
            f"no catalog.json at the top of {str(root)!r}; stage-out takes the Workflow's catalog directory"
        )

    def inside(document: Path, href: str) -> Path:
        if urlparse(href).scheme not in ("", "file") or os.path.isabs(href):
            raise InputError(f"{href!r} in {document} is not a relative href; the catalog must be self-contained")
        target = (document.parent / href).resolve()
        if root not in target.parents or not target.is_file():
            raise InputError(f"{href!r} in {document} does not resolve to a file inside {str(root)!r}")
        return target

    while pending:
        document = pending.pop()
        if document in seen:
            continue
        seen.add(document)
        data = json.loads(document.read_text(encoding="utf-8"))
        pending += [
            inside(document, link["href"]) for link in data.get("links", []) if link.get("rel") in ("child", "item")
        ]
        for asset in data.get("assets", {}).values():
            inside(document, asset["href"])
    return sorted(p for p in root.rglob("*") if p.is_file())


def s3_client(endpoint: str = "", environ: Mapping[str, str] | None = None) -> Any:
    """A boto3 S3 client from the environment's credentials and region.

    Parameters
    ----------
    endpoint : str
        Endpoint URL of an S3-compatible store (MinIO, Ceph, a local test server), addressed
        path-style (``ENDPOINT/BUCKET/KEY``: such stores rarely have a DNS name per bucket);
        empty for AWS itself, addressed as AWS recommends.
    environ : mapping, optional
        Environment to take :data:`AWS_VARIABLES` from (default ``os.environ``); empty values
        count as unset, so boto3's chain goes on to a profile, a web identity or a role.
    """
    import boto3
    from botocore.config import Config

    environ = os.environ if environ is None else environ
    given = {name: environ.get(name) or None for name in AWS_VARIABLES}
    session = boto3.Session(
        aws_access_key_id=given["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=given["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=given["AWS_SESSION_TOKEN"],
        region_name=given["AWS_DEFAULT_REGION"] or "us-east-1",
    )
    config = Config(
        retries={"max_attempts": ATTEMPTS, "mode": "standard"},
        connect_timeout=TIMEOUT_S,
        read_timeout=TIMEOUT_S,
        s3={"addressing_style": "path" if endpoint else "auto"},
    )
    return session.client("s3", endpoint_url=endpoint or None, config=config)


def upload(
    root: str | os.PathLike[str],
    bucket: str,
    prefix: str,
    client: Any,
    *,
    multipart_threshold: int = MULTIPART_THRESHOLD,
) -> str:
    """Upload every file of a catalog directory under ``s3://bucket/prefix/``; return the catalog's S3 URI.

    Parameters
    ----------
    root : path-like
        Catalog directory (``catalog.json`` at its top).
    bucket, prefix : str
        Destination; ``catalog.json`` lands at ``<prefix>/catalog.json``.
    client : botocore S3 client
        From :func:`s3_client`.
    multipart_threshold : int
        Files above this size (bytes) go in parts of this size; at least 5 MiB.

    Raises
    ------
    InputError
        The catalog is not self-contained, there are no credentials, or an upload still fails
        after the retries (the message names the object and the store's answer).
    """
    from boto3.exceptions import S3UploadFailedError
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    root = Path(root).resolve()
    prefix = prefix.strip("/")
    files = catalog_files(root)
    transfer = TransferConfig(multipart_threshold=multipart_threshold, multipart_chunksize=multipart_threshold)
    for path in files:
        relative = path.relative_to(root).as_posix()
        key = str(PurePosixPath(prefix, relative)) if prefix else relative
        # An explicit type: S3 would serve every object as binary/octet-stream otherwise.
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        try:
            client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type}, Config=transfer)
        except NoCredentialsError as exc:
            raise InputError(
                "no S3 credentials; give aws_access_key_id and aws_secret_access_key "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), or run where boto3 finds a role"
            ) from exc
        except (S3UploadFailedError, ClientError, BotoCoreError) as exc:
            raise InputError(f"upload of {relative} to s3://{bucket}/{key} failed: {exc}") from exc
    log.info("stage-out: %d files to s3://%s/%s/", len(files), bucket, prefix)
    return f"s3://{bucket}/{prefix + '/' if prefix else ''}catalog.json"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the stage-out tool (deploy/ades/stage-out.cwl)."""
    parser = argparse.ArgumentParser(
        prog="python -m glacier_velocity.deploy.s3upload", description=__doc__.splitlines()[0]
    )
    parser.add_argument("catalog", help="catalog directory (catalog.json at its top)")
    parser.add_argument("bucket")
    parser.add_argument("prefix", help="key prefix, e.g. the job id")
    parser.add_argument("endpoint", nargs="?", default="", help="S3 endpoint URL; empty for AWS")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        uri = upload(args.catalog, args.bucket, args.prefix, s3_client(args.endpoint))
    except InputError as exc:
        print(f"stage-out: error: {exc}", file=sys.stderr)
        return 2
    Path("cwl.output.json").write_text(json.dumps({"s3_catalog_output": {"value": uri}}), encoding="utf-8")
    print(f"stage-out: {uri}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
