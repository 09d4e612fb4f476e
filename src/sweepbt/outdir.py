"""The ``out=`` folder of a sweep: a Parquet dataset that a stopped sweep resumes.

The folder holds one part per chunk (``part-<first grid id>.parquet``, each written
atomically) and ``_manifest.json``, which names what the rows are of: the data's
fingerprint, the strategy (a user strategy with the hash of its file), the grid, the fixed
options, and the chunking (combos per chunk). Until the sweep completes its parts live in
``_partial/``, which Parquet readers skip (as they skip ``_manifest.json``), so a stopped
folder never reads as a complete result; completion moves them into place and marks the
manifest complete.

Resuming (``resume=True``) checks that the manifest describes the same sweep (else a
ValueError says what differs), keeps every part already written, reads them back into the
in-memory sinks (``top=``, the deflated Sharpe's moments) and runs only the chunks that
have no part, cut exactly as before (the manifest's chunk size). Rows carry grid ids, so
the result equals an uninterrupted run's. See docs/distributed.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping

import numpy as np
import pyarrow.parquet as pq

from sweepbt._files import write_atomic, write_text
from sweepbt.custom_files import strategy_source
from sweepbt.plan import ChunkResult
from sweepbt.results import rows_of_table
from sweepbt.sinks import ParquetParts

MANIFEST = "_manifest.json"
PARTIAL = "_partial"
#: the manifest's format; a folder of another format is refused
FORMAT = 1
_PART = re.compile(r"part-(\d{19})\.parquet")


def data_fingerprint(bundle):
    """SHA-256 of every field of the Bundle: price arrays, timestamps, symbols, spans,
    factors (not ``source``, the file it came from). No factors hash as before factors
    existed (a folder written then resumes)."""
    digest = hashlib.sha256()
    for f in dataclasses.fields(bundle):
        value = getattr(bundle, f.name)
        if (f.name == "factors" and not value) or f.name == "source":
            continue
        _hash_value(digest, f.name, value)
    return digest.hexdigest()


def _hash_value(digest, name, value):
    digest.update(name.encode() + b"\0")
    if isinstance(value, np.ndarray):
        value = np.ascontiguousarray(value)
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        digest.update(value.view(np.uint8).reshape(-1).data if value.size else b"")
    elif isinstance(value, Mapping):
        for key in sorted(value):
            _hash_value(digest, f"{name}.{key}", value[key])
    else:
        digest.update(json.dumps(value, default=str).encode())


def _strategy_identity(strategy):
    source = strategy_source(strategy)
    identity = {"name": strategy.name}
    if source is not None:
        identity["file"] = source.filename
        identity["source_sha256"] = source.sha256
    elif hasattr(strategy.build, "spec"):  # a user strategy no file names
        identity["source_key"] = strategy.build.spec.source_key
    return identity


def _plain(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return str(value)


def describe(plan):
    """The manifest's checked parts for ``plan`` (JSON-ready)."""
    bundle, grid = plan.bundle, plan.grid
    return {
        "data": {"fingerprint": data_fingerprint(bundle), "n_assets": bundle.n_assets,
                 "n_bars": bundle.n_bars},
        "strategy": _strategy_identity(plan.strategy),
        "grid": {"names": list(grid.names),
                 "values": {n: grid.values[n].tolist() for n in grid.names},
                 "constraint": grid.constraint},
        "options": plan.fixed,
    }


def _canonical(value):
    return json.dumps(value, sort_keys=True, default=_plain)


def _differences(found, wanted, checked):
    """Readable lines for each part of ``checked`` ({key: label}) where ``found`` (the
    folder) and ``wanted`` (this call) differ."""
    lines = []
    for key, label in checked.items():
        old, new = _flat(found.get(key, {})), _flat(wanted[key])
        fields = sorted(k for k in set(old) | set(new)
                        if _canonical(old.get(k)) != _canonical(new.get(k)))
        if not fields:
            continue
        detail = "; ".join(f"{k}: {_short(old.get(k))} in the folder, {_short(new.get(k))} "
                           "now" for k in fields)
        lines.append(f"{label} ({detail})")
    return lines


def _flat(part, prefix=""):
    """A manifest part as ``{dotted key: value}`` (nested dicts flattened)."""
    out = {}
    for key, value in part.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _short(value):
    text = _canonical(value)
    return text if len(text) <= 80 else text[:77] + "..."


