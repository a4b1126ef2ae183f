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
    python -m rag.native --smoke    # serve one prompt with the installed runtime (setup's check of a build)
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
# On a CPU with AMX, GGML_NATIVE compiles llama.cpp's AMX matrix kernels, and GCC 12 (Debian's) drops the stores
# that fill their tile configuration (dead-store elimination does not see that `ldtilecfg` reads them): the first
# prompt dies of a general protection fault in ggml_backend_amx_mul_mat (seen on an Intel Xeon with AMX, 2026-11-23;
# a small C program using AMX ran fine there). `-fno-dse` keeps the stores, and AMX then processed prompts at
# 158-169 tokens/s against 104 without it (README, `rag bench speed`). Should that build still fail its check, the
# CPU's features are named one by one instead, AMX left out.
NO_DSE = "-DCMAKE_C_FLAGS=-fno-dse -DCMAKE_CXX_FLAGS=-fno-dse"
GGML_FEATURES = {"sse4_2": "GGML_SSE42", "avx": "GGML_AVX", "avx2": "GGML_AVX2", "fma": "GGML_FMA",
                 "f16c": "GGML_F16C", "bmi2": "GGML_BMI2", "avx_vnni": "GGML_AVX_VNNI", "avx512f": "GGML_AVX512",
                 "avx512vbmi": "GGML_AVX512_VBMI", "avx512_vnni": "GGML_AVX512_VNNI",
                 "avx512_bf16": "GGML_AVX512_BF16"}
CHECKED, FAILED = "CHECKED", "FAILED"  # markers in a build's cache folder: it served a prompt / it crashed


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(line.split(":", 1)[1].split())
    except OSError:
        pass
    return []


def build_options(flags: list[str]) -> list[str]:
    """The CMake arguments to try, best first: GGML_NATIVE; on a CPU with AMX, with -fno-dse, then without AMX."""
    if "amx_int8" not in flags:
        return [CMAKE_ARGS]
    named = " ".join(f"-D{option}={'ON' if flag in flags else 'OFF'}" for flag, option in GGML_FEATURES.items())
    return [f"{CMAKE_ARGS} {NO_DSE}",
            f"{CMAKE_ARGS} -DGGML_NATIVE=OFF {named} -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"]


def cache_dir(pinned: str, options: str = CMAKE_ARGS) -> Path:
    """Keyed by version, CPU flags and build options: a wheel built for one CPU can crash on another."""
    root = Path(os.environ.get("RAG_NATIVE_CACHE") or
                Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-native")
    key = hashlib.sha256(f"{' '.join(cpu_flags())}|{options}".encode()).hexdigest()[:12]
    return root / f"{PACKAGE}-{pinned}-cpu-{key}"


def installed_record() -> Path:
    """Which cached build this environment installed and checked (its cache folder's name)."""
    return Path(sys.prefix) / "rag-native-installed"


def system_info() -> str | None:
    """The installed runtime's CPU features, read in a child process: a wheel built for another CPU dies there
    (illegal instruction), not here."""
    proc = subprocess.run([sys.executable, "-c", f"import {PACKAGE}; print({PACKAGE}.get_system_info())"],
                          capture_output=True, text=True, timeout=120)
    return proc.stdout.strip() if proc.returncode == 0 else None


def runs_the_model(timeout_s: float = 300) -> bool | None:
    """Whether the installed runtime serves a real prompt, in a child process (a crash kills the child, not
    setup): True, False, or None when the model file is not there yet to try."""
    from rag.settings import Settings

    if not Settings().embedded_llm_path.is_file():
        return None
    try:
        proc = subprocess.run([sys.executable, "-m", "rag.native", "--smoke"], capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and "smoke: ok" in proc.stdout


def smoke() -> int:
    """Load the embedded model and process a prompt long enough for batched matrix kernels (the AMX crash above
    needed one), then generate a few tokens."""
    import httpx

    from rag.llm import EmbeddedServer
    from rag.settings import Settings

    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="rag-native-smoke-") as lock_dir:  # never join a running app's server
        server = EmbeddedServer(settings.embedded_llm_path, 1024, settings.threads, slots=1, lock_dir=Path(lock_dir))
        root = server.ensure().removesuffix("/v1")
        prompt = "Count from one to forty in words: " + ", ".join(["one", "two", "three", "four"] * 12)
        reply = httpx.post(f"{root}/completion", json={"prompt": prompt, "n_predict": 4, "cache_prompt": False,
                                                        "temperature": 0.0}, timeout=240).json()
    ok = reply.get("timings", {}).get("prompt_n", 0) >= 64
    print("smoke: ok" if ok else f"smoke: unexpected reply {str(reply)[:200]}")
    return 0 if ok else 1


def is_native(info: str | None) -> bool:
    """A native build on an AVX-512 CPU lists AVX512; the prebuilt one stops at AVX2."""
    return bool(info) and "AVX512 = 1" in info


def pip(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "pip", "-q", *args])


