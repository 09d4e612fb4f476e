"""Files sweepbt writes: atomically, and Parquet with page checksums (a leaf module)."""

from __future__ import annotations

import hashlib
import os


def partial_path(path):
    """The hidden temporary name next to ``path`` that a write in progress uses
    (``.NAME.partial-PID``): renamed to ``path`` when complete, removed otherwise."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    return os.path.join(directory, f".{os.path.basename(path)}.partial-{os.getpid()}")


def write_atomic(path, write, replace=True):
    """``write(tmp)`` to a hidden temporary file next to ``path``, then move it to ``path``.

    Nothing is left behind on any failure or interrupt: ``path`` is either untouched or the
    complete new file. With ``replace=False`` an existing ``path`` is never replaced, even
    one that appeared while ``write`` ran (the move is a hard link, which fails on an
    existing name; where hard links are not supported, a check just before a rename):
    FileExistsError then.
    """
    path = os.fspath(path)
    tmp = partial_path(path)
    try:
        write(tmp)
        if replace:
            os.replace(tmp, path)
            return path
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise FileExistsError(f"{path!r} exists; not replaced") from None
        except OSError:  # no hard links on this file system
            if os.path.lexists(path):
                raise FileExistsError(f"{path!r} exists; not replaced") from None
            os.replace(tmp, path)
    finally:
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
    return path


def write_text(path, text):
    """``text`` to ``path`` as UTF-8 (under :func:`write_atomic`: ``lambda tmp:
    write_text(tmp, text)``)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_parquet(table, path, **kwargs):
    """``pq.write_table`` with page checksums on (``sb.load`` verifies them)."""
    import pyarrow.parquet as pq

    pq.write_table(table, path, **{"write_page_checksum": True, **kwargs})


def parquet_bytes(table):
    """The bytes :func:`write_parquet` writes for ``table``."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    write_parquet(table, sink)
    return sink.getvalue().to_pybytes()


def write_if_changed(path, data):
    """Write the bytes ``data`` to ``path`` atomically unless it holds exactly them
    already (a read-only copy that does is left alone)."""
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return
    except FileNotFoundError:
        pass

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    write_atomic(path, write)


def write_part(table, path, records):
    """``table`` as the Parquet file ``path`` (atomically, page checksums on), its record
    ``{"rows": table rows, "sha256": the file's SHA-256}`` put in ``records`` under the
    file's name before the file appears (an interrupt never leaves a part unrecorded)."""

    def write(tmp):
        write_parquet(table, tmp)
        with open(tmp, "rb") as f:
            records[os.path.basename(path)] = {"rows": table.num_rows,
                                               "sha256": hashlib.sha256(f.read()).hexdigest()}

    write_atomic(path, write)
