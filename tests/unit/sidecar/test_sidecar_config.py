"""Bad options fail at start-up with a message naming them."""

from __future__ import annotations

import pytest

from configkit import ConfigError
from sidecar.config import SidecarConfig, parse_args


def test_defaults_and_host_port_parsing() -> None:
    config, level = parse_args(["--kind", "mes", "--upstream", "http://127.0.0.1:9101/",
                                "--listen", "0.0.0.0:9200", "--dsn", "postgresql://u@h/mes"])
    assert (config.listen_host, config.listen_port, config.admin_port) == ("0.0.0.0", 9200, 9112)
    assert config.instance_id == "mes-1"
    assert config.probe_interval == 15.0
    assert level is None
    assert config.upstream_base == "http://127.0.0.1:9101"


@pytest.mark.parametrize(("overrides", "named"), [
    ({"kind": "erp"}, "--kind"),
    ({"upstream": "127.0.0.1:9101"}, "--upstream"),
    ({"upstream": "http://h:1/base"}, "--upstream"),
    ({"kind": "crm", "dsn": "postgresql://h/db"}, "--dsn"),
    ({"read_dsn": "postgresql://replica/db"}, "--read-dsn"),  # a replica of which primary?
    ({"probe_interval": 0}, "--probe-interval"),
    ({"response_timeout": -1}, "--timeout"),
])
def test_bad_settings_name_themselves(overrides: dict[str, object], named: str) -> None:
    settings: dict[str, object] = {"kind": "mes", "upstream": "http://127.0.0.1:9101", "instance_id": "m"}
    with pytest.raises(ConfigError, match=named):
        SidecarConfig(**{**settings, **overrides})  # type: ignore[arg-type]


def test_read_dsn_is_optional_and_names_the_replica_by_host_and_port_only() -> None:
    config, _ = parse_args(["--kind", "mes", "--upstream", "http://h:1", "--dsn", "postgresql://u@primary/mes",
                            "--read-dsn", "postgresql://u:secret@10.0.0.7:5433/mes"])
    assert config.read_dsn == "postgresql://u:secret@10.0.0.7:5433/mes"
    assert config.replica_name == "10.0.0.7:5433"
    assert parse_args(["--kind", "mes", "--upstream", "http://h:1"])[0].read_dsn is None


def test_bad_command_line_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(["--kind", "mes", "--upstream", "http://h:1", "--listen", "nonsense"])
    assert exc.value.code == 2
    assert "--listen" in capsys.readouterr().err
