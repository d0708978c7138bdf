"""llama.cpp's own programs (llama-bench, llama-speculative-simple), built once from the source
of the llama.cpp that the installed llama-cpp-python vendors, into ~/.cache/reflectchat-bench/:

    pip download --no-deps --no-binary :all: llama-cpp-python==VERSION
    cmake -S llama_cpp_python-VERSION/vendor/llama.cpp -B build -DLLAMA_CURL=OFF
    cmake --build build --target TARGET

A few minutes on 2 cores for the first target; the next reuses the build folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import llama_cpp

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "reflectchat-bench"


def build_native(target: str) -> Path:
    """The program `target` from the installed llama-cpp-python's vendored llama.cpp."""
    version = llama_cpp.__version__
    root = CACHE / f"llama.cpp-{version}"
    binary = root / "build" / "bin" / target
    if binary.exists():
        return binary
    root.mkdir(parents=True, exist_ok=True)
    if not list(root.glob("llama_cpp_python-*.tar.gz")):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", f"llama-cpp-python=={version}", "-d",
                        str(root)], check=True)
    [sdist] = root.glob("llama_cpp_python-*.tar.gz")
    source = root / sdist.name.removesuffix(".tar.gz") / "vendor" / "llama.cpp"
    if not source.exists():
        with tarfile.open(sdist) as archive:
            members = [m for m in archive.getmembers() if "/vendor/llama.cpp/" in m.name
                       and "/vendor/llama.cpp/models/" not in m.name]
            archive.extractall(root, members, filter="data")
    if not (root / "build" / "CMakeCache.txt").exists():
        subprocess.run(["cmake", "-S", str(source), "-B", str(root / "build"),
                        "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF",
                        "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_SERVER=OFF"], check=True)
    subprocess.run(["cmake", "--build", str(root / "build"), "--target", target,
                    "-j", str(os.cpu_count() or 2)], check=True)
    return binary
