import pytest

from tests.support.stack import EventRecorder, RunningStack


@pytest.fixture(scope="module")
def recorder(amqp_uri):
    recorder = EventRecorder(amqp_uri)
    recorder.bind()
    return recorder


@pytest.fixture(scope="module")
def stack(amqp_uri, mongo_uri, tmp_path_factory, recorder):
    running = RunningStack(tmp_path_factory.mktemp("stack"), amqp_uri, mongo_uri)
    try:
        running.start()
        yield running
    finally:
        running.stop()
