"""``kafka-adx produce``: sample events and files reach the real broker with their keys and headers;
the pacing and the AMQP event conversion."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.kafka.producer import OutMessage, Pacer, event_data, sample_messages
from shared.ops.sample import POISON_CSV
from tests.support.kafka_e2e import Workspace, produce, read_topic


def test_sample_events_are_keyed_by_state_with_numbered_headers_and_poison() -> None:
    messages = list(sample_messages(20, fmt="csv", poison_every=10, headers=(("Table", b"Storms"),)))
    assert len(messages) == 22
    poison = [m for m in messages if dict(m.headers).get("poison") == b"true"]
    assert [m.value for m in poison] == [POISON_CSV[1], POISON_CSV[2]]
    assert [int(dict(m.headers)["seq"] or b"") for m in messages] == list(range(22))
    for message in messages:
        headers = dict(message.headers)
        assert headers["Table"] == b"Storms" and headers["source"] == b"kafka-adx-produce"
        if message not in poison:
            fields = message.value.decode().split(",")
            assert message.key == fields[4].encode()  # State, the fifth StormEvents column
            assert headers["content-type"] == b"text/csv"


def test_pacer_spaces_messages_at_the_rate() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(50, clock=lambda: now[0], sleep=sleep)
    for index in range(100):
        pacer.wait(index)
    assert now[0] == pytest.approx(100.0 + 99 / 50)
    unlimited = Pacer(0, clock=lambda: now[0], sleep=sleep)
    count = len(slept)
    unlimited.wait(10_000)
    assert len(slept) == count


def test_amqp_events_carry_headers_as_application_properties() -> None:
    event = event_data(OutMessage(value=b'{"a": 1}', key=b"TEXAS",
                                  headers=(("Table", b"Storms"), ("trace", None), ("tag", b"a"), ("tag", b"b"))))  # fmt: skip
    assert event.body_as_str() == '{"a": 1}'
    assert event.properties == {"Table": b"Storms", "trace": None, "tag": b"b"}


@pytest.mark.kafka
def test_a_file_is_sent_line_by_line_with_the_key_and_headers_given(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    ws = Workspace(tmp_path, kafka_bootstrap)
    topic = kafka_topic(partitions=2, prefix="e2e-file")
    lines = [json.dumps({"n": n}) for n in range(50)]
    data = tmp_path / "records.jsonl"
    data.write_text("\n".join(lines[:25]) + "\n\n" + "\n".join(lines[25:]) + "\n")  # a blank line is skipped
    out = produce(ws, topic, "--file", str(data), "--key", "k1", "--header", "Table=Storms", "--header", "x=1")
    assert "delivered 50 record(s)" in out.stdout
    truth = read_topic(kafka_bootstrap, topic, 50)
    assert sorted(json.loads(s.value)["n"] for s in truth.values()) == list(range(50))
    assert {s.key for s in truth.values()} == {b"k1"}
    assert all(s.headers == {"Table": b"Storms", "x": b"1"} for s in truth.values())
    assert len({s.partition for s in truth.values()}) == 1, "one key, one partition"


def test_produce_to_an_unreachable_broker_fails_with_exit_code_1(tmp_path: Path) -> None:
    from tests.support.kafka_e2e import run_cli

    ws = Workspace(tmp_path, "127.0.0.1:9")
    result = run_cli(["produce", "-t", "x", "--records", "3", "-X", "message.timeout.ms=1500"], ws.env(), tmp_path)
    assert result.returncode == 1, result.stderr
    assert "3 of 3 message(s) not delivered" in result.stderr
