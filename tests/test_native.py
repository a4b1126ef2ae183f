"""`python -m rag.native` (run by `make setup`): the embedded runtime built for this CPU, or the prebuilt one kept.
No compiler runs here: the build and pip are replaced by recorders."""

import pytest

from rag import native

AVX2 = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | REPACK = 1 |"
AVX512 = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | REPACK = 1 |"


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """An AVX-512 CPU with the prebuilt wheel installed; pip calls are recorded, not run."""
    state = {"info": AVX2, "pip": [], "built": None, "builds": 0, "runs": [True]}
    monkeypatch.setenv("RAG_NATIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RAG_NATIVE_LLM", raising=False)
    monkeypatch.setattr(native, "cpu_flags", lambda: ["avx2", "avx512f", "fma"])
    monkeypatch.setattr(native, "system_info", lambda: state["info"])

    def build(pinned, target, options):
        state["builds"] += 1
        state["options"] = options
        return state["built"]

    def pip(*args):
        state["pip"].append(args)
        if args[0] == "install":
            state["info"] = state.get("after_install", AVX512) if str(state["built"]) in args else AVX2
        return 0

    monkeypatch.setattr(native, "build", build)
    # Whether the installed runtime serves a prompt, answer by answer (the real check runs the model).
    monkeypatch.setattr(native, "runs_the_model", lambda: state["runs"].pop(0))
    monkeypatch.setattr(native, "installed_record", lambda: tmp_path / "installed")

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


def test_an_installed_and_checked_build_is_left_alone(machine, tmp_path):
    machine["built"] = tmp_path / "xllamacpp-1-cp310-abi3-linux_x86_64.whl"
    assert native.main([]) == 0 and machine["builds"] == 1
    assert (tmp_path / "cache" / (tmp_path / "installed").read_text().strip() / "CHECKED").exists()
    machine["pip"].clear()
    assert native.main([]) == 0  # the record says which build is installed and that it served a prompt
    assert machine["pip"] == [] and machine["builds"] == 1


def test_a_failed_build_keeps_the_prebuilt_wheel(machine, capsys):
    machine["built"] = None
    assert native.main([]) == 0  # setup goes on
    assert machine["pip"] == []
    assert "keeping the prebuilt" in capsys.readouterr().err


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


def test_an_installed_build_without_a_record_is_checked_again(machine, tmp_path):
    machine["info"] = AVX512  # an earlier setup's build, never run on a prompt (the AMX crash passed import)
    machine["built"] = tmp_path / "xllamacpp-1-cp310-abi3-linux_x86_64.whl"
    assert native.main([]) == 0
    assert machine["pip"] == [("install", "--force-reinstall", "--no-deps", str(machine["built"]))]
    assert (tmp_path / "installed").is_file()


def test_a_build_that_crashes_on_its_first_prompt_gives_way_to_the_next_option(machine, tmp_path, monkeypatch,
                                                                               capsys):
    monkeypatch.setattr(native, "cpu_flags", lambda: ["avx2", "avx512f", "avx512_vnni", "amx_int8"])
    machine["built"] = tmp_path / "xllamacpp-1-cp310-abi3-linux_x86_64.whl"
    machine["built"].write_bytes(b"crashes")
    machine["runs"] = [False, True]  # the AMX build dies on its prompt; the build without AMX serves it
    assert native.main([]) == 0
    assert machine["builds"] == 2 and "-DGGML_AMX_INT8=OFF" in machine["options"]
    assert "failed its check" in capsys.readouterr().err
    failed = list(tmp_path.glob("cache/*/FAILED"))
    assert len(failed) == 1 and native.NO_DSE in failed[0].read_text()
    (tmp_path / "installed").unlink()  # say the record was lost: the crashing build is not built again
    machine["runs"] = [True]
    assert native.main([]) == 0 and machine["builds"] == 3 and "-DGGML_AMX_INT8=OFF" in machine["options"]
    assert "failed its check before" in capsys.readouterr().err


def test_when_every_build_fails_its_check_the_prebuilt_wheel_is_put_back(machine, tmp_path, capsys):
    machine["built"] = tmp_path / "xllamacpp-1-cp310-abi3-linux_x86_64.whl"
    machine["runs"] = [False]
    assert native.main([]) == 0
    assert machine["pip"][-1][-1].startswith("xllamacpp==") and machine["info"] == AVX2
    assert not (tmp_path / "installed").exists()
    assert "keeping the prebuilt" in capsys.readouterr().err


def test_a_cpu_with_amx_tries_amx_with_its_stores_kept_then_no_amx():
    amx, no_amx = native.build_options(["avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "amx_tile",
                                        "amx_int8"])
    assert native.NO_DSE in amx and "GGML_NATIVE=OFF" not in amx
    assert "-DGGML_NATIVE=OFF" in no_amx and "-DGGML_AMX_INT8=OFF" in no_amx and "-DGGML_AMX_TILE=OFF" in no_amx
    assert "-DGGML_AVX512=ON" in no_amx and "-DGGML_AVX512_VNNI=ON" in no_amx and "-DGGML_AVX2=ON" in no_amx
    assert "-DGGML_AVX512_BF16=OFF" in no_amx  # a feature the CPU lacks stays off
    assert native.build_options(["avx2", "avx512f", "avx512_vnni"]) == [native.CMAKE_ARGS]  # GGML_NATIVE


def test_the_cache_is_keyed_by_build_options(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_NATIVE_CACHE", str(tmp_path))
    amx, no_amx = native.build_options(["avx2", "avx512f", "amx_int8"])
    assert native.cache_dir("1.0", amx) != native.cache_dir("1.0", no_amx) != native.cache_dir("1.0")


def test_the_model_check_is_skipped_before_the_model_is_there(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_MODELS_DIR", str(tmp_path))
    assert native.runs_the_model() is None
