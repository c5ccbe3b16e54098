"""A broker under a resource alarm holds back publishers: a consumer answering on the broker gives up in time."""

import subprocess
import time
import uuid

import eventlet
import pytest

from shared.runtime import topology
from shared.runtime.commands import outcome_envelope, publish_outcome
from tests.support.rabbit import OwnRabbit

pytestmark = pytest.mark.faults


def test_an_outcome_the_broker_will_not_confirm_under_a_memory_alarm_fails_in_time_instead_of_holding_the_worker():
    rabbit = OwnRabbit()
    rabbit.start()
    try:
        topology.apply(rabbit.uri)
        # Every publisher is blocked from here on: the broker reads no more from them and confirms nothing.
        subprocess.run(["rabbitmqctl", "-n", rabbit.name, "set_vm_memory_high_watermark", "0.0000001"],
                       env=rabbit.env, check=True, capture_output=True, timeout=60)
        tenant = f"ten_{uuid.uuid4().hex}"
        outcome = outcome_envelope("gateway", {"command_id": "cmd-1", "command_type": "posting.create.v1",
                                               "problem": None, "sender_id": tenant, "correlation_id": "cmd-1",
                                               "answer": True},
                                   lane="smb", result={})
        started = time.monotonic()
        with eventlet.Timeout(240):  # the test's own bound: without one of its own the publish waited forever
            with pytest.raises(Exception) as raised:
                publish_outcome(rabbit.uri, outcome, None)
        took = time.monotonic() - started
        print(f"gave up after {took:.1f} s: {raised.value!r}")
        assert took < 90  # one attempt of 10 s (a refused outcome is not published again)
    finally:
        rabbit.cleanup()
