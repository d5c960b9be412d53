"""What a market-data file is, by its bytes: container (text, JSON, Parquet, Feather, DBN) and compression.

Files are recognised by their magic bytes, not their names: ``BTCUSDT-1m-2024-01-01.zip`` (a zip holding
one CSV), ``trades.csv.gz``, ``ohlcv.dbn.zst`` and ``data.json.bz2`` all open the same way. Compression
is undone on the fly: gzip, bzip2 and zstd through Arrow's codecs, xz through :mod:`lzma`, zip through
:mod:`zipfile` (an archive must hold exactly one data file). Nothing here interprets the data.
"""

from __future__ import annotations

import lzma
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa

from smart_trader.core.errors import DataValidationError, InvalidInputError, NotFoundError

Container = Literal["text", "json", "parquet", "feather", "dbn"]
Compression = Literal["gzip", "bz2", "zstd", "xz", "zip"]

HEAD_BYTES = 64 * 1024
"""Bytes of (decompressed) content read to recognise a file."""

_COMPRESSION_MAGIC: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
)
_COMPRESSION_SUFFIXES = (".gz", ".gzip", ".bz2", ".zst", ".zstd", ".xz", ".zip")
_CANONICAL_SUFFIX: dict[Container, str] = {
    "text": ".csv",
    "json": ".json",
    "parquet": ".parquet",
    "feather": ".feather",
    "dbn": ".dbn",
}


@dataclass(frozen=True)
class Source:
    """A market-data file as its bytes say.

    Attributes:
        path: the file as given.
        container: ``text`` (CSV/TSV/...), ``json`` (JSON document or JSON lines), ``parquet``, ``feather``
            (Arrow IPC file or stream, Feather v1/v2) or ``dbn`` (Databento binary encoding).
        compression: how the file is compressed, ``None`` when it is not.
        member: the data file's name inside a zip archive, else ``None``.
        name: the data file's own name, without compression suffixes (``BTCUSDT-1m-2024-01-01.csv``).
        head: the first :data:`HEAD_BYTES` of the decompressed content (UTF-8: a UTF-16 text file, as MetaTrader 5
            and Excel write them, is recoded).
        utf16: the file is UTF-16 text (a byte-order mark says so): its content is recoded to UTF-8 when read.
    """

    path: Path
    container: Container
    compression: Compression | None
    member: str | None
    name: str
    head: bytes
    utf16: bool = False

    @property
    def suffix(self) -> str:
        """Canonical suffix of the container (``.csv`` for any text table), used to match formats."""
        return _CANONICAL_SUFFIX[self.container]

    def read_bytes(self) -> bytes:
        """The whole decompressed content.

        Raises:
            DataValidationError: ``file-format`` when the compressed stream is damaged.
        """
        data = self._raw_bytes()
        if not self.utf16:
            return data
        try:
            return data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataValidationError(str(self.path), "file-format", f"damaged UTF-16 text: {exc}") from None

    def _raw_bytes(self) -> bytes:
        try:
            if self.compression is None:
                return self.path.read_bytes()
            if self.compression == "zip":
                with zipfile.ZipFile(self.path) as archive:
                    assert self.member is not None
                    return archive.read(self.member)
            if self.compression == "xz":
                return lzma.decompress(self.path.read_bytes())
            with pa.input_stream(str(self.path), compression=self.compression) as stream:
                return bytes(stream.read())
        except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, pa.ArrowException) as exc:
            raise DataValidationError(
                str(self.path), "file-format", f"damaged {self.compression} data: {exc}"
            ) from None

    def buffer(self) -> pa.Buffer:
        """The decompressed content as an Arrow buffer (memory-mapped when the file is not compressed)."""
        if self.compression is None and not self.utf16:
            return pa.memory_map(str(self.path)).read_buffer()
        return pa.py_buffer(self.read_bytes())


def check_file(path: Path) -> None:
    """Raise unless ``path`` is a non-empty regular file.

    Raises:
        NotFoundError: no such file.
        InvalidInputError: a directory or other non-file.
        DataValidationError: ``not-empty`` for an empty file.
    """
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise InvalidInputError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataValidationError(str(path), "not-empty", "the file is empty")


def open_source(path: Path) -> Source:
    """Recognise ``path``: its compression, the data file inside, and the container of that data.

    Raises:
        NotFoundError: no such file.
        DataValidationError: ``not-empty`` (empty file or empty content), ``file-format`` (a zip holding
            no file or several, damaged compression).
    """
    check_file(path)
    with path.open("rb") as f:
        magic = f.read(8)
    compression = next((c for m, c in _COMPRESSION_MAGIC if magic.startswith(m)), None)
    member = None
    name = path.name
    if compression == "zip":
        member = _zip_member(path)
        name = Path(member).name
        head = _zip_head(path, member)
    elif compression is not None:
        head = _head(path, compression)
        while Path(name).suffix.lower() in _COMPRESSION_SUFFIXES:
            name = Path(name).stem
    else:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    if utf16:
        head = head[: len(head) // 2 * 2].decode("utf-16", errors="ignore").encode("utf-8")
    if not head.strip():
        raise DataValidationError(str(path), "not-empty", "the file holds no data")
    return Source(path, _container(head, name), compression, member, name, head, utf16)


def _container(head: bytes, name: str) -> Container:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"ARROW1", b"FEA1", b"\xff\xff\xff\xff")):  # IPC file, Feather v1, IPC stream
        return "feather"
    if head.startswith(b"DBN"):
        return "dbn"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"[", b"{"):
        return "json"
    return "text"


def _head(path: Path, compression: Compression) -> bytes:
    try:
        if compression == "xz":  # the one codec Arrow lacks
            with lzma.open(path, "rb") as f:
                return f.read(HEAD_BYTES)
        with pa.input_stream(str(path), compression=compression) as stream:
            return bytes(stream.read(HEAD_BYTES))
    except (OSError, EOFError, lzma.LZMAError, pa.ArrowException) as exc:
        raise DataValidationError(str(path), "file-format", f"damaged {compression} data: {exc}") from None


def _zip_member(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir() and not _hidden(i.filename)]
    except zipfile.BadZipFile as exc:
        raise DataValidationError(str(path), "file-format", f"damaged zip archive: {exc}") from None
    if len(names) != 1:
        held = ", ".join(names[:10]) or "nothing"
        detail = f"a zip archive must hold exactly one data file; this one holds {held}: extract the one to import"
        raise DataValidationError(str(path), "file-format", detail)
    return names[0]


def _hidden(name: str) -> bool:
    return name.startswith("__MACOSX/") or Path(name).name.startswith(".")


def _zip_head(path: Path, member: str) -> bytes:
    with zipfile.ZipFile(path) as archive, archive.open(member) as f:
        return f.read(HEAD_BYTES)
