"""Operators kill, degrade and restore by hand; gateways follow; who and why are recorded."""

from __future__ import annotations

from click.testing import CliRunner

from spendfuse.cli import main
from spendfuse.schemas import topics
from tests.support.events import unique
from tests.support.kafka import consume_until
from tests.support.waiting import wait_for


def _run(args: list[str], kafka_bootstrap: str, signing_spec: str) -> str:
    result = CliRunner().invoke(
        main,
        args,
        env={
            "SPENDFUSE_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "SPENDFUSE_CONTROL_SIGNING_KEY": signing_spec,
        },
    )
    assert result.exit_code == 0, result.output
    assert signing_spec.split(":", 1)[1] not in result.output
    return result.output


def test_operator_kill_degrade_restore_reach_the_gateway(
    kafka_bootstrap: str, signing_spec: str, make_client
) -> None:
    client = make_client()
    model, uc = unique("gpt"), unique("support-bot")
    out = _run(
        ["kill", "model", model, "--reason", "provider incident", "--by", "alice", "--for", "30m"],
        kafka_bootstrap,
        signing_spec,
    )
    assert f"kill_switch model:{model} published" in out and "lift with: spendfuse restore" in out
    _run(
        [
            "degrade",
            "use_case",
            uc,
            "--reason",
            "budget at 80%",
            "--by",
            "bob",
            "--max-output-tokens",
            "256",
        ],
        kafka_bootstrap,
        signing_spec,
    )

    denied = wait_for(
        lambda: (d := client.decide({"model": model})).action == "deny" and d,
        "the operator's kill switch",
    )
    assert denied.issued_by == "operator:alice" and "provider incident" in denied.reason
    degraded = wait_for(
        lambda: (d := client.decide({"use_case_id": uc})).action == "degrade" and d,
        "the operator's degradation",
    )
    assert degraded.level == "L1"
    assert dict(degraded.params) == {
        "cache_first": True,
        "model_tier": "small",
        "max_output_tokens": 256,
    }

    _run(
        ["restore", "model", model, "--reason", "provider recovered", "--by", "alice"],
        kafka_bootstrap,
        signing_spec,
    )
    wait_for(lambda: client.decide({"model": model}).action == "allow", "the restore")

    records = consume_until(
        kafka_bootstrap,
        topics.CONTROL,
        lambda r: len(r) >= 2,
        match=lambda r: r["target"]["id"] == model,
    )
    assert [(r["kind"], r["issued_by"], r["reason"]) for r in records] == [
        ("kill_switch", "operator:alice", "provider incident"),
        ("restore", "operator:alice", "provider recovered"),
    ]
    assert records[0]["expires_at"] is not None and records[1]["_key"] == f"model:{model}"


def test_bad_duration_is_refused_with_the_fix(kafka_bootstrap: str, signing_spec: str) -> None:
    result = CliRunner().invoke(
        main,
        ["kill", "tenant", "acme", "--reason", "x", "--for", "soon"],
        env={"SPENDFUSE_BOOTSTRAP_SERVERS": kafka_bootstrap},
    )
    assert result.exit_code != 0
    assert "use a number and a unit, e.g. 30m" in result.output
