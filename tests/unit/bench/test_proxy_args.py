"""bench.proxy's command line: where the steady rate comes from, and which checkout's gateway runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import gateway, proxy


def test_by_default_every_variant_runs_including_the_bare_proxy_on_the_gateways_client() -> None:
    args = proxy.parse_args([])

    assert "bare-http1" in args.only
    assert args.steady_rate is None


def test_the_steady_shape_needs_bare_aiohttp_at_saturation_or_an_explicit_rate() -> None:
    with pytest.raises(SystemExit):
        proxy.parse_args(["--only", "direct,gateway-1p"])
    with pytest.raises(SystemExit):
        proxy.parse_args(["--shapes", "steady"])

    args = proxy.parse_args(["--shapes", "steady", "--steady-rate", "1500"])

    assert args.steady_rate == 1500.0


def test_tree_must_be_a_checkout_with_a_gateway(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        proxy.parse_args(["--tree", str(tmp_path)])
    (tmp_path / "gateway").mkdir()

    assert proxy.parse_args(["--tree", str(tmp_path)]).tree == tmp_path.resolve()


def test_the_tree_comes_first_on_the_gateways_import_path(tmp_path: Path) -> None:
    assert gateway.tree_env(tmp_path)["PYTHONPATH"] == str(tmp_path)