def build(pinned: str, target: Path, options: str = CMAKE_ARGS) -> Path | None:
    wheels = sorted(target.glob(f"{PACKAGE}-*.whl"))
    if wheels:
        return wheels[-1]
    print(f"native-llm: building {PACKAGE}=={pinned} for this CPU (about 7 minutes on 2 cores, once per machine) ...",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="rag-native-") as tmp:
        src = Path(tmp) / "src"
        if pip("download", f"{PACKAGE}=={pinned}", "--no-deps", "--no-binary", ":all:", "-d", str(src)):
            return None
        env = {**os.environ, "CMAKE_ARGS": f"{options} {os.environ.get('CMAKE_ARGS', '')}".strip(),
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
    parser.add_argument("--smoke", action="store_true", help="serve one prompt with the installed runtime")
    args = parser.parse_args(argv)
    if args.smoke:
        return smoke()
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
              f"cache {cache_dir(pinned).parent}\n{info}")
        return 0
    if os.environ.get("RAG_NATIVE_LLM", "1") == "0":
        print("native-llm: RAG_NATIVE_LLM=0: keeping the prebuilt wheel")
        return 0
    # Measured on an AVX2-only AMD EPYC: a build for it took 17 minutes and processed prompts 5% faster (42.9 and
    # 39.0 tokens/s against 40.9 and 37.0), not worth the wait.
    if "avx512f" not in cpu_flags():
        print("native-llm: this CPU has no AVX-512, which the prebuilt wheel's AVX2 build already serves: kept")
        return 0
    record = installed_record()
    installed = record.read_text().strip() if is_native(info) and record.is_file() else None
    replaced = is_native(info)  # the prebuilt wheel is not what is installed
    for options in build_options(cpu_flags()):
        target = cache_dir(pinned, options)
        if installed == target.name:
            print(f"native-llm: {PACKAGE}=={pinned} built for this CPU is installed")
            return 0
        if (target / FAILED).exists():
            print(f"native-llm: the build {target.name} failed its check before; delete {target / FAILED} to "
                  "try it again", file=sys.stderr)
            continue
        wheel = build(pinned, target, options)
        if wheel is None:
            continue
        replaced = True
        if pip("install", "--force-reinstall", "--no-deps", str(wheel)):
            continue
        ran = runs_the_model() if is_native(system_info()) else False  # it must serve a prompt, not only import
        if ran is False:
            print(f"native-llm: warning: the build {target.name} failed its check (CMAKE_ARGS={options}); "
                  f"removing {wheel}", file=sys.stderr)
            wheel.unlink(missing_ok=True)
            mark(target, FAILED, f"{PACKAGE}=={pinned} built with CMAKE_ARGS={options} crashed on import or on "
                                 "its first prompt")
            continue
        if ran:  # None: no model file yet to try it on; the next setup checks it
            mark(target, CHECKED, "served a prompt")
            record.write_text(target.name + "\n")
        print(f"native-llm: {PACKAGE}=={pinned} built for this CPU is installed")
        return 0
    print(f"native-llm: warning: keeping the prebuilt {PACKAGE}=={pinned} (slower prompt processing)",
          file=sys.stderr)
    if replaced:
        put_back_prebuilt(pinned)
    return 0


def mark(target: Path, marker: str, why: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    (target / marker).write_text(why + "\n")


def put_back_prebuilt(pinned: str) -> None:
    installed_record().unlink(missing_ok=True)
    pip("install", "--force-reinstall", "--no-deps", "--only-binary", ":all:", f"{PACKAGE}=={pinned}")


if __name__ == "__main__":
    sys.exit(main())
