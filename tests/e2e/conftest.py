import pytest

from tests.support.infra import broker
from tests.support.stack import EventRecorder, RunningStack


@pytest.fixture(scope="module")
def stack_amqp_uri():
    """A broker (vhost) of each end-to-end module's own: the stack starts from the declared topology, not from
    queues other tests left messages in."""
    with broker() as uri:
        yield uri


@pytest.fixture(scope="module")
def recorder(stack_amqp_uri):
    recorder = EventRecorder(stack_amqp_uri)
    recorder.bind()
    return recorder


@pytest.fixture(scope="module")
def stack(stack_amqp_uri, mongo_uri, tmp_path_factory, recorder):
    running = RunningStack(tmp_path_factory.mktemp("stack"), stack_amqp_uri, mongo_uri)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keeps each test's own outcome on it, for fixtures that collect evidence of a failure (the console's
    screenshots)."""
    report = yield
    if report.when == "call":
        item.outcome_of_call = report
    return report
