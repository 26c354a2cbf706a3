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
