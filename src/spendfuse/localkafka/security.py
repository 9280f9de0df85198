"""SASL logins and ACLs for the local broker: who may write ``spendfuse.control``.

Signatures prove who issued a command, but anyone who can write the control topic can still
delete a key with an unsigned tombstone (compaction obeys it), re-send old signed records, or
flood the topic. Only the broker can refuse those writes, so :class:`KafkaPrincipals` starts the
broker with a SASL listener (SCRAM-SHA-256 by default, or PLAIN), KRaft's ``StandardAuthorizer``
with ``allow.everyone.if.no.acl.found=false``, the broker itself as the only super user, and these
ACLs (:func:`acl_bindings`), all ALLOW, all else denied:

* **workers** (``spendfuse run``/``worker``/``notify``): everything on topics, consumer groups and
  transactional ids prefixed with the app id (``spendfuse``): they read the cost events, create
  the topics and their changelogs, and write alerts, dead letters and ``spendfuse.control``;
* **operators** (``spendfuse kill|degrade|restore``): read and write ``spendfuse.control`` (they
  read it to the end first, in a ``spendfuse-gateway-*`` group that commits nothing);
* **gateways**: read ``spendfuse.control`` only, in ``spendfuse-gateway-*`` groups;
* **producers** (applications publishing spend): write ``spendfuse.cost-events`` only;
* **others** (any other login, e.g. a test's intruder): nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from spendfuse.kafka_auth import kafka_client_config
from spendfuse.schemas.topics import CONTROL, COST_EVENTS

Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
LISTENER = "SASL_PLAINTEXT"
GATEWAY_GROUP_PREFIX = "spendfuse-gateway-"


def _secret() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class KafkaPrincipals:
    """The logins of a SASL-protected local broker (name -> password) and the role of each."""

    workers: Mapping[str, str] = field(default_factory=dict)
    operators: Mapping[str, str] = field(default_factory=dict)
    gateways: Mapping[str, str] = field(default_factory=dict)
    producers: Mapping[str, str] = field(default_factory=dict)
    others: Mapping[str, str] = field(default_factory=dict)
    mechanism: Mechanism = "SCRAM-SHA-256"
    app_id: str = "spendfuse"
    broker_user: str = "broker"
    broker_password: str = field(default_factory=_secret)

    def users(self) -> dict[str, str]:
        roles = (self.workers, self.operators, self.gateways, self.producers, self.others)
        users = {name: pw for role in roles for name, pw in role.items()}
        if self.broker_user in users:
            raise ValueError(f"{self.broker_user!r} is the broker's own (super user) login")
        return {self.broker_user: self.broker_password, **users}

    def client_config(self, user: str) -> dict[str, Any]:
        """librdkafka settings to log in as ``user`` (see :mod:`spendfuse.kafka_auth`)."""
        return kafka_client_config(LISTENER, self.mechanism, user, self.users()[user])

    def admin_config(self) -> dict[str, Any]:
        return self.client_config(self.broker_user)


def _jaas(module: str, user: str, password: str, extra: str = "") -> str:
    return f'{module} required username="{user}" password="{password}"{extra};'


def server_properties(p: KafkaPrincipals) -> dict[str, str]:
    """Broker settings layered over the PLAINTEXT ones: clients on SASL, the controller on PLAIN
    (KRaft cannot use SCRAM there) with the broker's own login, and the authorizer."""
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    own = p.broker_user, p.broker_password
    mech = p.mechanism.lower()
    if p.mechanism == "PLAIN":
        logins = "".join(f' user_{u}="{pw}"' for u, pw in p.users().items())
        client_jaas = _jaas(plain, *own, logins)
    else:  # SCRAM credentials are written into the metadata log when storage is formatted
        client_jaas = _jaas("org.apache.kafka.common.security.scram.ScramLoginModule", *own)
    return {
        "listener.security.protocol.map": f"{LISTENER}:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name": LISTENER,
        "sasl.enabled.mechanisms": p.mechanism,
        "sasl.mechanism.inter.broker.protocol": p.mechanism,
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": _jaas(
            plain, *own, f' user_{p.broker_user}="{p.broker_password}"'
        ),
        f"listener.name.{LISTENER.lower()}.{mech}.sasl.jaas.config": client_jaas,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{p.broker_user}",
        "allow.everyone.if.no.acl.found": "false",
    }


def format_args(p: KafkaPrincipals) -> list[str]:
    """``kafka-storage format`` arguments that create the SCRAM logins (none for PLAIN)."""
    if p.mechanism == "PLAIN":
        return []
    args: list[str] = []
    for user, password in p.users().items():
        args += ["--add-scram", f"{p.mechanism}=[name={user},password={password}]"]
    return args


def acl_bindings(p: KafkaPrincipals) -> list[Any]:
    """The ACLs of the module docstring, as confluent-kafka bindings."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    topic, group, txn = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID
    op = AclOperation

    def allow(users: Mapping[str, str], rtype: Any, name: str, pattern: Any, ops: list) -> list:
        return [
            AclBinding(rtype, name, pattern, f"User:{u}", "*", o, AclPermissionType.ALLOW)
            for u in users
            for o in ops
        ]

    read = [op.READ, op.DESCRIBE]
    return [
        *allow(p.workers, topic, p.app_id, prefixed, [op.ALL]),
        *allow(p.workers, group, p.app_id, prefixed, [op.ALL]),
        *allow(p.workers, txn, p.app_id, prefixed, [op.ALL]),
        *allow(p.operators, topic, CONTROL, literal, [*read, op.WRITE]),
        *allow(p.operators, group, GATEWAY_GROUP_PREFIX, prefixed, [op.READ]),
        *allow(p.gateways, topic, CONTROL, literal, read),
        *allow(p.gateways, group, GATEWAY_GROUP_PREFIX, prefixed, [op.READ]),
        *allow(p.producers, topic, COST_EVENTS, literal, [op.WRITE, op.DESCRIBE]),
    ]


def create_acls(bootstrap_servers: str, p: KafkaPrincipals, timeout_s: float = 30.0) -> int:
    """Create the ACLs as the broker's super user; return how many."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap_servers, **p.admin_config()})
    bindings = acl_bindings(p)
    if bindings:
        for future in admin.create_acls(bindings, request_timeout=timeout_s).values():
            future.result(timeout_s)
    return len(bindings)
