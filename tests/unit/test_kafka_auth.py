"""Kafka login settings become librdkafka config; SASL without credentials is refused."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from spendfuse.gateway.config import GatewaySettings
from spendfuse.kafka_auth import kafka_client_config
from spendfuse.localkafka.security import KafkaPrincipals, format_args, server_properties
from spendfuse.settings import Settings


def test_plaintext_default_adds_nothing() -> None:
    assert Settings().kafka_client_config() == {}
    assert kafka_client_config("PLAINTEXT", "PLAIN", "u", "p") == {}


def test_sasl_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPENDFUSE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SPENDFUSE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("SPENDFUSE_KAFKA_SASL_USERNAME", "alice")
    monkeypatch.setenv("SPENDFUSE_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("SPENDFUSE_KAFKA_SSL_CA_LOCATION", "/etc/ca.pem")
    settings = Settings()
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.masked())
    assert settings.kafka_client_config() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/ca.pem",
    }
    assert GatewaySettings().kafka_client_config() == {}  # the gateway has its own principal


def test_sasl_without_credentials_is_refused() -> None:
    with pytest.raises(ValidationError, match="kafka_sasl_username and kafka_sasl_password"):
        GatewaySettings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="gw")
    ok = GatewaySettings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="gw",
        kafka_sasl_password=SecretStr("pw"),
    )
    assert ok.kafka_client_config()["sasl.mechanism"] == "PLAIN"


def test_broker_principals_cannot_shadow_the_super_user() -> None:
    with pytest.raises(ValueError, match="super user"):
        KafkaPrincipals(workers={"broker": "x"}).users()


def test_plain_logins_live_in_the_jaas_scram_ones_in_storage() -> None:
    plain = KafkaPrincipals(operators={"alice": "a"}, mechanism="PLAIN", broker_password="b")
    props = server_properties(plain)
    assert 'user_alice="a"' in props["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert props["super.users"] == "User:broker" and format_args(plain) == []
    scram = KafkaPrincipals(operators={"alice": "a"}, broker_password="b")
    assert "alice" not in str(server_properties(scram))
    assert "SCRAM-SHA-256=[name=alice,password=a]" in format_args(scram)
