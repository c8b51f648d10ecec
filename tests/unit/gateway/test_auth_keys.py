"""API keys: format, keyed hashing, constant-time verification, revocation, CLI round trip."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from gateway.api_keys import main
from gateway.auth.api_keys import ApiKeyStore, key_hash, resolve_pepper, split_key

PEPPER = b"unit-test-pepper-0123456789"


def test_created_key_verifies_and_only_its_hmac_is_stored(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "k.json", PEPPER)
    plain, record = store.create(partner="acme", tier="gold", scopes=("orders:write", "orders:read"))
    assert plain.startswith(f"mes_{record.key_id}_")
    assert split_key(plain) is not None
    assert record.hash == key_hash(PEPPER, plain)
    assert record.scopes == ("orders:read", "orders:write")
    text = (tmp_path / "k.json").read_text()
    assert plain not in text
    assert plain.split("_", 2)[2] not in text
    assert stat.S_IMODE((tmp_path / "k.json").stat().st_mode) == 0o600
    assert ApiKeyStore(tmp_path / "k.json", PEPPER).verify(plain)[0] == record


@pytest.mark.parametrize("mangle", [lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),
                                    lambda k: k.replace("mes_", "xyz_"), lambda k: "", lambda k: "mes_ab_c"])
def test_tampered_or_malformed_keys_are_invalid(tmp_path: Path, mangle) -> None:
    store = ApiKeyStore(tmp_path / "k.json", PEPPER)
    plain, _ = store.create(partner="acme", tier="gold", scopes=("orders:read",))
    assert store.verify(mangle(plain)) == (None, "invalid")


def test_another_pepper_does_not_verify_the_same_store(tmp_path: Path) -> None:
    plain, _ = ApiKeyStore(tmp_path / "k.json", PEPPER).create(partner="a", tier="t", scopes=())
    assert ApiKeyStore(tmp_path / "k.json", b"another-pepper-0123456").verify(plain) == (None, "invalid")


def test_revoked_key_is_refused_and_other_keys_of_the_partner_still_work(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "k.json", PEPPER)
    old, old_rec = store.create(partner="acme", tier="gold", scopes=())
    new, _ = store.create(partner="acme", tier="gold", scopes=())  # rotation: two keys at once
    store.revoke(old_rec.key_id)
    assert store.verify(old) == (None, "revoked")
    assert store.verify(new)[0] is not None


def test_store_reloads_when_the_file_changes(tmp_path: Path) -> None:
    gateway_side = ApiKeyStore(tmp_path / "k.json", PEPPER, check_interval=0)
    plain, _ = ApiKeyStore(tmp_path / "k.json", PEPPER).create(partner="a", tier="t", scopes=())
    gateway_side.maybe_reload()
    assert gateway_side.verify(plain)[0] is not None


def test_dev_pepper_file_is_created_once_with_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_API_KEY_PEPPER", raising=False)
    first = resolve_pepper("", tmp_path / "k.json")
    assert first == resolve_pepper("", tmp_path / "k.json")
    assert len(first) == 64
    assert stat.S_IMODE((tmp_path / "k.json.pepper").stat().st_mode) == 0o600
    monkeypatch.setenv("GATEWAY_API_KEY_PEPPER", "from-the-environment-123")
    assert resolve_pepper("", tmp_path / "k.json") == b"from-the-environment-123"


def test_cli_create_list_revoke_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_API_KEY_PEPPER", PEPPER.decode())
    store = str(tmp_path / "keys.json")
    assert main(["--store", store, "create", "--partner", "acme", "--tier", "gold",
                 "--scopes", "orders:read,orders:write"]) == 0
    plain = capsys.readouterr().out.strip()
    key_id = plain.split("_")[1]
    assert ApiKeyStore(store, PEPPER).verify(plain)[0] is not None
    assert main(["list", "--store", store]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing
    assert "acme" in listing
    assert plain.split("_", 2)[2] not in listing
    assert main(["--store", store, "revoke", key_id]) == 0
    assert ApiKeyStore(store, PEPPER).verify(plain) == (None, "revoked")
    assert main(["--store", store, "revoke", "nope"]) == 1
    assert json.loads(Path(store).read_text())["keys"][0]["revoked"] is not None


def test_cli_rejects_unknown_scopes(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--store", str(tmp_path / "k.json"), "create", "--partner", "a", "--tier", "t",
              "--scopes", "orders:delete"])
