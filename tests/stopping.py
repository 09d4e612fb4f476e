"""Stopping a command half-way, for the tests of interrupted and resumed sweeps."""

import os
import subprocess
import time

import pytest


def finished_parts(folder):
    """The finished parts in a sweep's ``_partial`` folder (not the hidden temporary file
    of a part being written); none when the folder does not exist."""
    folder = os.fspath(folder)
    return sorted(p for p in os.listdir(folder) if p.startswith("part-")) \
        if os.path.isdir(folder) else []


def stop_when(command, ready, signum, timeout=300):
    """Start ``command``, send it ``signum`` as soon as ``ready()`` holds, wait for it;
    returns ``(exit status, stderr)``. Fails when the command ends before that."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"the command ended before it was stopped: {proc.communicate()}")
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err
