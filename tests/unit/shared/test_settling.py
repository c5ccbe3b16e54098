"""Settling a consumed message when the connection it came on is gone."""

import pytest

from shared.runtime.messaging import ReliableDelivery


class CutConnection:
    """A queue consumer whose connection died: every ack or requeue hits a closed socket."""

    def __init__(self, error: Exception):
        self.error = error
        self.attempts = 0

    def ack_message(self, message):
        self.attempts += 1
        raise self.error

    requeue_message = ack_message


class Handler(ReliableDelivery):
    queue_consumer = None

    class queue:  # noqa: N801 - stands for the kombu Queue the handler consumes
        name = "evt-x"


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")])
@pytest.mark.parametrize("requeue", [False, True])
def test_a_failed_ack_over_a_dead_connection_does_not_raise_out_of_the_worker(error, requeue):
    handler = Handler()
    handler.queue_consumer = CutConnection(error)
    handler.settle(object(), requeue=requeue)  # raising here would kill the service's container
    assert handler.queue_consumer.attempts == 1


def test_any_other_failure_to_settle_is_not_swallowed():
    handler = Handler()
    handler.queue_consumer = CutConnection(ValueError("a bug"))
    with pytest.raises(ValueError):
        handler.settle(object(), requeue=False)
