"""``python -m myai bench`` run for real in a subprocess, for every scenario."""

from __future__ import annotations

import json

import pytest

SCENARIOS = ["min_ram", "production", "max_performance", "max_quality"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_bench_measures_a_scenario(cli, scenario: str) -> None:
    r = cli("bench", "--json", "--no-quality", "--questions", "2", f"scenario={scenario}",
            "backend.name=extractive")  # fmt: skip
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["scenario"] == scenario and row["backend"] == "extractive:extractive"
    assert row["tokens"] > 150_000 and row["peak_rss_mb"] > 10
    assert row["needles_top5"] == 1.0 and row["answers_right"] == 1.0
    assert row["search_p99_us"] >= row["search_p50_us"] > 0
    assert "ndcg@10" not in row
    # The broad latency questions pack context within the scenario's budget.
    budget = {"min_ram": 512, "production": 1024, "max_performance": 256, "max_quality": 2048}
    assert 0 < row["latency_context_tokens"] <= budget[scenario]
    assert row["latency_p50_ms"] >= row["latency_ttft_p50_ms"] > 0


def test_bench_all_prints_the_table_and_the_promises(cli) -> None:
    r = cli("bench", "--all", "--questions", "1", "backend.name=extractive",
            "context.max_tokens=262144")  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["scenario", "RSS", "MB"]
    assert [ln.split()[0] for ln in lines[1:5]] == SCENARIOS
    assert "nDCG@10" in lines[0] and "quality set: " in r.stdout
    for promise in ("min_ram has the lowest peak RSS", "max_performance answers fastest",
                    "max_quality retrieves best"):  # fmt: skip
        assert promise in r.stdout


def test_bench_bad_arguments(cli) -> None:
    r = cli("bench", "--questions", "0")
    assert r.returncode == 2 and "at least 1" in r.stderr
