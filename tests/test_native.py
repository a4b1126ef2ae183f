"""`python -m rag.native` (run by `make setup`): the embedded runtime built for this CPU, or the prebuilt one kept.
No compiler runs here: the build and pip are replaced by recorders."""

import pytest

from rag import native

AVX2 = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | REPACK = 1 |"
AVX512 = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | REPACK = 1 |"


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """An AVX-512 CPU with the prebuilt wheel installed; pip calls are recorded, not run."""
    state = {"info": AVX2, "pip": [], "built": None}
    monkeypatch.setenv("RAG_NATIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RAG_NATIVE_LLM", raising=False)
    monkeypatch.setattr(native, "cpu_flags", lambda: ["avx2", "avx512f", "fma"])
    monkeypatch.setattr(native, "system_info", lambda: state["info"])
    monkeypatch.setattr(native, "build", lambda pinned, target: state["built"])

    def pip(*args):
        state["pip"].append(args)
        if args[0] == "install" and str(state["built"]) in args:
            state["info"] = state.get("after_install", AVX512)
        return 0

    monkeypatch.setattr(native, "pip", pip)
    return state


def test_the_cache_is_keyed_by_version_and_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "cpu_flags", lambda: ["avx2", "avx512f"])
    here = native.cache_dir("1.0")
    monkeypatch.setattr(native, "cpu_flags", lambda: ["avx2"])
    assert native.cache_dir("1.0") != here  # a wheel built for one CPU can crash on another
    assert native.cache_dir("1.1") != native.cache_dir("1.0")
    assert here.parent == tmp_path


def test_only_a_build_listing_avx512_counts_as_native():
    assert native.is_native(AVX512) and not native.is_native(AVX2) and not native.is_native(None)


def test_a_built_wheel_is_installed_and_checked(machine, tmp_path, capsys):
    machine["built"] = tmp_path / "xllamacpp-1-cp310-abi3-linux_x86_64.whl"
    assert native.main([]) == 0
    assert machine["pip"] == [("install", "--force-reinstall", "--no-deps", str(machine["built"]))]
    assert "built for this CPU is installed" in capsys.readouterr().out


def test_an_installed_native_build_is_left_alone(machine):
    machine["info"] = AVX512
    assert native.main([]) == 0
    assert machine["pip"] == []


def test_a_failed_build_keeps_the_prebuilt_wheel(machine, capsys):
    machine["built"] = None
    assert native.main([]) == 0  # setup goes on
    assert machine["pip"] == []
    assert "keeping the prebuilt wheel" in capsys.readouterr().err


def test_a_built_wheel_that_fails_its_check_is_replaced_by_the_prebuilt_one(machine, tmp_path, capsys):
    machine["built"] = tmp_path / "xllamacpp-1-cp310-abi3-linux_x86_64.whl"
    machine["built"].write_bytes(b"broken")
    machine["after_install"] = None  # the import dies in the child process
    assert native.main([]) == 0
    assert machine["pip"][-1][:3] == ("install", "--force-reinstall", "--no-deps")
    assert machine["pip"][-1][-1].startswith("xllamacpp==")
    assert not machine["built"].exists()  # not reused by the next setup
    assert "failed its check" in capsys.readouterr().err


def test_opting_out_or_a_cpu_without_avx512_builds_nothing(machine, monkeypatch):
    machine["built"] = "must not be used"
    monkeypatch.setenv("RAG_NATIVE_LLM", "0")
    assert native.main([]) == 0 and machine["pip"] == []
    monkeypatch.delenv("RAG_NATIVE_LLM")
    monkeypatch.setattr(native, "cpu_flags", lambda: ["avx2", "fma"])
    assert native.main([]) == 0 and machine["pip"] == []


def test_a_half_copied_wheel_in_the_cache_is_not_reused(monkeypatch, tmp_path):
    (tmp_path / "xllamacpp-1-cp310-abi3-linux_x86_64.whl.partial").write_bytes(b"half")
    calls = []
    monkeypatch.setattr(native, "pip", lambda *args: calls.append(args) or 1)  # the download fails
    assert native.build("1", tmp_path) is None
    assert calls and calls[0][0] == "download"
