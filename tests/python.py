#!/usr/bin/env python3
"""python.py: the Python package lockbroker's suites, run with pytest.

Runs pytest on python/tests/ of the source tree against the package as
make check builds it (python/inplace/ of the build tree: the extension
module and the package's Python files, as they are installed).  The suites
start their own lockbrokerd (tests/lbdaemon.py) and the real Python
lockfile (Debian's python3-lockfile) as the peer.

Environment: LB_BUILDDIR and LB_SRCDIR (make check sets both).  Exit
status pytest's: 0 when all pass; 77 (skipped) when pytest is missing.
"""
import os
import sys

try:
    import pytest
except ImportError as e:
    print("SKIP: pytest is missing (%s): install python3-pytest" % e,
          file=sys.stderr)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("LB_SRCDIR", os.path.dirname(HERE))

# -p no:cacheprovider: nothing written into the (perhaps read-only)
# source tree.
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-rs",
                      os.path.join(SRCDIR, "python", "tests")]))