def make_new(path, start):
    """Make the folder ``path`` (its parent must exist) and ``start()`` it (its first
    file); interrupted (SIGTERM, Ctrl-C) or failed, nothing is left."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"out={path!r}: directory {parent!r} does not exist")
    os.mkdir(path)
    try:
        start()
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def read_existing(path, name, resume, what, kind="sweep"):
    """The JSON file ``name`` (format :data:`FORMAT`) of the existing out= folder
    ``path`` of a ``kind`` run, to resume; ``what`` says what the folder is when it has no
    such file."""
    file = os.path.join(path, name)
    if not os.path.isfile(file):
        raise FileExistsError(f"out={path!r} already exists and is {what} (no {name}); "
                              "remove it or pick a new path")
    if not resume:
        raise FileExistsError(f"out={path!r} already exists; pass resume=True (CLI: "
                              f"--resume) to continue the {kind} it holds, or pick a new "
                              "path (results are never written over)")
    with open(file, encoding="utf-8") as f:
        found = json.load(f)
    if found.get("format") != FORMAT:
        raise ValueError(f"out={path!r}: {name} format {found.get('format')!r}, this "
                         f"sweepbt reads {FORMAT}; pick a new path")
    return found


class OutDir:
    """One sweep's ``out=`` folder: made or checked by :meth:`open`."""

    #: what the folder holds (its manifest's ``kind``; a folder of another kind is refused)
    KIND = "sweep"
    #: the sub-folder of the parts until the run completes
    SUBFOLDER = PARTIAL
    #: the manifest's parts that must match for a resume, with how a mismatch reads
    CHECKED = {"data": "the data differ", "strategy": "the strategy differs",
               "grid": "the grid differs", "options": "the fixed options differ"}

    def __init__(self, path, manifest, created):
        self.path, self.manifest, self.created = path, manifest, created
        self.partial = os.path.join(path, self.SUBFOLDER)

    @property
    def chunk_size(self):
        return self.manifest["chunking"]["chunk_size"]

    @property
    def complete(self):
        return bool(self.manifest.get("complete"))

    @classmethod
    def open(cls, path, plan, ids, resume):
        """The folder ``path`` for ``plan`` run on ``ids`` (None: the whole grid): a new
        folder, or with ``resume`` an existing one made by the same sweep."""
        return cls.open_described(path, describe(plan), plan.chunk_size(), ids, resume)

    @classmethod
    def open_described(cls, path, wanted, chunk_size, ids, resume):
        """:meth:`open` of a run that ``wanted`` (its manifest's checked parts) describes,
        cut in chunks of ``chunk_size`` combos."""
        path = os.fspath(path)
        if not os.path.lexists(path):
            manifest = {"format": FORMAT, "kind": cls.KIND, "complete": False, **wanted,
                        "chunking": {"chunk_size": chunk_size,
                                     "ids": "grid" if ids is None else f"sample of {ids.size}"}}
            folder = cls(path, manifest, created=True)
            make_new(path, folder.start)
            return folder
        manifest = read_existing(path, MANIFEST, resume, f"not a sweepbt {cls.KIND} folder",
                                 cls.KIND)
        kind = manifest.get("kind", OutDir.KIND)  # folders written before kinds are sweeps
        if kind != cls.KIND:
            raise ValueError(f"cannot resume out={path!r} as a {cls.KIND}: it holds a {kind}")
        differences = _differences(manifest, json.loads(_canonical(wanted)), cls.CHECKED)
        if differences:
            raise ValueError(f"cannot resume out={path!r}: it holds another {cls.KIND}: "
                             + "; ".join(differences)
                             + ". Resume it with the call that made it, or pick a new path")
        return cls(path, manifest, created=False)

    def start(self):
        """The manifest first, then ``_partial/``: a folder holding it always has one."""
        self.write_manifest()
        os.mkdir(self.partial)

    def write_manifest(self):
        text = json.dumps(self.manifest, indent=1, sort_keys=True, default=_plain)
        write_atomic(os.path.join(self.path, MANIFEST), lambda tmp: write_text(tmp, text))

    def parts(self):
        """Paths of the parts written so far (in ``_partial/`` or moved into place), in
        grid order."""
        found = []
        for folder in (self.partial, self.path):
            if os.path.isdir(folder):
                found += [os.path.join(folder, name) for name in os.listdir(folder)
                          if _PART.fullmatch(name)]
        return sorted(found, key=os.path.basename)

    def missing_chunks(self, plan, ids):
        """(number of chunks without a part, iterator over them): chunks cut as the
        folder's were, a chunk done when a part starts inside it."""
        size = self.chunk_size
        firsts = np.array([int(_PART.fullmatch(os.path.basename(p)).group(1))
                           for p in self.parts()], dtype=np.int64)
        positions = firsts if ids is None else np.searchsorted(ids, firsts)
        done = set((positions // size).tolist())
        n = plan.grid.n_total if ids is None else ids.size
        n_chunks = -(-n // size)
        if self.complete:
            return 0, iter(())
        chunks = (c for k, c in enumerate(plan.chunks(ids, size=size)) if k not in done)
        return n_chunks - len(done), chunks

    def replay(self, plan, sinks):
        """Feed the rows of every part written so far to ``sinks``; returns the number of
        combos they hold."""
        n = 0
        for path in self.parts():
            ids, params, metrics = rows_of_table(pq.read_table(path), plan.grid.names,
                                                 plan.n_rows)
            chunk = ChunkResult(ids, params, metrics)
            for sink in sinks:
                sink.add(chunk)
            n += ids.size
        return n

    def writer(self, plan):
        """The sink writing this sweep's new parts (into ``_partial/``)."""
        os.makedirs(self.partial, exist_ok=True)
        return ParquetParts(self.partial, plan.row_symbols, plan.strategy.name, plan.fixed)

    def finish(self):
        """Move the parts into place, mark the manifest complete; returns the path."""
        if not self.complete:
            for part in self.parts():
                os.replace(part, os.path.join(self.path, os.path.basename(part)))
            shutil.rmtree(self.partial, ignore_errors=True)
            self.manifest["complete"] = True
            self.write_manifest()
        return self.path

    def discard_if_new_and_empty(self):
        """Remove the folder when this call made it and no part was written."""
        if self.created and not self.parts():
            shutil.rmtree(self.path, ignore_errors=True)

    def stopped_note(self):
        """What an interrupted sweep's message says about its folder."""
        n = len(self.parts())
        if n == 0 and self.created:
            return "nothing was written"
        return (f"{n:,} finished chunks are kept in {self.path!r}: run the same {self.KIND} "
                "with resume=True (CLI: --resume) to continue")
