"""deploy/observability/: the Prometheus configuration and alert rules are valid, the rules fire when they should
(``promtool test rules``), and every TaskLINKr metric a rule or the Grafana dashboard reads is one the code exports.

promtool comes from Debian's ``prometheus`` package; ``make test`` installs it where it is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import shared.runtime.metrics  # noqa: F401  (every metric the services record is declared there)

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / "deploy" / "observability"
PROMETHEUS = OBSERVABILITY / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
DASHBOARD = OBSERVABILITY / "grafana" / "tasklinkr.json"
# What the RabbitMQ Prometheus plugin's per-object endpoint (/metrics/per-object) exports and the rules read.
RABBITMQ_PLUGIN_METRICS = {"rabbitmq_queue_messages", "rabbitmq_queue_messages_ready", "rabbitmq_queue_consumers"}
_METRIC = re.compile(r"\b((?:tasklinkr|rabbitmq)_[a-z0-9_]+)")


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (make test installs Debian's `prometheus` package for it)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS)


def exported_sample_names() -> set[str]:
    """Every sample name the code's registry can produce (a counter's ``_total``, a histogram's ``_bucket``…)."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
                "gauge": ("",)}
    return {family.name + suffix for family in REGISTRY.collect() for suffix in suffixes.get(family.type, ("",))}


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_the_prometheus_configuration_is_valid_and_loads_the_rules():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    assert "alerts.yml" in yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["rule_files"][0]


def test_the_alert_rules_fire_on_the_recorded_samples_and_stay_quiet_otherwise():
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_the_issue_asks_for_is_there_and_tested():
    alerts = {rule["alert"]: rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"]
              for rule in group["rules"]}
    tested = {case["alertname"] for test in yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
              for case in test["alert_rule_test"]}
    assert set(alerts) == tested, "every rule has a promtool test"
    reads = " ".join(alerts.values())
    for metric in ("tasklinkr_outbox_oldest_pending_age_seconds", "tasklinkr_outbox_publish_failures_total",
                   "tasklinkr_http_requests_total", "rabbitmq_queue_messages", "rabbitmq_queue_messages_ready"):
        assert metric in reads, metric


@pytest.mark.parametrize("source", ["alert rules", "dashboard"])
def test_every_tasklinkr_metric_read_is_one_the_code_exports(source):
    expressions = rule_expressions() if source == "alert rules" else dashboard_expressions()
    used = {name for expr in expressions for name in _METRIC.findall(expr)}
    assert used, source
    exported = exported_sample_names()
    unknown = {name for name in used if name.startswith("tasklinkr_") and name not in exported}
    assert not unknown, f"{source} read metrics the code does not export: {sorted(unknown)}"
    assert {name for name in used if name.startswith("rabbitmq_")} <= RABBITMQ_PLUGIN_METRICS


def test_the_dashboard_is_grafana_json_with_a_prometheus_panel_per_expression():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "tasklinkr"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(panel["targets"] for panel in dashboard["panels"])
    provisioned = yaml.safe_load((OBSERVABILITY / "grafana/provisioning/dashboards/tasklinkr.yml").read_text())
    assert provisioned["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"


def lane_relabelings() -> list[tuple[str, list[str], str, str]]:
    """(where, source labels, regex, target) of every rule writing a `lane` label onto RabbitMQ's series: compose's
    scrape config and the Kubernetes PodMonitor."""
    found = []
    for job in yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]:
        for rule in job.get("metric_relabel_configs", []):
            if rule.get("target_label") == "lane":
                found.append((f"prometheus.yml {job['job_name']}", rule["source_labels"], rule["regex"],
                              rule["replacement"]))
    monitors = REPO / "deploy" / "kubernetes" / "components" / "observability" / "monitors.yaml"
    for monitor in yaml.safe_load_all(monitors.read_text()):
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            for rule in endpoint.get("metricRelabelings", []):
                if rule.get("targetLabel") == "lane":
                    found.append((f"PodMonitor {monitor['metadata']['name']}", rule["sourceLabels"], rule["regex"],
                                  rule["replacement"]))
    return found


def lane_label(regex: str, replacement: str, queue: str) -> str | None:
    """Prometheus's relabel `replace` action: the regex is anchored at both ends; no match leaves no label."""
    match = re.fullmatch(regex, queue)
    return re.sub(r"\$(\d+)", lambda m: match.group(int(m.group(1))) or "", replacement) if match else None


def test_rabbitmq_queue_series_get_the_lane_of_their_queue_in_compose_and_kubernetes():
    from shared.runtime.topology import declarations, load_catalog
    from shared.vocabulary.terms import LANES

    rules = lane_relabelings()
    assert {where for where, *_ in rules} == {"prometheus.yml rabbitmq", "PodMonitor rabbitmq"}
    _, queues = declarations(load_catalog(), environ={"TASKLINKR_CONFIG_FILE": "/dev/null"})
    names = [queue.name for queue in queues]
    assert any(".retry-" in name for name in names) and any(name.startswith("dlq.") for name in names)
    for where, sources, regex, replacement in rules:
        assert sources == ["queue"], where
        for name in [*names, "rpc-matching--smb", "rpc-matching--enterprise"]:
            base = name.split(".retry-")[0]
            expected = next((lane.value for lane in LANES if base.endswith(f"--{lane.value}")), None)
            assert lane_label(regex, replacement, name) == expected, (where, name)


def test_lane_relabel_check_would_see_a_rule_missing_a_lane():
    assert lane_label(".+--(enterprise)(\\.retry-[0-9]+ms)?", "$1", "evt-a-b.v1--c.d--smb") is None
    assert lane_label(".+--(enterprise|smb)(\\.retry-[0-9]+ms)*", "$1", "evt-a-b.v1--c.d--smb.retry-500ms") == "smb"
