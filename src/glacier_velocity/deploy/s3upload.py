"""Stage-out: upload a self-contained STAC catalog directory to S3 (the ADES stage-out step).

``python -m glacier_velocity.deploy.s3upload CATALOG_DIR BUCKET PREFIX [ENDPOINT]`` checks that
every item and asset the catalog names is a file inside the directory, then PUTs every file
under ``s3://BUCKET/PREFIX/<relative path>``, so that the catalog resolves in the bucket as it
did on disk, and writes ``cwl.output.json`` with the S3 URI of ``catalog.json``.

Credentials come from ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_DEFAULT_REGION``.
Requests are signed with AWS Signature Version 4 by the standard library: boto3 would need
python-dateutil < 3, which the project's lock does not allow, and the stage-out then runs in
the application's own image with nothing added.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import mimetypes
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlparse

from ..errors import InputError

log = logging.getLogger(__name__)

#: Attempts per file and the timeout of each request, s.
ATTEMPTS = 3
TIMEOUT_S = 60


@dataclass(frozen=True)
class Credentials:
    """An S3 access key pair and the bucket's region."""

    access_key: str
    secret_key: str
    region: str = "us-east-1"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign_v4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    payload_sha256: str,
    credentials: Credentials,
    service: str = "s3",
    now: datetime | None = None,
) -> dict[str, str]:
    """Headers of a request signed with AWS Signature Version 4 (``Authorization``, ``x-amz-date``).

    Parameters
    ----------
    method, url : str
        The request; the URL's query string is signed as given, its parameters sorted.
    headers : mapping
        Headers to sign besides ``host`` and ``x-amz-date`` (e.g. ``x-amz-content-sha256``).
    payload_sha256 : str
        Hex SHA-256 of the body.
    credentials : Credentials
    service : str
        ``s3`` here; another service name for the published test vectors.
    now : datetime, optional
        Signing time (UTC); default now.
    """
    now = now or datetime.now(UTC)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parts = urlparse(url)
    signed = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    signed |= {"host": parts.netloc, "x-amz-date": stamp}
    names = sorted(signed)
    query = "&".join(sorted(p if "=" in p else f"{p}=" for p in parts.query.split("&") if p))
    canonical = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/-_.~"),
            query,
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{credentials.region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{credentials.secret_key}".encode(), day), credentials.region), service), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return {**{k: v for k, v in headers.items()}, "x-amz-date": stamp, "Authorization": authorization}


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


def _endpoint_url(endpoint: str, bucket: str, key: str) -> str:
    # Path-style addressing: works with AWS and with S3-compatible stores alike.
    return f"{endpoint.rstrip('/')}/{quote(bucket)}/{quote(key, safe='/-_.~')}"


def upload(root: str | os.PathLike[str], bucket: str, prefix: str, credentials: Credentials, endpoint: str = "") -> str:
    """PUT every file of a catalog directory under ``s3://bucket/prefix/``; return the catalog's S3 URI.

    Parameters
    ----------
    root : path-like
        Catalog directory (``catalog.json`` at its top).
    bucket, prefix : str
        Destination; ``catalog.json`` lands at ``<prefix>/catalog.json``.
    credentials : Credentials
    endpoint : str
        S3 endpoint URL (MinIO, Ceph, a local test server); empty for AWS in ``credentials.region``.

    Raises
    ------
    InputError
        The catalog is not self-contained, or a PUT still fails after ATTEMPTS tries.
    """
    root = Path(root).resolve()
    prefix = prefix.strip("/")
    endpoint = endpoint or f"https://s3.{credentials.region}.amazonaws.com"
    files = catalog_files(root)
    for path in files:
        key = (
            str(PurePosixPath(prefix, path.relative_to(root).as_posix()))
            if prefix
            else path.relative_to(root).as_posix()
        )
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        url = _endpoint_url(endpoint, bucket, key)
        for attempt in range(ATTEMPTS):
            # An explicit type: urllib would send form-encoding, and a server may parse the body as a form.
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            headers = sign_v4(
                "PUT", url, {"Content-Type": content_type, "x-amz-content-sha256": digest}, digest, credentials
            )
            request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S):
                    break
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == ATTEMPTS - 1:
                    raise InputError(
                        f"stage-out: PUT s3://{bucket}/{key} failed: HTTP {exc.code} {exc.read()[:300]!r}"
                    ) from exc
            except OSError as exc:
                if attempt == ATTEMPTS - 1:
                    raise InputError(f"stage-out: PUT s3://{bucket}/{key} failed: {exc}") from exc
            time.sleep(2**attempt)
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
    credentials = Credentials(
        os.environ.get("AWS_ACCESS_KEY_ID", ""),
        os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )
    try:
        uri = upload(args.catalog, args.bucket, args.prefix, credentials, args.endpoint)
    except InputError as exc:
        print(f"stage-out: error: {exc}", file=sys.stderr)
        return 2
    Path("cwl.output.json").write_text(json.dumps({"s3_catalog_output": {"value": uri}}), encoding="utf-8")
    print(f"stage-out: {uri}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
