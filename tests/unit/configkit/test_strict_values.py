"""The kit's checks: strict numbers, the one message format, unknown keys naming the allowed ones."""

from __future__ import annotations

import math
from typing import Any

import pytest

from configkit import ConfigError, Section, integer, number, within


@pytest.mark.parametrize(("value", "shown"), [
    (8080.7, "8080.7"),      # no truncation to 8080
    (8080.0, "8080.0"),      # a float is not an integer, even a whole one
    (True, "true"),          # YAML true is not 1
    ("8080", "'8080'"),      # a quoted number is a string
    (None, "null"),
    ([8080], "a list"),
])
def test_an_integer_setting_takes_a_yaml_integer_only(value: Any, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        integer(value, "listeners.external.port", minimum=0, maximum=65535)
    assert str(info.value) == f"listeners.external.port: expected an integer, got {shown}"


@pytest.mark.parametrize(("value", "shown"), [
    (True, "true"), ("1.5", "'1.5'"), (math.nan, "nan"), (math.inf, "inf"), ({"s": 1}, "a mapping"),
])
def test_a_number_setting_takes_a_finite_int_or_float_only(value: Any, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        number(value, "clusters.mes.timeouts.connect", above=0)
    assert str(info.value) == f"clusters.mes.timeouts.connect: expected a number, got {shown}"


def test_numbers_keep_their_value_and_ints_widen_to_float() -> None:
    assert integer(8080, "p", minimum=0, maximum=65535) == 8080
    assert number(2, "t", above=0) == 2.0
    assert isinstance(number(2, "t", above=0), float)


@pytest.mark.parametrize(("check", "message"), [
    (lambda: integer(70000, "admin.port", minimum=0, maximum=65535),
     "admin.port: must be <= 65535, got 70000"),
    (lambda: integer(-1, "routes[1].max_body_bytes", minimum=0),
     "routes[1].max_body_bytes: must be >= 0, got -1"),
    (lambda: number(0, "cache.socket_timeout", above=0), "cache.socket_timeout: must be > 0, got 0"),
    (lambda: number(1.0, "jitter", minimum=0, below=1), "jitter: must be < 1, got 1.0"),
    (lambda: number(0.001, "ratelimit.socket_timeout", minimum=0.005),
     "ratelimit.socket_timeout: must be >= 0.005, got 0.001"),
])
def test_a_value_out_of_range_names_the_bound_and_the_value(check: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check()
    assert str(info.value) == message


def test_an_unknown_key_names_the_allowed_ones_and_a_close_match() -> None:
    with pytest.raises(ConfigError) as info:
        Section({"intervall": 2}, "clusters.mes.health_check", {"interval", "path", "timeout"})
    assert str(info.value) == ("clusters.mes.health_check: unknown key 'intervall' "
                               "(allowed: interval, path, timeout); did you mean 'interval'?")


def test_a_field_check_is_named_under_its_section() -> None:
    with pytest.raises(ConfigError) as info, within("clusters.mes"), within("outlier"):
        integer(0, "consecutive_failures", minimum=1)
    assert str(info.value) == "clusters.mes.outlier.consecutive_failures: must be >= 1, got 0"
    assert (info.value.path, info.value.problem) == ("clusters.mes.outlier.consecutive_failures",
                                                     "must be >= 1, got 0")
    assert str(ConfigError("x", "p").under("routes[0]")) == "routes[0].x: p"
    assert str(ConfigError("[2]", "p").under("routes")) == "routes[2]: p"


def test_null_means_absent_only_where_the_default_is_none() -> None:
    section = Section({"access_log": None, "port": None}, "logging", {"access_log", "port"})
    assert section.text("access_log", None) is None
    with pytest.raises(ConfigError, match=r"^logging\.port: expected an integer, got null$"):
        section.integer("port", 9901)
