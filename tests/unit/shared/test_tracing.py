from types import SimpleNamespace

from shared.runtime.tracing import Tracing, current_correlation_id


def _worker(args=(), data=None):
    return SimpleNamespace(args=args, data=dict(data or {}))


def test_a_call_without_a_correlation_id_gets_a_new_one_whichever_hook_nameko_calls_first():
    worker = _worker()
    first = Tracing().get_dependency(worker)
    Tracing().worker_setup(worker)
    assert first and worker.data["correlation_id"] == first == current_correlation_id()


def test_an_event_handler_inherits_the_events_correlation_id():
    envelope = {"specversion": "1.0", "id": "evt-1", "correlationid": "corr-9"}
    worker = _worker(args=(envelope,))
    assert Tracing().get_dependency(worker) == "corr-9"


def test_an_inherited_correlation_id_from_rpc_headers_wins():
    worker = _worker(data={"correlation_id": "from-rpc"})
    assert Tracing().get_dependency(worker) == "from-rpc"
