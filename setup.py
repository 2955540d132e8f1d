"""Builds the nixl_connect Python package with its C library inside.

The package is pure Python over ctypes; the wheel also carries
libnixl_connect.so, built here with CMake (the library target only), or
copied from an existing build when NIXL_CONNECT_BUILD_DIR names one. The
version is the C library's, from include/nixl_connect.h.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parent
LIBRARY = "libnixl_connect.so"


def c_version() -> str:
    header = (ROOT / "include" / "nixl_connect.h").read_text()
    parts = [re.search(rf"^#define NXC_VERSION_{k} +(\d+)\b", header, re.M).group(1)
             for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


class BuildWithLibrary(build_py):
    """build_py, then the C library next to the package's modules."""

    def run(self):
        super().run()
        dest = Path(self.build_lib) / "nixl_connect" / LIBRARY
        shutil.copyfile(self._library(), dest)   # the file, not the symlink

    def _library(self) -> Path:
        given = os.environ.get("NIXL_CONNECT_BUILD_DIR")
        if given:
            lib = Path(given) / LIBRARY
            if not lib.exists():
                raise SystemExit(f"NIXL_CONNECT_BUILD_DIR={given}: no {LIBRARY} there")
            return lib.resolve()
        build = Path(self.get_finalized_command("build").build_temp) / "cmake"
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build),
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DNXC_BUILD_TESTS=OFF",
                        "-DNXC_WITH_NATS=OFF"], check=True)
        subprocess.run(["cmake", "--build", str(build), "--target", "nixl_connect",
                        "-j2"], check=True)
        return (build / LIBRARY).resolve()


class BinaryDistribution(Distribution):
    """The wheel holds a compiled library: tag it for this platform."""

    def has_ext_modules(self):
        return True


setup(
    version=c_version(),
    package_dir={"": "python"},
    packages=["nixl_connect"],
    package_data={"nixl_connect": ["py.typed"]},
    cmdclass={"build_py": BuildWithLibrary},
    distclass=BinaryDistribution,
    options={"build": {"build_base": "build-python"}},
)
