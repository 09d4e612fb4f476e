"""The ``out=`` folder of a sweep: a Parquet dataset that a stopped sweep resumes.

The folder holds one part per chunk (``part-<first grid id>.parquet``, each written
atomically) and ``_manifest.json``, which names what the rows are of: the data's
fingerprint, the strategy (a user strategy with the hash of its file), the grid, the fixed
options, the chunking (combos per chunk), and each part's record (rows, SHA-256); a
checksum of its own content guards it. Until the sweep completes its parts live in
``_partial/``, which Parquet readers skip (as they skip ``_manifest.json``), so a stopped
folder never reads as a complete result; completion moves them into place and marks the
manifest complete.

Resuming (``resume=True``) checks that the manifest is intact and describes the same sweep
(else a ValueError says what differs), reads back every recorded part whose bytes match its
record into the in-memory sinks (``top=``, the deflated Sharpe's moments) and runs the
chunks that have no such part, cut exactly as before (the manifest's chunk size); a
missing or damaged part is said on stderr and its chunk runs again. A file in a sweep's
folder that Parquet readers would read but that is not one of its parts is refused. Rows
carry grid ids, so the result equals an uninterrupted run's. See docs/distributed.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sweepbt._files import write_atomic, write_text
from sweepbt.strategies.custom_files import strategy_source
from sweepbt.strategies.custom_signals import CustomBuild
from sweepbt.distributed import PROBE
from sweepbt._plan import ChunkResult
from sweepbt._results import rows_of_table
from sweepbt._sinks import ParquetParts

MANIFEST = "_manifest.json"
PARTIAL = "_partial"
#: the manifest's format; a folder of another format is refused
FORMAT = 2
_PART = re.compile(r"part-(\d{19})\.parquet")
#: seconds between the manifest's records of the parts written (and at the end): a
#: process killed outright runs the chunks of parts it wrote but did not record again
RECORD_SECONDS = 5.0
#: a write's temporary file (``_files.partial_path``)
_TEMPORARY = re.compile(r"\.(.+)\.partial-\d+")


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
    elif isinstance(strategy.build, CustomBuild):  # a user strategy no file names
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


def own_file(name, extra=()):
    """Whether ``name`` is a file sweepbt writes into an out= folder: its manifest (or an
    ``extra`` name), a part, a write's temporary file, a Dask probe."""
    temporary = _TEMPORARY.fullmatch(name)
    name = temporary.group(1) if temporary else name
    return (name == MANIFEST or name in extra or name.startswith(PROBE)
            or bool(_PART.fullmatch(name)))


def remove_own(folder, extra=(), keep=()):
    """Remove sweepbt's own files (:func:`own_file`, but not those named in ``keep``)
    from ``folder``, then the folder if that left it empty: anything else (a user's
    notes) stays, and so does its folder."""
    for name in _names(folder):
        file = os.path.join(folder, name)
        if own_file(name, extra) and name not in keep and os.path.isfile(file):
            _remove(file)
    try:
        os.rmdir(folder)
    except OSError:  # not empty (or gone)
        pass


def _names(folder):
    try:
        return os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _remove(file):
    try:
        os.remove(file)
    except FileNotFoundError:
        pass


def make_new(path, start, subfolder=None, extra=()):
    """Make the folder ``path`` (its parent must exist) and ``start()`` it (its first
    files; ``subfolder``: a folder it makes there); interrupted (SIGTERM, Ctrl-C) or
    failed, sweepbt's own files are removed, and the folder when that empties it."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"out={path!r}: directory {parent!r} does not exist")
    os.mkdir(path)
    try:
        start()
    except BaseException:
        if subfolder is not None:
            remove_own(os.path.join(path, subfolder))
        remove_own(path, extra)
        raise


def read_existing(path, name, resume, what, kind="sweep", version=FORMAT):
    """The JSON file ``name`` (format ``version``) of the existing out= folder ``path``
    of a ``kind`` run, to resume; ``what`` says what the folder is when it has no such
    file. A file that is not a JSON object is a ValueError naming it."""
    file = os.path.join(path, name)
    if not os.path.isfile(file):
        raise FileExistsError(f"out={path!r} already exists and is {what} (no {name}); "
                              "remove it or pick a new path")
    if not resume:
        raise FileExistsError(f"out={path!r} already exists; pass resume=True (CLI: "
                              f"--resume) to continue the {kind} it holds, or pick a new "
                              "path (results are never written over)")
    try:
        with open(file, encoding="utf-8") as f:
            found = json.load(f)
    except ValueError as exc:  # not JSON, not UTF-8
        found = exc
    if not isinstance(found, dict):
        raise ValueError(f"out={path!r}: {name} is damaged (not the JSON object sweepbt "
                         f"wrote: {found}); restore it, or pick a new path")
    if found.get("format") != version:
        raise ValueError(f"out={path!r}: {name} format {found.get('format')!r}, this "
                         f"sweepbt reads {version}; pick a new path")
    return found


def _checksum(manifest):
    """SHA-256 of a manifest's content (all but its ``checksum``), as JSON reads it."""
    body = json.loads(_canonical({k: v for k, v in manifest.items() if k != "checksum"}))
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


