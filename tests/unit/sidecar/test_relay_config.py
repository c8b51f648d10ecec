"""Relay options: parsed from the sidecar's command line, bad values name themselves."""

from __future__ import annotations

import pytest

from configkit import ConfigError
from sidecar.config import parse_args
from sidecar.relay import RelayConfig

BASE = ["--kind", "mes", "--upstream", "http://127.0.0.1:9101", "--instance-id", "mes-2"]


def test_relay_is_off_without_its_redis_url() -> None:
    config, _ = parse_args(BASE)
    assert config.relay is None


def test_relay_options_and_defaults() -> None:
    config, _ = parse_args([*BASE, "--relay-redis-url", "redis://127.0.0.1:6379/0",
                            "--relay-max-in-flight", "2", "--relay-timeout", "3"])
    relay = config.relay
    assert relay is not None
    assert (relay.consumer, relay.group, relay.stream) == ("mes-2", "mes-relay", "crm:orders")
    assert (relay.min_in_flight, relay.initial_in_flight, relay.max_in_flight) == (1, 2, 2)
    assert relay.delivery_timeout == 3.0
    assert relay.dead_letter_stream == "crm:orders:dead"


@pytest.mark.parametrize(("argv", "named"), [
    (["--relay-max-in-flight", "0"], "--relay-max-in-flight"),
    (["--relay-timeout", "90"], "--relay-timeout"),  # must be shorter than --relay-reclaim-idle
    (["--relay-backoff-max", "0.1"], "--relay-backoff-max"),
    (["--relay-failure-threshold", "0"], "--relay-failure-threshold"),
])
def test_bad_relay_options_exit_2_naming_them(argv: list[str], named: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args([*BASE, "--relay-redis-url", "redis://h:1/0", *argv])
    assert exc.value.code == 2
    assert named in capsys.readouterr().err


def test_relay_is_for_the_mes_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--kind", "crm", "--upstream", "http://h:1", "--relay-redis-url", "redis://h:1/0"])
    assert "--relay-redis-url" in capsys.readouterr().err


def test_config_checks_itself() -> None:
    with pytest.raises(ConfigError, match=r"^--relay-consumer: must not be empty$"):
        RelayConfig(redis_url="redis://h/0", consumer="")


CLUSTER = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"


@pytest.mark.parametrize(("dead_letter_stream", "named"), [
    ("crm:orders:dead", "--relay-dead-letter-stream"),  # hashes elsewhere than crm:orders
    ("crm:orders:dead:{crm:orders}", "--relay-status-stream"),  # the default status stream does too
])
def test_on_a_cluster_the_relays_streams_must_share_the_queues_slot(
        dead_letter_stream: str, named: str) -> None:
    with pytest.raises(ConfigError, match=f"^{named}: must hash to the slot of 'crm:orders'"):
        RelayConfig(redis_url=CLUSTER, consumer="c", dead_letter_stream=dead_letter_stream)


def test_tagged_stream_names_run_on_a_cluster_and_any_names_on_one_redis() -> None:
    config, _ = parse_args([*BASE, "--relay-redis-url", CLUSTER,
                            "--relay-dead-letter-stream", "crm:orders:dead:{crm:orders}",
                            "--relay-status-stream", "crm:orders:status:{crm:orders}"])
    assert config.relay is not None
    assert config.relay.dead_letter_stream == "crm:orders:dead:{crm:orders}"
    assert RelayConfig(redis_url=CLUSTER, consumer="c", dead_letter_stream="{crm:orders}:dead",
                       status_stream="").status_stream == ""
    assert RelayConfig(redis_url="redis://h/0", consumer="c").dead_letter_stream == "crm:orders:dead"
