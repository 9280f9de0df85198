"""How a spendfuse client authenticates to Kafka: the settings fields and one librdkafka mapping.

Signatures say who issued a control command; only the broker's ACLs say who may write the topic
at all (an unsigned tombstone, a re-sent old record, a flood). So every client that writes or reads
``spendfuse.control`` can log in as its own principal (SASL PLAIN or SCRAM). The fields live in a
mixin shared by the worker/operator settings (``SPENDFUSE_KAFKA_*``) and the gateway's
(``SPENDFUSE_GATEWAY_KAFKA_*``), so each process has its own principal. Only pydantic here: the
gateway client imports it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaAuthSettings(BaseModel):
    """Mixin of the Kafka security fields; the default (PLAINTEXT, no SASL) adds no config."""

    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SASL_PLAINTEXT, SASL_SSL or SSL."
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-256", description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL only)."
    )
    kafka_sasl_username: str | None = Field(default=None, description="This client's principal.")
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = Field(
        default=None, description="CA file for SSL/SASL_SSL (system CAs when unset)."
    )

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaAuthSettings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "kafka_sasl_username and kafka_sasl_password (the principal and its secret)"
            )
        return self

    def kafka_client_config(self) -> dict[str, Any]:
        """librdkafka (confluent-kafka) settings: merge into any Producer/Consumer/AdminClient."""
        return kafka_client_config(
            self.kafka_security_protocol,
            self.kafka_sasl_mechanism,
            self.kafka_sasl_username,
            self.kafka_sasl_password,
            self.kafka_ssl_ca_location,
        )


def kafka_client_config(
    protocol: str,
    mechanism: str = "SCRAM-SHA-256",
    username: str | None = None,
    password: SecretStr | str | None = None,
    ssl_ca_location: str | None = None,
) -> dict[str, Any]:
    """The librdkafka keys for a security setup; ``{}`` for PLAINTEXT (librdkafka's default)."""
    conf: dict[str, Any] = {}
    if protocol == "PLAINTEXT":
        return conf
    conf["security.protocol"] = protocol
    if protocol.startswith("SASL"):
        secret = password.get_secret_value() if isinstance(password, SecretStr) else password
        conf |= {"sasl.mechanism": mechanism, "sasl.username": username, "sasl.password": secret}
    if protocol.endswith("SSL") and ssl_ca_location:
        conf["ssl.ca.location"] = ssl_ca_location
    return conf
