"""The gateway over real TCP connections, publishing to the embedded Tansu broker."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from service.runtime.metrics import REGISTRY
from service.tools.broker import EmbeddedBroker, free_port
from tests.ingest.mllp.helpers import (
    Client,
    frame,
    gateway_settings,
    oru,
    prepare_topics,
    rde,
    read_topic,
    running_gateway,
)

pytestmark = [pytest.mark.kafka]


def acks(code: str) -> float:
    return REGISTRY.get_sample_value("labsentinel_mllp_acks_total", {"code": code}) or 0.0


async def test_one_frame_is_acknowledged_after_it_is_on_the_results_topic(
    broker: EmbeddedBroker, unique: str
) -> None:
    settings = gateway_settings(broker.bootstrap_servers, unique)
    await prepare_topics(settings)
    message = oru(f"ONE-{unique}", mrn="MRN55")
    before = acks("AA")
    async with running_gateway(settings) as port:
        client = await Client.connect(port)
        ack = await client.send(message)
        await client.close()
    assert ack["MSA"] == ["MSA", "AA", f"ONE-{unique}"]
    assert ack["MSH"][9] == "ACK^R01^ACK" and ack["MSH"][5:7] == ["LABSYS", "GH_LAB"]
    records = await read_topic(broker, settings.kafka.topics[0], 1)
    assert [(r.key, r.value) for r in records] == [(b"MRN55", message)]
    assert acks("AA") == before + 1


async def test_eight_connections_fifty_frames_each_one_ack_per_frame(
    broker: EmbeddedBroker, unique: str
) -> None:
    settings = gateway_settings(broker.bootstrap_servers, unique)
    await prepare_topics(settings)

    async def engine(n: int) -> list[tuple[str, list[str]]]:
        client = await Client.connect(port)
        answered = []
        for i in range(50):
            control_id = f"C{n}-{i}-{unique}"
            build = oru if i % 2 == 0 else rde
            answered.append((control_id, (await client.send(build(control_id, f"MRN{n}")))["MSA"]))
        await client.close()
        return answered

    async with running_gateway(settings) as port:
        results = await asyncio.gather(*(engine(n) for n in range(8)))
    for answered in results:
        assert len(answered) == 50
        for control_id, msa in answered:
            assert msa == ["MSA", "AA", control_id]
    oru_records = await read_topic(broker, settings.kafka.topics[0], 200)
    rde_records = await read_topic(broker, settings.kafka.topics[1], 200)
    assert len(oru_records) == 200 and len(rde_records) == 200
    published = {r.value.split(b"|", 10)[9].decode() for r in oru_records + rde_records}
    assert published == {cid for answered in results for cid, _ in answered}
    assert all(b"ORU^R01" in r.value for r in oru_records)
    assert all(b"RDE^O11" in r.value for r in rde_records)


async def test_frames_sent_without_waiting_are_answered_in_order(
    broker: EmbeddedBroker, unique: str
) -> None:
    settings = gateway_settings(broker.bootstrap_servers, unique)
    await prepare_topics(settings)
    async with running_gateway(settings) as port:
        client = await Client.connect(port)
        client.writer.write(frame(oru("P1")) + frame(b"not hl7") + frame(rde("P3")))
        answered = [(await client.read_ack())["MSA"][1:3] for _ in range(3)]
        await client.close()
    assert answered == [["AA", "P1"], ["AR", ""], ["AA", "P3"]]


async def test_non_hl7_frame_gets_ar_and_the_connection_goes_on(
    broker: EmbeddedBroker, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = gateway_settings(broker.bootstrap_servers, unique)
    await prepare_topics(settings)
    caplog.set_level(logging.DEBUG, logger="service.ingest")
    async with running_gateway(settings) as port:
        client = await Client.connect(port)
        refused = await client.send(b"PATIENT JANE DOE DOB 19500101 phosphate low")
        accepted = await client.send(oru(f"AFTER-{unique}"))
        await client.close()
    assert refused["MSA"][1] == "AR"
    assert refused["ERR"][3].startswith("100^")
    assert accepted["MSA"] == ["MSA", "AA", f"AFTER-{unique}"]
    assert "JANE" not in caplog.text and "19500101" not in caplog.text
    assert "DOE^JANE" not in caplog.text


async def test_oversized_frame_gets_ar_and_the_next_frame_is_published(
    broker: EmbeddedBroker, unique: str
) -> None:
    settings = gateway_settings(broker.bootstrap_servers, unique, max_message_bytes=2048)
    await prepare_topics(settings)
    big = oru(f"BIG-{unique}") + b"NTE|1||" + b"x" * 10_000 + b"\r"
    async with running_gateway(settings) as port:
        client = await Client.connect(port)
        refused = await client.send(big)
        accepted = await client.send(oru(f"SMALL-{unique}"))
        await client.close()
    assert refused["MSA"][1:3] == ["AR", f"BIG-{unique}"]
    assert accepted["MSA"][1:3] == ["AA", f"SMALL-{unique}"]
    records = await read_topic(broker, settings.kafka.topics[0], 1)
    assert [r.value for r in records] == [oru(f"SMALL-{unique}")]


async def test_resent_frame_is_published_twice_and_acknowledged_twice(
    broker: EmbeddedBroker, unique: str
) -> None:
    # An engine resends a message it got no ACK for (or an AE). The gateway does not
    # de-duplicate: both copies go to the topic, and the pipeline's dedupe on sending facility
    # + MSH-10 makes the second one change nothing (tests/integration covers redelivery).
    settings = gateway_settings(broker.bootstrap_servers, unique)
    await prepare_topics(settings)
    message = oru(f"AGAIN-{unique}")
    async with running_gateway(settings) as port:
        client = await Client.connect(port)
        first = await client.send(message)
        second = await client.send(message)
        await client.close()
    assert first["MSA"] == second["MSA"] == ["MSA", "AA", f"AGAIN-{unique}"]
    assert first["MSH"][10] != second["MSH"][10]  # each ACK has a control id of its own
    records = await read_topic(broker, settings.kafka.topics[0], 2)
    assert [r.value for r in records] == [message, message]


async def test_unreachable_broker_gets_ae_and_the_server_stays_up(unique: str) -> None:
    settings = gateway_settings(f"127.0.0.1:{free_port()}", unique)  # nothing listens there
    before = acks("AE")
    async with running_gateway(settings, publish_timeout_s=1.0) as port:
        client = await Client.connect(port)
        first = await asyncio.wait_for(client.send(oru("DOWN1")), 20)
        second = await asyncio.wait_for(client.send(oru("DOWN2")), 20)
        refused = await client.send(b"junk")
        await client.close()
        other = await Client.connect(port)  # new connections are still accepted
        third = await asyncio.wait_for(other.send(oru("DOWN3")), 20)
        await other.close()
    assert [a["MSA"][1:3] for a in (first, second, third)] == [
        ["AE", "DOWN1"],
        ["AE", "DOWN2"],
        ["AE", "DOWN3"],
    ]
    assert first["ERR"][3].startswith("207^") and refused["MSA"][1] == "AR"
    assert acks("AE") == before + 3


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_tls_listener(broker: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    settings = gateway_settings(broker.bootstrap_servers, unique)
    await prepare_topics(settings)
    async with running_gateway(settings, tls=server_tls) as port:
        client = await Client.connect(port, tls=client_tls)
        ack = await client.send(oru(f"TLS-{unique}"))
        await client.close()
    assert ack["MSA"] == ["MSA", "AA", f"TLS-{unique}"]


async def test_stop_closes_idle_connections_and_counts_frames_by_type(
    broker: EmbeddedBroker, unique: str
) -> None:
    settings = gateway_settings(broker.bootstrap_servers, unique)
    await prepare_topics(settings)
    label = {"message_type": "RDE^O11"}
    before = REGISTRY.get_sample_value("labsentinel_mllp_frames_total", label) or 0.0
    loop = asyncio.get_running_loop()
    async with running_gateway(settings) as port:
        client = await Client.connect(port)
        assert (await client.send(rde(f"IDLE-{unique}")))["MSA"][1] == "AA"
        stopping_at = loop.time()
    # running_gateway's exit stopped the server with this connection still open and idle.
    assert loop.time() - stopping_at < 5
    assert await client.reader.read() == b""  # the gateway closed it
    await client.close()
    assert REGISTRY.get_sample_value("labsentinel_mllp_frames_total", label) == before + 1
    assert REGISTRY.get_sample_value("labsentinel_mllp_connections") == 0
