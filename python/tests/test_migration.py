"""test_migration.py: programs written against lockfile (migrating.py;
dropping.py, which lets lock objects go while their locks are held) run
with their import lines changed to lockbroker's and nothing else, with
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


def outputs(program, transport):
    """program's output with lockfile, and migrated to lockbroker."""
    with open(os.path.join(HERE, program)) as f:
        source = f.read()
    env = dict(os.environ, PYTHONPATH=INPLACE,
               LOCKBROKER_TRANSPORT=transport)
    return run(source, env), run(migrated(source), env)


def test_same_results_with_lockbroker(transport):
    theirs, ours = outputs("migrating.py", transport)
    assert "second instance: exit 3" in theirs
    assert "timed out: True" in theirs
    assert ours == theirs


def test_dropped_objects_keep_their_locks(transport):
    theirs, ours = outputs("dropping.py", transport)
    assert "link held after its object went: True" in theirs
    assert "mkdir released by a new object: None" in theirs
    assert ours == theirs