class OutDir:
    """One sweep's ``out=`` folder: made or checked by :meth:`open`."""

    #: what the folder holds (its manifest's ``kind``; a folder of another kind is refused)
    KIND = "sweep"
    #: the sub-folder of the parts until the run completes
    SUBFOLDER = PARTIAL
    #: completion moves the parts into the folder, which is then a Parquet dataset of the
    #: rows (so a file there that is not a part is refused)
    DATASET = True
    #: the manifest's parts that must match for a resume, with how a mismatch reads
    CHECKED = {"data": "the data differ", "strategy": "the strategy differs",
               "grid": "the grid differs", "options": "the fixed options differ"}

    def __init__(self, path, manifest, created):
        self.path, self.manifest, self.created = path, manifest, created
        self.partial = os.path.join(path, self.SUBFOLDER)
        self.kept = {}  # {part name: record} of the parts replay read back intact
        self.new = {}  # {part name: record} of the parts this call wrote
        self.recorded_at = time.monotonic()

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
            make_new(path, folder.start, cls.SUBFOLDER)
            return folder
        manifest = read_existing(path, MANIFEST, resume, f"not a sweepbt {cls.KIND} folder",
                                 cls.KIND)
        if manifest.get("checksum") != _checksum(manifest):
            raise ValueError(f"out={path!r}: {MANIFEST} is damaged (its content does not "
                             "match its checksum); restore it, or pick a new path")
        if manifest["kind"] != cls.KIND:
            raise ValueError(f"cannot resume out={path!r} as a {cls.KIND}: it holds a "
                             f"{manifest['kind']}")
        differences = _differences(manifest, json.loads(_canonical(wanted)), cls.CHECKED)
        if differences:
            raise ValueError(f"cannot resume out={path!r}: it holds another {cls.KIND}: "
                             + "; ".join(differences)
                             + ". Resume it with the call that made it, or pick a new path")
        folder = cls(path, manifest, created=False)
        folder.refuse_strays("then resume")
        return folder

    def start(self):
        """The manifest first, then ``_partial/``: a folder holding it always has one."""
        self.write_manifest()
        os.mkdir(self.partial)

    def write_manifest(self):
        self.manifest["checksum"] = _checksum(self.manifest)
        text = json.dumps(self.manifest, indent=1, sort_keys=True, default=_plain)
        write_atomic(os.path.join(self.path, MANIFEST), lambda tmp: write_text(tmp, text))

    def records(self):
        """{part name: record} of the parts the manifest records, in grid order."""
        records = self.manifest.get("parts", {})
        return {name: records[name] for name in sorted(records)}

    def _file(self, name):
        """Where the part ``name`` is: in the sub-folder, or moved into the folder; None
        when in neither."""
        for folder in (self.partial, self.path):
            if os.path.isfile(os.path.join(folder, name)):
                return os.path.join(folder, name)
        return None

    def parts(self):
        """Paths of the parts recorded so far (kept or written by this call) that exist,
        in grid order."""
        names = sorted({**self.records(), **self.kept, **self.new})
        return [f for f in map(self._file, names) if f is not None]

    def record(self):
        """A part writer's ``on_part``: the manifest records the parts this call wrote
        (:attr:`new`) every :data:`RECORD_SECONDS`, and when the run stops or completes."""
        if time.monotonic() - self.recorded_at >= RECORD_SECONDS:
            self.write_records()

    def write_records(self):
        """Record every part kept or written so far (that exists) in the manifest."""
        parts = {**self.kept, **self.new}
        self.manifest["parts"] = {n: r for n, r in parts.items() if self._file(n)}
        self.write_manifest()
        self.recorded_at = time.monotonic()

    def replay(self, runner, sinks):
        """Feed the rows of every recorded part that reads back intact to ``sinks``;
        returns the number of combos they hold. A part that is missing or differs from its
        record is said on stderr and removed, and its chunk runs again (the manifest, no
        longer complete, says so first)."""
        n, self.kept = 0, {}
        for name, record in self.records().items():
            table = self._intact(name, record)
            if table is not None:
                n += self.feed(runner, table, sinks)
                self.kept[name] = record
        if self.kept != self.records():
            self.manifest["complete"] = False
            self.write_records()
        return n

    def _intact(self, name, record):
        """The table of the part ``name`` when its bytes are those its ``record`` names
        (and its pages' checksums hold); else None, said on stderr, the part removed."""
        file = self._file(name)
        if file is None:
            problem = "is missing"
        else:
            with open(file, "rb") as f:
                data = f.read()
            problem = "is damaged (its SHA-256 differs from the manifest's)"
            if hashlib.sha256(data).hexdigest() == record["sha256"]:
                try:
                    table = pq.read_table(pa.BufferReader(data),
                                          page_checksum_verification=True)
                except (pa.ArrowException, OSError) as exc:
                    problem = f"cannot be read ({exc})"
                else:
                    if table.num_rows == record["rows"]:
                        return table
                    problem = f"holds {table.num_rows} rows, the manifest says {record['rows']}"
            _remove(file)
        print(f"sweepbt: out={self.path!r}: {name} {problem}; its chunk runs again",
              file=sys.stderr)
        return None

    def feed(self, plan, table, sinks):
        """Feed the rows of one part's ``table`` to ``sinks``; returns its combos."""
        ids, params, metrics = rows_of_table(table, plan.grid.names, plan.n_rows)
        chunk = ChunkResult(ids, params, metrics)
        for sink in sinks:
            sink.add(chunk)
        return ids.size

    def missing_chunks(self, plan, ids):
        """(number of chunks without a part, iterator over them): chunks cut as the
        folder's were, a chunk done when a part that :meth:`replay` kept starts inside
        it."""
        if self.complete:
            return 0, iter(())
        size = self.chunk_size
        firsts = np.array([int(_PART.fullmatch(name).group(1)) for name in self.kept],
                          dtype=np.int64)
        positions = firsts if ids is None else np.searchsorted(ids, firsts)
        done = set((positions // size).tolist())
        n = plan.grid.n_total if ids is None else ids.size
        chunks = (c for k, c in enumerate(plan.chunks(ids, size=size)) if k not in done)
        return -(-n // size) - len(done), chunks

    def writer(self, plan):
        """The sink writing this sweep's new parts (into ``_partial/``)."""
        os.makedirs(self.partial, exist_ok=True)
        sink = ParquetParts(self.partial, plan.row_symbols, plan.strategy.name, plan.fixed,
                            on_part=self.record)
        self.new = sink.records  # filled before each part appears: stop() records them
        return sink

    def finish(self):
        """Complete the folder: every part recorded in the manifest, the parts moved into
        place, the manifest marked complete, sweepbt's files in ``_partial/`` removed (and
        the folder, if that empties it); returns the path."""
        if not self.complete:
            self.write_records()  # first: a part moved before a crash is still recorded
            for name in self.records():
                os.replace(self._file(name), os.path.join(self.path, name))
            self.manifest["complete"] = True
            self.write_manifest()
            remove_own(self.partial)
        self.refuse_strays("then run the same sweep with resume=True: it is complete and "
                           "reads back at once")
        return self.path

    def stop(self):
        """After an interrupted or failed run: when this call made the folder and no part
        of it exists, remove sweepbt's files from it (and the folder if that empties it);
        else record the parts written."""
        if self.created and not self.parts():
            remove_own(self.partial)
            remove_own(self.path)
        elif self.new:
            self.write_records()

    def refuse_strays(self, then):
        """A ValueError naming the files in a sweep's folder that Parquet readers would
        read as part of its dataset but that are not its parts (a sync tool's copy, a
        user's file); ``then`` ends the sentence."""
        parts = self.manifest.get("parts", {})
        strays = sorted(name for name in _names(self.path) if self.DATASET
                        and name[0] not in "_." and name not in parts)
        if strays:
            raise ValueError(
                f"out={self.path!r} holds {', '.join(map(repr, strays))}, not part of the "
                f"{self.KIND}: Parquet readers of the folder (res.table, "
                "pyarrow.parquet.read_table) would read it as rows. Move it out of the "
                f"folder (or give it a name starting with '_'), {then}")

    def stopped_note(self):
        """What an interrupted sweep's message says about its folder."""
        n = len(self.parts())
        if n == 0 and self.created:
            return "nothing was written"
        return (f"{n:,} finished chunks are kept in {self.path!r}: run the same {self.KIND} "
                "with resume=True (CLI: --resume) to continue")
