"""test_typing.py: the package's type hints (py.typed and the .pyi stubs
beside its modules), as installed in the build tree's python/inplace/.

mypy --strict accepts typing_sample.py, a program using the whole API
(the asyncio form and cancel() too), and rejects misuses in a program
made here, line by line; and every public name of each module at run
time is in its stub, so the stubs cannot fall behind the code.
Skipped, saying so, when mypy (Debian: python3-mypy) is missing.
"""
import ast
import importlib
import os
import subprocess
import sys

import pytest

from conftest import HERE, INPLACE

MODULES = ["lockbroker", "lockbroker._lockbroker", "lockbroker._base",
           "lockbroker._errors", "lockbroker.linklockfile",
           "lockbroker.symlinklockfile", "lockbroker.mkdirlockfile",
           "lockbroker.pidlockfile", "lockbroker.sqlitelockfile"]


def stub_of(name):
    """The stub file of the package's module name."""
    pkg = os.path.join(INPLACE, "lockbroker")
    return os.path.join(pkg, "__init__.pyi" if name == "lockbroker" else
                        name.split(".")[-1] + ".pyi")


def mypy(program, tmp_path):
    """mypy --strict on program with the built package on its path: its
    CompletedProcess (text)."""
    pytest.importorskip("mypy", reason="mypy is missing: install "
                        "python3-mypy")
    env = dict(os.environ, MYPYPATH=INPLACE)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
         "--show-error-codes", program],
        env=env, cwd=str(tmp_path), capture_output=True, text=True,
        timeout=300)


def test_package_is_typed():
    pkg = os.path.join(INPLACE, "lockbroker")
    assert os.path.isfile(os.path.join(pkg, "py.typed"))
    for name in MODULES:
        assert os.path.isfile(stub_of(name)), stub_of(name)


def test_sample_program_passes_strict(tmp_path):
    r = mypy(os.path.join(HERE, "typing_sample.py"), tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


MISUSES = {
    "lock.acquire(timeout='soon')": "arg-type",
    "lockbroker.LockFile(path, transport='daemon')": "arg-type",
    "lockbroker.LockFile(path, 1.5)": "arg-type",
    "n: int = lock.holder().pid": "union-attr",
    "s: str = lock.is_locked()": "assignment",
    "lock.acquire_async(1)": "unused-coroutine",
    "lock.relase()": "attr-defined",
    "lockbroker.pidlockfile.read_pid_from_pidfile(3)": "arg-type",
    "t: int = lock.timeout": "assignment",
    "lock.acquire(shared='yes')": "arg-type",
    "lock.downgrade(1)": "call-arg",
}


def test_misuses_are_errors(tmp_path):
    lines = ["import lockbroker", "import lockbroker.pidlockfile",
             "path = '/tmp/x'", "lock = lockbroker.LockFile(path)",
             "async def f() -> None:"]
    first = len(lines) + 1
    lines += ["    " + m for m in MISUSES]
    prog = tmp_path / "misuses.py"
    prog.write_text("\n".join(lines) + "\n")
    r = mypy(str(prog), tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    flagged = {}
    for out in r.stdout.splitlines():
        parts = out.split(":", 3)
        if len(parts) == 4 and parts[2].strip() == "error":
            flagged.setdefault(int(parts[1]), []).append(parts[3])
    for n, (misuse, code) in enumerate(MISUSES.items(), first):
        assert any("[%s]" % code in e for e in flagged.get(n, [])), \
            "%s: not flagged [%s]: %s" % (misuse, code, r.stdout)


def stub_names(path):
    """The names a stub defines or imports at its top level, those of
    its classes (as 'Class.name'), and 'class Class' for each class it
    defines."""
    tree = ast.parse(open(path).read())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update((node.name, "class " + node.name))
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(node.name + "." + item.name)
                elif isinstance(item, ast.AnnAssign):
                    names.add(node.name + "." + item.target.id)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) \
                else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


# A structseq's (Holder's) counts of its fields, not part of the API.
STRUCTSEQ = {"n_fields", "n_sequence_fields", "n_unnamed_fields"}


@pytest.mark.parametrize("name", MODULES)
def test_stubs_name_everything_public(name):
    module = importlib.import_module(name)
    stub = stub_of(name)
    have = stub_names(stub)
    # A class's members may be typed in a subclass's stub (LockBase's,
    # for what the extension's Lock has): any stub of the package.
    members = set().union(*(stub_names(stub_of(m)) for m in MODULES))
    missing = []
    for attr, value in vars(module).items():
        if attr.startswith("_") or getattr(value, "__module__", None) \
                in ("typing", "builtins") or \
                type(value).__name__ == "module" and attr not in (
                    "linklockfile", "symlinklockfile", "mkdirlockfile",
                    "pidlockfile", "sqlitelockfile"):
            continue
        if attr not in have:
            missing.append(attr)
        if isinstance(value, type) and "class " + attr in have:
            # A class this stub defines: its own public names too.
            for meth in vars(value):
                if meth.startswith("_") or meth in STRUCTSEQ:
                    continue
                if not any(n.endswith("." + meth) for n in members):
                    missing.append(attr + "." + meth)
    assert missing == [], "not in %s: %s" % (stub, missing)
