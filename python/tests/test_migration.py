"""test_migration.py: a program written against lockfile (migrating.py)
runs with its import lines changed to lockbroker's and nothing else, with
the same output as with lockfile, through the daemon and in-process."""
import os
import re
import subprocess
import sys
import tempfile
import shutil

import pytest

from conftest import HERE, INPLACE

pytest.importorskip("lockfile")

PROGRAM = os.path.join(HERE, "migrating.py")


def migrated(text):
    """text with its lockfile imports made lockbroker's: the one-line
    migration (here two lines: the program imports a submodule too)."""
    text, n = re.subn(r"(?m)^import lockfile$",
                      "import lockbroker as lockfile", text)
    text, m = re.subn(r"(?m)^from lockfile\.", "from lockbroker.", text)
    assert (n, m) == (1, 1)
    return text


def run(source, env):
    """Runs the program's source in a fresh directory; its output."""
    d = tempfile.mkdtemp(prefix="lbmigrate.")
    try:
        prog = os.path.join(d, "prog.py")
        with open(prog, "w") as f:
            f.write(source)
        work = os.path.join(d, "work")
        os.mkdir(work)
        r = subprocess.run([sys.executable, prog, work], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_same_results_with_lockbroker(transport):
    with open(PROGRAM) as f:
        source = f.read()
    env = dict(os.environ, PYTHONPATH=INPLACE,
               LOCKBROKER_TRANSPORT=transport)
    theirs = run(source, env)
    assert "second instance: exit 3" in theirs
    assert "timed out: True" in theirs
    ours = run(migrated(source), env)
    assert ours == theirs
