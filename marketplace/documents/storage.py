"""Where the bytes of documents live: a port and two adapters (a local directory, S3-compatible storage).

A blob's key is the SHA-256 hex of its bytes, so identical uploads share one blob. Uploads are first written
to a staging file in :attr:`Storage.staging_dir`, then handed over with :meth:`Storage.put_file`.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from marketplace.core.settings import Settings

CHUNK = 64 * 1024
_KEY = re.compile(r"^[0-9a-f]{64}$")


def _check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError("a storage key is a SHA-256 hex digest")
    return key


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the RFC 5987 ``filename*`` (UTF-8, percent-encoded)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class Storage(Protocol):
    """The storage port."""

    name: str
    # Uploads are staged here (on the same file system as a local store, so handing over is a rename).
    staging_dir: Path

    async def put_file(self, key: str, path: Path) -> None:
        """Store the staged file ``path`` under ``key`` (kept when the key exists) and remove ``path``."""
        ...

    async def exists(self, key: str) -> bool: ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes in chunks; ``FileNotFoundError`` when it is missing."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob (no error when it is already gone)."""
        ...

    async def signed_url(self, key: str, *, filename: str, content_type: str, seconds: int) -> str | None:
        """A URL that downloads the blob without signing in for ``seconds``; ``None`` if the backend has none
        (the API then issues its own signed link)."""
        ...


class LocalStorage:
    """Blobs under ``root/ab/cd/<sha256>``, written through a staging file and an atomic rename."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging_dir = root / "staging"
        self.staging_dir.mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        _check_key(key)
        return self.root / key[:2] / key[2:4] / key

    async def put_file(self, key: str, path: Path) -> None:
        target = self.path_of(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                path.unlink(missing_ok=True)
                return
            os.replace(path, target)  # atomic on one file system: a reader never sees half a blob

        await asyncio.to_thread(move)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_of(key).exists)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self.path_of(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_of(key).unlink, True)

    async def signed_url(self, key: str, *, filename: str, content_type: str, seconds: int) -> str | None:
        return None


class S3Storage:
    """Blobs as objects ``<sha256>`` in one bucket (AWS S3, MinIO, moto); blocking boto3 calls run in threads."""

    name = "s3"

    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = settings.storage_s3_bucket
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.storage_s3_endpoint_url,
            region_name=settings.storage_s3_region,
            aws_access_key_id=settings.storage_s3_access_key,
            aws_secret_access_key=settings.storage_s3_secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        self.staging_dir = Path(tempfile.gettempdir()) / "marketplace-documents"
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self._bucket_ready = False

    async def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return

        def ensure() -> None:
            from botocore.exceptions import ClientError

            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError:
                self.client.create_bucket(Bucket=self.bucket)

        await asyncio.to_thread(ensure)
        self._bucket_ready = True

    async def put_file(self, key: str, path: Path) -> None:
        _check_key(key)
        await self._ensure_bucket()
        try:
            if not await self.exists(key):
                await asyncio.to_thread(self.client.upload_file, str(path), self.bucket, key)
        finally:
            await asyncio.to_thread(path.unlink, True)

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        _check_key(key)
        await self._ensure_bucket()
        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return True

    async def read(self, key: str) -> AsyncIterator[bytes]:
        from botocore.exceptions import ClientError

        _check_key(key)
        await self._ensure_bucket()
        try:
            obj = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise FileNotFoundError(key) from exc
        body = obj["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        _check_key(key)
        await self._ensure_bucket()
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)

    async def signed_url(self, key: str, *, filename: str, content_type: str, seconds: int) -> str | None:
        _check_key(key)
        await self._ensure_bucket()
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentDisposition": content_disposition(filename),
            "ResponseContentType": content_type,
        }
        url = await asyncio.to_thread(
            self.client.generate_presigned_url, "get_object", Params=params, ExpiresIn=seconds
        )
        return str(url)


_cache: dict[tuple[Any, ...], Storage] = {}


def storage_for(settings: Settings) -> Storage:
    """The storage the settings describe; one instance per configuration and process."""
    if settings.storage_backend == "s3":
        ident: tuple[Any, ...] = (
            "s3",
            settings.storage_s3_bucket,
            settings.storage_s3_endpoint_url,
            settings.storage_s3_region,
            settings.storage_s3_access_key,
        )
    else:
        ident = ("local", str(Path(settings.data_dir).resolve()))
    found = _cache.get(ident)
    if found is None:
        found = S3Storage(settings) if ident[0] == "s3" else LocalStorage(Path(settings.data_dir) / "documents")
        _cache[ident] = found
    return found
