"""Who may use the OGC API - Processes server: API keys, and the owner of each request.

Every request carries a key, as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; the
server knows each key by a name (the key's owner: jobs belong to it). Keys come from a file
(``--keys-file``: one ``<name> <key>`` per line, ``#`` comments) or from the environment
(:data:`KEYS_ENV`: ``name=key`` pairs separated by commas or spaces). A key is at least
:data:`MIN_KEY_LENGTH` characters (``python -c "import secrets; print(secrets.token_urlsafe(32))"``
makes one). Keys are compared in constant time, and only their SHA-256 digests are kept.

Without keys the server refuses to start, unless ``--insecure-local`` says so explicitly: then
every request is the one owner :data:`LOCAL_OWNER`, and the server listens on a loopback
address only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidParameter

#: Environment variable holding API keys (``name=key``, separated by commas or spaces).
KEYS_ENV = "GLACIER_VELOCITY_OGC_KEYS"
#: Shortest key accepted (characters): a guessable key is no key.
MIN_KEY_LENGTH = 24
#: Owner of every request of a server started with ``--insecure-local``.
LOCAL_OWNER = "local"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True)
class ApiKeys:
    """The server's keys, by owner name (only digests are kept).

    Attributes
    ----------
    digests : mapping of str to bytes
        Owner name -> SHA-256 digest of its key. Empty with ``insecure_local``.
    insecure_local : bool
        No keys: every request is :data:`LOCAL_OWNER` (development on this machine only).
    """

    digests: Mapping[str, bytes]
    insecure_local: bool = False

    @classmethod
    def load(
        cls,
        keys_file: str | os.PathLike[str] | None = None,
        *,
        insecure_local: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> ApiKeys:
        """Keys from ``keys_file`` and :data:`KEYS_ENV`.

        Raises
        ------
        InvalidParameter
            No key at all without ``insecure_local`` (or keys with it), a malformed entry, a
            key shorter than :data:`MIN_KEY_LENGTH`, or one name or key given twice.
        """
        env = os.environ if environ is None else environ
        entries: list[tuple[str, str, str]] = []
        if keys_file is not None:
            path = Path(keys_file)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise InvalidParameter("keys_file", f"cannot read {str(path)!r} ({exc.strerror or exc})") from exc
            for number, line in enumerate(text.splitlines(), start=1):
                line = line.split("#", 1)[0].strip()
                if line:
                    name, _, key = line.partition(" ")
                    entries.append((name, key.strip(), f"{path.name} line {number}"))
        for number, pair in enumerate(env.get(KEYS_ENV, "").replace(",", " ").split(), start=1):
            name, _, key = pair.partition("=")
            entries.append((name, key, f"{KEYS_ENV} entry {number}"))
        if insecure_local:
            if entries:
                raise InvalidParameter(
                    "insecure_local", "keys were given too; give keys, or --insecure-local for a keyless local server"
                )
            return cls({}, insecure_local=True)
        if not entries:
            raise InvalidParameter(
                "keys_file",
                f"no API key: give --keys-file (lines '<name> <key>') or set {KEYS_ENV} ('name=key,...'); "
                "--insecure-local runs without keys, on this machine only",
            )
        digests: dict[str, bytes] = {}
        for name, key, where in entries:
            if not _NAME.match(name):
                raise InvalidParameter(
                    "keys_file", f"{where}: the owner name must be 1-64 letters, digits or _.@- (then the key)"
                )
            if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key):
                raise InvalidParameter(
                    "keys_file", f"{where}: the key of {name!r} must be at least {MIN_KEY_LENGTH} characters, no spaces"
                )
            digest = _digest(key)
            if name in digests or digest in digests.values():
                raise InvalidParameter("keys_file", f"{where}: {name!r} or its key is given twice")
            digests[name] = digest
        return cls(digests)

    def owner(self, authorization: str | None, api_key: str | None) -> str | None:
        """The owner of a request's key (``Authorization: Bearer``, or ``X-API-Key``), or None."""
        if self.insecure_local:
            return LOCAL_OWNER
        key = api_key
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer":
                key = value.strip()
        if not key:
            return None
        digest = _digest(key)
        found = None
        for name, expected in self.digests.items():  # every key compared: the time says nothing
            if hmac.compare_digest(digest, expected):
                found = name
        return found


__all__ = ["KEYS_ENV", "LOCAL_OWNER", "MIN_KEY_LENGTH", "ApiKeys"]
