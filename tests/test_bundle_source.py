"""Bundle.source (the file a Bundle was loaded from) and Bundle.to_parquet's refusals."""

from __future__ import annotations

import os

import numpy as np
import pytest

import sweepbt as sb
from sweepbt.data import Bundle, load
from sweepbt._outdir import data_fingerprint


@pytest.fixture(scope="module")
def small():
    close = np.array([[10.0, 10.5, 11.0, 10.8], [20.0, 19.5, 19.0, 19.2]])
    return Bundle.from_arrays(close=close, symbols=["X", "Y"])


def test_source_is_the_absolute_path_or_none(small, tmp_path, monkeypatch):
    assert small.source is None and sb.demo().source is None
    monkeypatch.chdir(tmp_path)
    small.to_parquet("p.parquet")
    back = load("p.parquet")
    assert back.source == str(tmp_path / "p.parquet")
    assert back.copy().source == back.source
    assert back.select("Y").source == back.source
    assert back.slice_bars(1, 3).source == back.source
    assert load(back).source == back.source
    assert load(back.to_table()).source is None


def test_source_is_no_part_of_the_fingerprint(small, tmp_path):
    path = tmp_path / "p.parquet"
    small.to_parquet(path)
    back = load(path)
    assert back.source is not None
    assert data_fingerprint(back) == data_fingerprint(small)


def test_to_parquet_refuses_an_existing_path(small, tmp_path):
    path = tmp_path / "p.parquet"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=r"p\.parquet.*overwrite=True"):
        small.to_parquet(path)
    assert path.read_bytes() == b"keep me"
    small.to_parquet(path, overwrite=True)
    assert load(path).symbols == ("X", "Y")


def test_to_parquet_never_overwrites_its_source(small, tmp_path):
    path = tmp_path / "p.parquet"
    small.to_parquet(path)
    before = path.read_bytes()
    back = load(path)
    os.link(path, tmp_path / "alias.parquet")
    for target in (path, str(path), tmp_path / "alias.parquet",
                   tmp_path / "sub" / ".." / "p.parquet"):
        with pytest.raises(ValueError, match="loaded from"):
            back.to_parquet(target, overwrite=True)
    assert path.read_bytes() == before
    back.to_parquet(tmp_path / "other.parquet")
    assert load(tmp_path / "other.parquet").symbols == ("X", "Y")
