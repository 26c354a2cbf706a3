"""The cache of composed configurations: the same result as composing, invalidated by any change
of what it depends on, never in the way of validation, never holding the environment."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from myai import config
from myai.config import MyaiConfig, cache_dir, load_config
from myai.errors import ConfigError


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh MYAI_HOME, so a fresh cache."""
    monkeypatch.setenv("MYAI_HOME", str(tmp_path))
    monkeypatch.delenv("MYAI_CONFIG_CACHE", raising=False)
    return tmp_path


def entries() -> list[Path]:
    d = cache_dir()
    assert d is not None
    return sorted(d.glob("*.pickle")) if d.is_dir() else []


def no_compose(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hydra's compose fails from now on: a load that works came from the cache."""
    import hydra

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("composed")

    monkeypatch.setattr(hydra, "compose", boom)


def test_a_hit_is_what_composing_gives(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    over = ["scenario=min_ram", "context.max_tokens=100000"]
    fresh = load_config(over, cache=False)
    assert entries() == []
    first = load_config(over)
    assert len(entries()) == 1
    no_compose(monkeypatch)
    hit = load_config(over)
    assert OmegaConf.to_yaml(hit) == OmegaConf.to_yaml(first) == OmegaConf.to_yaml(fresh)
    assert OmegaConf.get_type(hit) is MyaiConfig and hit.context.max_tokens == 100000
    assert hit.embedder.quantization.value == "i8"  # the schema's enums, typed
    with pytest.raises(Exception, match="nope"):  # still the schema's struct
        hit.context.nope = 1
    with pytest.raises(Exception, match="lots"):
        hit.context.max_tokens = "lots"
    assert hit is not load_config(over)  # every load its own copy


def test_another_override_list_is_composed_and_validated(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_config(["context.max_tokens=5"])
    assert load_config(["context.max_tokens=6"]).context.max_tokens == 6
    assert len(entries()) == 2
    for bad, named in [("context.foo=1", "foo"), ("context.max_tokens=lots", "lots")]:
        with pytest.raises(ConfigError, match=named):
            load_config([bad])
        with pytest.raises(ConfigError, match=named):  # and again: a failure is not cached
            load_config(["context.max_tokens=5", bad])
    assert len(entries()) == 2


def test_a_changed_conf_file_is_composed_again(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(config.config_dir(), conf)
    monkeypatch.setattr(config, "config_dir", lambda: conf)
    assert load_config().context.max_tokens == 524288
    prod = conf / "scenario" / "production.yaml"
    prod.write_text(prod.read_text().replace("max_tokens: 524288", "max_tokens: 1000"))
    assert load_config().context.max_tokens == 1000
    (conf / "scenario" / "extra.yaml").write_text("# @package _global_\nscenario_name: extra\n")
    assert load_config(["scenario=extra"]).scenario_name == "extra"
    assert len(entries()) == 3


def test_the_environment_is_read_at_every_load(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYAI_OPENAI_API_KEY", "sk-first-secret")
    assert load_config().backend.api_key == "sk-first-secret"
    no_compose(monkeypatch)
    monkeypatch.setenv("MYAI_OPENAI_API_KEY", "sk-second-secret")
    other = home / "elsewhere"
    monkeypatch.setenv("MYAI_HOME", str(other))  # a cache of its own: copy the entry over
    shutil.copytree(home / "cache", other / "cache")
    cfg = load_config()
    assert cfg.backend.api_key == "sk-second-secret" and cfg.data_dir == str(other)
    for f in entries():
        assert b"secret" not in f.read_bytes()


def test_a_bad_entry_is_composed_again(home: Path) -> None:
    want = OmegaConf.to_yaml(load_config(["debug=true"]))
    (entry,) = entries()
    entry.write_bytes(b"not a pickle")
    assert OmegaConf.to_yaml(load_config(["debug=true"])) == want
    assert entry.read_bytes().startswith(config.CACHE_FORMAT)  # written again
    os.chmod(entry, 0o666)  # others could have written it: not trusted
    assert OmegaConf.to_yaml(load_config(["debug=true"])) == want
    assert entry.stat().st_mode & 0o022 == 0  # replaced by a private one


def test_the_cache_can_be_turned_off(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYAI_CONFIG_CACHE", "0")
    assert cache_dir() is None
    assert load_config().scenario_name == "production"
    assert not (home / "cache").exists()


def test_cli_misspelt_key_exits_2_beside_a_cached_config(cli, tmp_path: Path) -> None:
    ok = cli("--cfg", "job", "context.max_tokens=4096")
    assert ok.returncode == 0 and "max_tokens: 4096" in ok.stdout
    again = cli("--cfg", "job", "context.max_tokens=4096")  # from the cache
    assert again.returncode == 0 and again.stdout == ok.stdout
    for args, named in [
        (("stats", "context.max_tokns=4096"), "max_tokns"),
        (("stats", "context.max_tokens=4096", "context.chunk_size=big"), "big"),
    ]:
        r = cli(*args)
        assert r.returncode == 2 and named in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert len(list((tmp_path / "home" / "cache" / "config").glob("*.pickle"))) == 1
