"""A tenant's own system talking to TaskLINKr over RabbitMQ: plain kombu, nothing of TaskLINKr's code.

    python examples/tenant_client.py credentials.json

``credentials.json`` is what ``tasklinkr tenant-access grant <tenant id>`` printed (host, port, TLS, vhost, user,
password); ``--host`` and ``--port`` override the address, for a broker reached another way. The client declares
its queue ``<tenant id>.erp`` on the tenant feed (every event of the tenant, and the outcomes of its commands),
sends one command — create and publish the posting in docs/examples/posting.json — waits for its outcome, and prints the
events that follow for a few seconds. See docs/integration.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

from kombu import Connection, Consumer, Exchange, Producer, Queue

FEED = Exchange("tasklinkr.feed", type="topic", passive=True)
INBOUND = Exchange("tasklinkr.inbound", type="topic", passive=True)


class TenantClient:
    def __init__(self, *, host: str, port: int, username: str, password: str, vhost: str = "/",
                 queue: str = "erp", tls: bool = False):
        self.tenant_id = username
        self.connection = Connection(hostname=host, port=port, userid=username, password=password,
                                     virtual_host=vhost, connect_timeout=10, ssl=tls,
                                     transport_options={"confirm_publish": True})
        self.queue = Queue(f"{username}.{queue}", exchange=FEED, routing_key=f"{username}.#", durable=True)
        self.received: list[tuple[str, dict, dict]] = []

    def __enter__(self) -> TenantClient:
        self.channel = self.connection.channel()
        self.queue(self.channel).declare()  # durable: events wait here while this system is down
        self.consumer = Consumer(self.channel, queues=[self.queue], callbacks=[self._on_message], accept=["json"])
        self.consumer.consume()
        self.producer = Producer(self.connection.channel())
        return self

    def __exit__(self, *exc) -> None:
        self.connection.release()

    def _on_message(self, body, message) -> None:
        self.received.append((message.delivery_info["routing_key"], body, message.properties))
        message.ack()

    def send(self, command_type: str, data: dict, *, command_id: str | None = None,
             correlation_id: str | None = None, reply_to: str | None = None) -> str:
        """Publish a command as this tenant (user_id is checked by the broker); returns its id. Confirmed."""
        command_id = command_id or str(uuid.uuid4())
        properties = {"correlation_id": correlation_id or command_id}
        if reply_to:
            properties["reply_to"] = reply_to
        self.producer.publish({"id": command_id, "type": command_type, "data": data}, exchange=INBOUND,
                              routing_key=f"{self.tenant_id}.{command_type}", user_id=self.tenant_id,
                              serializer="json", delivery_mode=2, **properties)
        return command_id

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self.connection.drain_events(timeout=min(remaining, 0.5))
            except TimeoutError:
                continue

    def outcome(self, command_id: str, timeout: float = 30.0) -> dict:
        """The accepted or rejected event of a command (from the feed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for routing_key, body, _ in self.received:
                if routing_key.endswith((".command.accepted.v1", ".command.rejected.v1")) \
                        and body["data"]["command_id"] == command_id:
                    return body
            self.drain(0.5)
        raise TimeoutError(f"no outcome for command {command_id} within {timeout}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("credentials", type=Path, help="JSON printed by `tasklinkr tenant-access grant`")
    parser.add_argument("--host", help="default: the credentials' host")
    parser.add_argument("--port", type=int, help="default: the credentials' port")
    parser.add_argument("--posting", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "examples"
                        / "posting.json")
    parser.add_argument("--listen", type=float, default=5.0, help="seconds to print events after the outcome")
    args = parser.parse_args(argv)
    credentials = json.loads(args.credentials.read_text())
    with TenantClient(host=args.host or credentials["host"], port=args.port or credentials["port"],
                      tls=credentials.get("tls", False), username=credentials["username"],
                      password=credentials["password"], vhost=credentials["vhost"]) as client:
        command_id = client.send("posting.create.v1", {"posting": json.loads(args.posting.read_text()),
                                                       "publish": True})
        print(json.dumps({"sent": "posting.create.v1", "command_id": command_id}))
        outcome = client.outcome(command_id)
        print(json.dumps({"outcome": outcome["type"], "data": outcome["data"]}))
        client.drain(args.listen)
        for routing_key, body, _ in client.received:
            print(json.dumps({"event": routing_key, "subject": body.get("subject")}))
    return 0 if outcome["type"].endswith("command.accepted.v1") else 1


if __name__ == "__main__":
    sys.exit(main())
