"""A real, single-node Apache Kafka broker (KRaft) run from the jars Maven resolves.

Used by ``spendfuse run`` when no Kafka is configured, and by the test suite. It needs Java 17+
and Maven on the PATH; the broker jars are cached under ``~/.cache/spendfuse/kafka-<version>``
(override with ``SPENDFUSE_KAFKA_CACHE``). Ports are picked free on 127.0.0.1.
"""

from spendfuse.localkafka.broker import KAFKA_VERSION, LocalKafka, LocalKafkaError, resolve_jars

__all__ = ["KAFKA_VERSION", "LocalKafka", "LocalKafkaError", "resolve_jars"]
