"""all-MiniLM-L6-v2 as an ONNX graph run by onnxruntime: the fast ``minilm`` runtime.

The graph is built here, operator by operator with ``onnx.helper``, from the safetensors
weights (nothing is downloaded): the BERT embeddings, the encoder layers and the
sentence-transformers mean pooling, so one call takes padded ids and their mask and returns
the pooled (not yet normalised) vectors, as ``embedders._Bert.pooled`` does in numpy.

Variants (``VARIANTS``): ``f32``, the same arithmetic as the numpy runtime (cosine to it above
0.9999), and ``int8``, its MatMul weights dynamically quantised to int8 per channel by
``onnxruntime.quantization.quantize_dynamic``.

The ``.onnx`` files are cached beside the model folder, under ``models/onnx/``, named by the
weights' SHA-256, the variant and ``GRAPH_VERSION``; each is written atomically with a JSON
sidecar holding its own SHA-256, so a damaged or partial file is built again, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from myai._files import atomic_write, sha256_file

__all__ = ["GRAPH_VERSION", "VARIANTS", "OnnxBert", "build_graph", "onnx_model_path"]

log = logging.getLogger("myai.embedders")

# Bumped when the graph changes, so that cached files are built again.
GRAPH_VERSION = 2
VARIANTS = ("f32", "int8")
OPSET = 17  # LayerNormalization

F32 = npt.NDArray[np.float32]


def build_graph(weights: dict[str, np.ndarray], heads: int = 12) -> Any:
    """The ``onnx.ModelProto`` of BertModel + mean pooling for these weights.

    Inputs ``input_ids`` and ``attention_mask`` (int64, batch × seq); output ``pooled``
    (float32, batch × hidden): the mean of the last hidden states over the mask.
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []
    counter = [0]

    def const(name: str, value: Any, dtype: Any = np.float32) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def w(key: str) -> np.ndarray:
        return np.asarray(weights[key], dtype=np.float32)

    def op(kind: str, inputs: list[str], name: str = "", **attrs: Any) -> str:
        counter[0] += 1
        out = name or f"{kind.lower()}_{counter[0]}"
        nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str) -> str:
        # Stored (out, in): the graph multiplies by the (in, out) transpose.
        wt = const(prefix + ".weight", w(prefix + ".weight").T)
        b = const(prefix + ".bias", w(prefix + ".bias"))
        return op("Add", [op("MatMul", [x, wt], name=prefix + ".matmul"), b])

    def layer_norm(x: str, prefix: str) -> str:
        g = const(prefix + ".weight", w(prefix + ".weight"))
        b = const(prefix + ".bias", w(prefix + ".bias"))
        return op("LayerNormalization", [x, g, b], axis=-1, epsilon=1e-12)

    e = "embeddings."
    dim = int(weights[e + "word_embeddings.weight"].shape[1])
    dh = dim // heads
    word = const("word_embeddings", w(e + "word_embeddings.weight"))
    # Position and token-type-0 rows summed once: every input is a single segment.
    pos = const(
        "position_type0_embeddings",
        w(e + "position_embeddings.weight") + w(e + "token_type_embeddings.weight")[0],
    )
    i64 = np.int64
    zero, one, two = (const(f"i{v}", [v], i64) for v in (0, 1, 2))
    seq = op("Shape", ["input_ids"], start=1, end=2)
    x = op("Add", [op("Gather", [word, "input_ids"]), op("Slice", [pos, zero, seq, zero])])
    x = layer_norm(x, e + "LayerNorm")
    maskf = op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    # Padding keys score -1e9 lower: exp() of that is exactly 0 in float32, as in numpy.
    bias = op("Mul", [op("Sub", [maskf, const("one_f", 1.0)]), const("big", 1e9)])
    bias = op("Unsqueeze", [bias, const("axes_1_2", [1, 2], i64)])  # (b, 1, 1, n)
    heads_shape = const("heads_shape", [0, 0, heads, dh], i64)
    merge_shape = const("merge_shape", [0, 0, dim], i64)
    scale = const("scale", 1.0 / math.sqrt(dh))
    sqrt2 = const("sqrt2", math.sqrt(2.0))
    half = const("half", 0.5)
    one_f = "one_f"
    i = 0
    while f"encoder.layer.{i}.attention.self.query.weight" in weights:
        p = f"encoder.layer.{i}."
        q = op("Reshape", [linear(x, p + "attention.self.query"), heads_shape])
        k = op("Reshape", [linear(x, p + "attention.self.key"), heads_shape])
        v = op("Reshape", [linear(x, p + "attention.self.value"), heads_shape])
        q = op("Transpose", [q], perm=[0, 2, 1, 3])  # (b, h, n, dh)
        k = op("Transpose", [k], perm=[0, 2, 3, 1])  # (b, h, dh, n)
        v = op("Transpose", [v], perm=[0, 2, 1, 3])
        s = op("Add", [op("Mul", [op("MatMul", [q, k]), scale]), bias])
        ctx = op("MatMul", [op("Softmax", [s], axis=-1), v])
        ctx = op("Reshape", [op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        x = layer_norm(
            op("Add", [x, linear(ctx, p + "attention.output.dense")]),
            p + "attention.output.LayerNorm",
        )
        up = linear(x, p + "intermediate.dense")
        # BERT's exact GELU, x * (1 + erf(x / sqrt 2)) / 2: onnxruntime fuses the pattern.
        gelu = op(
            "Mul", [op("Mul", [up, op("Add", [op("Erf", [op("Div", [up, sqrt2])]), one_f])]), half]
        )
        x = layer_norm(op("Add", [x, linear(gelu, p + "output.dense")]), p + "output.LayerNorm")
        i += 1
    m3 = op("Unsqueeze", [maskf, two])  # (b, n, 1)
    total = op("ReduceSum", [op("Mul", [x, m3]), one], keepdims=0)
    count = op("Max", [op("ReduceSum", [m3, one], keepdims=0), const("tiny", 1e-9)])
    nodes.append(helper.make_node("Div", [total, count], ["pooled"], name="pooled"))
    graph = helper.make_graph(
        nodes,
        "minilm_mean_pooled",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", dim])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="myai"
    )
    model.ir_version = 8  # readable by onnxruntime releases from 1.10 on
    return model


def onnx_model_path(model_dir: Path, variant: str = "f32") -> Path:
    """The cached ``.onnx`` of ``variant`` for the weights in ``model_dir``, built (and written
    atomically) when missing, damaged or made from other weights."""
    if variant not in VARIANTS:
        raise ValueError(f"onnx variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    model_dir = Path(model_dir)
    weights_path = model_dir / "model.safetensors"
    key = sha256_file(weights_path)
    cache = model_dir.parent / "onnx"
    cache.mkdir(parents=True, exist_ok=True)
    stem = f"{model_dir.name}-{key[:16]}-{variant}-g{GRAPH_VERSION}"
    path, meta_path = cache / f"{stem}.onnx", cache / f"{stem}.json"
    want = {"weights_sha256": key, "variant": variant, "graph_version": GRAPH_VERSION}
    if _cache_ok(path, meta_path, want):
        return path
    t0 = time.perf_counter()
    data = _build_bytes(model_dir, variant)
    atomic_write(path, data)
    meta = {
        **want,
        "onnx_sha256": hashlib.sha256(data).hexdigest(),
        "build_seconds": round(time.perf_counter() - t0, 2),
    }
    atomic_write(meta_path, json.dumps(meta, indent=1).encode())
    log.info("built %s in %.1f s", path.name, meta["build_seconds"])
    return path


def _cache_ok(path: Path, meta_path: Path, want: dict[str, Any]) -> bool:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in want.items()):
            return False
        return bool(meta.get("onnx_sha256") == sha256_file(path))
    except (OSError, ValueError):
        return False


def _build_bytes(model_dir: Path, variant: str) -> bytes:
    from myai.embedders import read_safetensors

    model = build_graph(read_safetensors(model_dir / "model.safetensors"))
    data: bytes = model.SerializeToString()
    if variant == "int8":
        data = _quantize_int8(data)
    return data


def _quantize_int8(f32: bytes) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="myai-onnx-") as tmp:
        src, dst = Path(tmp) / "f32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(f32)
        # Only the MatMuls: the embedding tables stay float (a Gather gains nothing from int8).
        quantize_dynamic(
            src, dst, per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"]
        )
        return dst.read_bytes()


class OnnxBert:
    """An onnxruntime session of the cached graph: ``pooled(ids, mask)`` like ``_Bert``'s."""

    def __init__(self, model_dir: Path, variant: str = "f32", threads: int = 0) -> None:
        from myai import _preload

        if "onnxruntime" not in sys.modules and _preload.TOO_LATE:
            # Loading it now would crash the process (see vectors._usearch_index).
            raise ImportError(
                "onnxruntime cannot be loaded after usearch in one process (their C++ "
                "runtimes clash): create the embedder before the first vector index"
            )
        import onnxruntime as ort

        path = onnx_model_path(model_dir, variant)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.variant = variant
        self.session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def pooled(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> F32:
        out = self.session.run(
            ["pooled"],
            {
                "input_ids": ids.astype(np.int64, copy=False),
                "attention_mask": mask.astype(np.int64),
            },
        )[0]
        return np.asarray(out, dtype=np.float32)
