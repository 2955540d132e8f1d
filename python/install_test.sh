#!/bin/bash
# The Python package as a user installs it: a fresh venv (Debian's python3,
# seeing Debian's numpy and pytest), `pip install --no-build-isolation .`
# offline, then - with no PYTHONPATH and no NIXL_CONNECT_LIB - the package
# must import from the venv, load the library it carries, report the C
# library's version, and pass the whole Python suite.
# usage: install_test.sh SOURCE_DIR BUILD_DIR NXC NXC_TEST_PEER
set -eu -o pipefail
SRC=$1 BUILD=$2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nxc-pyinstall.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
unset PYTHONPATH NIXL_CONNECT_LIB

/usr/bin/python3 -m venv --system-site-packages "$TMP/venv"
# the library from this build (NIXL_CONNECT_BUILD_DIR) instead of a second
# CMake build; setup.py builds it itself when that is not set
NIXL_CONNECT_BUILD_DIR=$BUILD "$TMP/venv/bin/pip" install -q --no-build-isolation \
    --no-index --disable-pip-version-check "$SRC"

cd "$TMP"
"$TMP/venv/bin/python" - "$TMP/venv" <<'PY'
import importlib.metadata, os, sys
import nixl_connect
venv = os.path.realpath(sys.argv[1])
assert os.path.realpath(nixl_connect.__file__).startswith(venv), nixl_connect.__file__
assert os.path.realpath(nixl_connect.library_path).startswith(venv), nixl_connect.library_path
assert importlib.metadata.version("nixl_connect") == nixl_connect.version(), \
    (importlib.metadata.version("nixl_connect"), nixl_connect.version())
assert os.path.exists(os.path.join(os.path.dirname(nixl_connect.__file__), "py.typed"))
print(f"installed nixl_connect {nixl_connect.version()} from {nixl_connect.__file__}")
PY
NXC_TEST_INSTALLED=1 NXC_BIN=$3 NXC_TEST_PEER=$4 PYTHONDONTWRITEBYTECODE=1 \
    "$TMP/venv/bin/python" -m pytest -q -p no:cacheprovider \
    --ignore="$SRC/python/tests/test_clean_exit.py" "$SRC/python/tests"
