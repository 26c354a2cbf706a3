"""Every scenario composes, validates against the schema and instantiates."""

from __future__ import annotations

import pytest

from myai.config import MyaiConfig, load_config, to_object
from myai.errors import ConfigError

SCENARIOS = ["production", "max_performance", "min_ram", "max_quality"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_composes_and_instantiates(scenario: str) -> None:
    cfg = load_config([f"scenario={scenario}"])
    obj = to_object(cfg)
    assert isinstance(obj, MyaiConfig)
    assert obj.scenario_name == scenario
    assert obj.context.chunk_overlap < obj.context.chunk_size
    assert obj.server.host == "127.0.0.1"
    # Everything in it instantiates: the store with its embedder, the backend auto-selection
    # (no model loaded: extractive keeps it cheap) and the Assistant over both.
    from myai import Assistant, ContextManager
    from myai.backends import select_backend

    with ContextManager.from_config(cfg, storage_dir=None) as cm:
        assert cm.chunk_size == obj.context.chunk_size
        assert (cm.embedder is None) == (obj.embedder.name.value == "none")
        b, _ = select_backend(load_config([f"scenario={scenario}",
                                                 "backend.name=extractive"]).backend)  # fmt: skip
        a = Assistant(cfg, context=cm, backend=b)
        assert a.history_limit == obj.assistant.conversation_history_limit
        assert a.ask("Hello!").intent == "greeting"


def test_default_is_production() -> None:
    assert load_config().scenario_name == "production"


def test_scenario_values() -> None:
    mr = to_object(load_config(["scenario=min_ram"]))
    assert (mr.context.max_tokens, mr.context.chunk_size) == (262144, 512)
    assert not mr.cache.enabled and mr.compression.strategy.value == "aggressive"
    assert mr.backend.quantization.value == "int4" and mr.embedder.quantization.value == "i8"
    mq = to_object(load_config(["scenario=max_quality"]))
    assert mq.context.max_tokens == 2097152 and mq.embedder.name.value == "minilm"
    assert mq.retrieval.rerank and mq.backend.temperature == 0.6
    mp = to_object(load_config(["scenario=max_performance"]))
    assert mp.cache.size_mb == 2000 and mp.context.chunk_size == 4096
    pr = to_object(load_config(["scenario=production"]))
    assert pr.context.max_tokens == 524288 and pr.backend.quantization.value == "int8"
    assert pr.assistant.conversation_history_limit == 10 and pr.backend.temperature == 0.7
    assert not mr.backend.internet and mr.backend.max_tokens == 2048
    assert mq.backend.max_tokens == 8192
    assert (
        mp.assistant.context_tokens < pr.assistant.context_tokens or not pr.assistant.context_tokens
    )


def test_internet_off_keeps_to_this_machine() -> None:
    from myai.backends import BackendUnavailable, make_backend, probe_backend

    cfg = load_config(["scenario=min_ram", "backend.host=http://10.1.2.3:11434",
                       "backend.base_url=https://api.example.com/v1"]).backend  # fmt: skip
    ok, why = probe_backend("ollama", cfg)
    assert not ok and "internet features are off" in why
    with pytest.raises(BackendUnavailable, match="not on this machine"):
        make_backend("openai", cfg)
    local = load_config(["scenario=min_ram", "backend.host=http://127.0.0.1:9"]).backend
    assert "internet" not in probe_backend("ollama", local)[1]


def test_overrides_apply_after_the_scenario() -> None:
    cfg = load_config(["scenario=min_ram", "context.max_tokens=100000", "retrieval.bm25.k1=0.9"])
    assert cfg.context.max_tokens == 100000
    assert cfg.retrieval.bm25.k1 == 0.9


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("context.foo=1", "foo"),
        ("contxt.max_tokens=5", "contxt"),
        ("context.max_tokens=lots", "lots"),
        ("backend.name=gpt5", "gpt5"),
        ("scenario=nope", "nope"),
        ("embedder.quantization=f64", "f64"),
    ],
)
def test_bad_keys_and_values_are_named(override: str, named: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config([override])
    assert named in str(e.value)


def test_data_dir_follows_myai_home(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("MYAI_HOME", str(tmp_path))
    cfg = load_config()
    assert cfg.data_dir == str(tmp_path)
    assert cfg.context.storage_dir == f"{tmp_path}/context_storage"


def test_min_ram_memory_maps_its_saved_vectors(tmp_path) -> None:
    from myai import ContextManager

    cfg = load_config(["scenario=min_ram"])
    assert cfg.embedder.memory_map and not load_config([]).embedder.memory_map
    store = tmp_path / "store"
    with ContextManager.from_config(cfg, storage_dir=store) as cm:
        cm.add_document("The heron nests by the old mill pond every spring.", "a.txt")
    with ContextManager.from_config(cfg, storage_dir=store) as cm:
        assert cm._vectors is not None and cm._vectors.read_only  # a view of the file
        assert "heron" in cm.search_context("where does the heron nest", top_k=1)[0]["text"]
        cm.add_document("Otters swim in the river below the bridge.", "b.txt")  # loads into RAM
        assert not cm._vectors.read_only
    with ContextManager.from_config(cfg, storage_dir=store) as cm:
        assert [h["document_name"] for h in cm.search_context("otters river", top_k=1)] == ["b.txt"]
