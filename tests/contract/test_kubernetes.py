"""deploy/kubernetes: every overlay renders with `kubectl kustomize`, every object fits the Kubernetes 1.37 API or its
operator's CRD, and the objects refer to Deployments, Secrets, ConfigMaps and queues that exist. No cluster needed.

Each check is also run on a broken copy of a rendered overlay, to prove that it fails when it should.
"""

from __future__ import annotations

import copy

import pytest
import yaml
from nameko.rpc import Rpc
from typer.testing import CliRunner

from shared.runtime import config as settings
from shared.runtime.messaging import queue_bindings
from shared.runtime.topology import declarations, load_catalog
from shared.tools.runner import runnable_services, service_class
from shared.vocabulary.terms import LANES as LANES_OF_WORK
from tests.contract import manifests
from tests.contract.manifests import named, objects
from tests.contract.scripts import load_script

PRODUCTION = "production"


def test_dev_and_production_overlays_exist():
    assert {"dev", PRODUCTION} <= set(manifests.OVERLAYS)


@pytest.fixture(scope="module")
def generator():
    return load_script(manifests.REPO / "deploy" / "gen_kubernetes.py", "gen_kubernetes")


# Compose's broker definitions are the source of truth for the users and what each may do.
definitions = load_script(manifests.REPO / "deploy" / "gen_definitions.py", "gen_definitions")
BROKER_GRANTS = {user: {"tags": definitions.user_tags(user),
                        "permissions": definitions.user_permissions(load_catalog(), user)}
                 for user in definitions.broker_users(load_catalog())}
LANES = tuple(lane.value for lane in LANES_OF_WORK)
# Every replica set: a data service's, and one per lane of a service deployed in cells (mongo-matching-enterprise).
DATABASES = [f"{service}-{lane}" if service in settings.CELL_SERVICES else service
             for service in settings.DATA_SERVICES for lane in (LANES if service in settings.CELL_SERVICES else [""])]


def service_of(deployment: dict) -> str:
    return deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]


def workload_users(docs: list[dict]) -> dict[str, str]:
    """Every Deployment (one per service, or per service and lane) connects as its service's broker user."""
    return {**{f"Deployment/{name}": f"{definitions.USER_PREFIX}{service_of(d)}"
               for name, d in named(docs, "Deployment").items()},
            "Job/tasklinkr-topology": definitions.OPERATOR_USER}


def test_generated_manifests_are_current(generator):
    assert generator.main(["--check"]) == 0, "deploy/kubernetes is stale: run python deploy/gen_kubernetes.py"


def consumed_queues() -> dict[str, list[str]]:
    """Worked out here, not by the generator: each service's catalog queues (as `tasklinkr topology apply`
    declares them) and, for a service with RPC entrypoints, its RPC queue of each lane `rpc-<service>--<lane>`."""
    _, queues = declarations(load_catalog(), environ={"TASKLINKR_CONFIG_FILE": "/dev/null"})
    by_service: dict[str, list[str]] = {}
    for queue in queues:
        if queue_bindings(queue):
            by_service.setdefault(queue.name.split("--")[1].split(".")[0], []).append(queue.name)
    for service in runnable_services():
        entrypoints = {e for m in vars(service_class(service)).values() for e in getattr(m, "nameko_entrypoints", ())}
        if any(isinstance(entrypoint, Rpc) for entrypoint in entrypoints):
            by_service.setdefault(service, []).extend(f"rpc-{service}--{lane}" for lane in LANES)
    return by_service


# -- every overlay ------------------------------------------------------------------------------------------------

overlays = pytest.mark.parametrize("overlay", manifests.OVERLAYS)


@overlays
def test_every_object_fits_the_kubernetes_api_or_its_operators_crd(overlay):
    docs = objects(overlay)
    assert manifests.schema_problems(docs) == []
    kinds = {doc["kind"] for doc in docs}
    assert {"RabbitmqCluster", "User", "Permission", "MongoDBCommunity", "Issuer", "Certificate", "ScaledObject",
            "TriggerAuthentication", "PodMonitor"} <= kinds
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job",
            "ConfigMap"} <= kinds


@overlays
def test_every_secret_referenced_is_declared_by_the_overlay(overlay):
    assert manifests.secret_problems(objects(overlay), manifests.required_secrets(overlay)) == []


@overlays
def test_every_service_connects_to_the_broker_as_its_own_user_with_composes_permissions(overlay):
    docs = objects(overlay)
    assert manifests.broker_user_problems(docs, BROKER_GRANTS, workload_users(docs), definitions.VHOST) == []


def test_broker_user_check_rejects_shared_widened_and_dangling_users():
    docs = objects(PRODUCTION)
    postings = container_of(docs, "postings-smb")
    env(postings, "RABBITMQ_PASSWORD")["valueFrom"]["secretKeyRef"]["name"] = "tasklinkr-matching-user-credentials"
    one(docs, "Permission", "tasklinkr-billing")["spec"]["userReference"]["name"] = "tasklinkr-biling"
    one(docs, "Permission", "tasklinkr-providers")["spec"]["vhost"] = "tasklinkr"
    one(docs, "Permission", "tasklinkr-gateway")["spec"]["permissions"]["configure"] = ".*"
    docs.remove(one(docs, "User", "tasklinkr-contracting"))
    one(docs, "TriggerAuthentication")["spec"]["env"][0]["name"] = "AMQP_URI"
    problems = manifests.broker_user_problems(docs, BROKER_GRANTS, workload_users(docs), definitions.VHOST)
    assert any("Deployment/postings-smb container postings: the AMQP password is ('secret', "
               "('tasklinkr-matching-user-credentials', 'password'))" in p for p in problems)
    assert any("Permission/tasklinkr-billing grants to tasklinkr-biling, which is no User" in p for p in problems)
    assert any("User/tasklinkr-billing is granted []" in p for p in problems)
    assert any("Permission/tasklinkr-providers is on vhost tasklinkr" in p for p in problems)
    assert any("User/tasklinkr-gateway is granted" in p and "'configure': '.*'" in p for p in problems)
    assert any("broker user tasklinkr-contracting has no User" in p for p in problems)
    assert any("Permission/tasklinkr-contracting grants to tasklinkr-contracting, which is no User" in p
               for p in problems)
    assert sum("takes host from AMQP_URI" in p for p in problems) == len(named(docs, "ScaledObject"))
    assert len(problems) == 7 + len(named(docs, "ScaledObject")), problems
    # The contracting pods still read the credentials of the User that is gone: nothing writes that Secret.
    assert any("Deployment/contracting-enterprise refers to Secret tasklinkr-contracting-user-credentials, which the "
               "overlay neither declares" in p
               for p in manifests.secret_problems(docs, manifests.required_secrets(PRODUCTION)))


def test_broker_user_check_rejects_a_host_keda_cannot_reach():
    docs = objects("dev")
    config = next(doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith(
        "tasklinkr-config"))
    config["data"]["RABBITMQ_HOST"] = "rabbitmq"
    problems = manifests.broker_user_problems(docs, BROKER_GRANTS, workload_users(docs), definitions.VHOST)
    assert problems and all("not the broker's namespaced name rabbitmq.tasklinkr-dev.svc" in p for p in problems)


@overlays
def test_every_config_map_read_is_declared(overlay):
    assert manifests.config_map_problems(objects(overlay)) == []


@overlays
def test_every_container_has_limits_and_separate_liveness_and_readiness_probes(overlay):
    assert manifests.container_problems(objects(overlay)) == []


@overlays
def test_services_ingress_autoscaler_and_budgets_cover_every_deployment_and_cluster(overlay):
    assert manifests.workload_problems(objects(overlay)) == []


@overlays
def test_every_consumer_scales_on_the_depth_of_every_queue_it_reads(overlay):
    assert manifests.scaling_problems(objects(overlay), consumed_queues(), LANES) == []


@overlays
def test_the_broker_volume_leaves_room_above_its_free_disk_floor(overlay):
    assert manifests.broker_problems(objects(overlay)) == []


def test_broker_check_rejects_a_free_disk_floor_the_size_of_the_volume():
    docs = objects("dev")
    one(docs, "RabbitmqCluster")["spec"]["persistence"]["storage"] = "800Mi"
    assert manifests.broker_problems(docs) == [
        "RabbitmqCluster/rabbitmq: disk_free_limit.absolute 500MB leaves less than half of its 800Mi volume usable"]


@overlays
def test_every_pod_of_ours_meets_the_restricted_pod_security_standard(overlay):
    assert manifests.pod_security_problems(objects(overlay)) == []


@overlays
def test_every_service_runs_and_uses_its_own_replica_set(overlay):
    docs = objects(overlay)
    deployments = {service_of(d): d for d in named(docs, "Deployment").values()}  # the last of a service's lanes
    assert set(deployments) == set(settings.SERVICES)
    uri_secrets = {user["connectionStringSecretName"]: name for name, db in named(docs, "MongoDBCommunity").items()
                   for user in db["spec"]["users"]}
    assert set(uri_secrets.values()) == {f"mongo-{database}" for database in DATABASES}
    for name, deployment in named(docs, "Deployment").items():
        service = service_of(deployment)
        if service not in settings.DATA_SERVICES:
            continue
        # A lane of a service in cells reads its lane's own replica set, the others their service's.
        database = name if service in settings.CELL_SERVICES else service
        variables = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        ref = variables["TASKLINKR_MONGO_URI"]["valueFrom"]["secretKeyRef"]
        assert uri_secrets.get(ref["name"]) == f"mongo-{database}", f"{name} reads {ref['name']}"
        assert ref["key"] == "connectionString.standard"  # every member and the replicaSet name


@overlays
def test_every_replica_set_requires_tls_and_every_service_verifies_it_against_the_mounted_ca(overlay):
    docs = objects(overlay)
    assert manifests.database_tls_problems(docs) == []
    for database in DATABASES:
        users = named(docs, "MongoDBCommunity")[f"mongo-{database}"]["spec"]["users"]
        # The operator writes ssl=true (tls.enabled) itself; this is the CA file pymongo verifies the members with.
        assert [user["additionalConnectionStringConfig"]["tlsCAFile"] for user in users] == \
            ["/etc/tasklinkr/mongo-ca/ca.crt"]


def test_database_tls_check_rejects_plain_text_wrong_names_foreign_ca_and_missing_mounts():
    docs = objects(PRODUCTION)
    one(docs, "MongoDBCommunity", "mongo-providers")["spec"]["security"]["tls"]["enabled"] = False
    one(docs, "Certificate", "mongo-postings-tls")["spec"]["dnsNames"] = [
        "*.mongo-postings-svc.tasklinkr-dev.svc.cluster.local"]
    cell = one(docs, "MongoDBCommunity", "mongo-matching-enterprise")
    cell["spec"]["security"]["tls"]["caCertificateSecretRef"]["name"] = "tasklinkr-ca"
    billing = one(docs, "Deployment", "billing-enterprise")["spec"]["template"]["spec"]
    billing["containers"][0]["volumeMounts"] = [m for m in billing["containers"][0]["volumeMounts"]
                                                if m["name"] != "mongo-ca"]
    one(docs, "Certificate", "mongo-gateway-tls")["spec"]["issuerRef"]["name"] = "letsencrypt"
    problems = manifests.database_tls_problems(docs)
    assert any("MongoDBCommunity/mongo-providers does not require TLS" in p for p in problems)
    assert sum("Certificate/mongo-postings-tls does not name member mongo-postings-" in p for p in problems) == 3
    assert any("MongoDBCommunity/mongo-matching-enterprise: CA Secret tasklinkr-ca is not from the issuer" in p
               for p in problems)
    assert any("Deployment/billing-enterprise container billing: /etc/tasklinkr/mongo-ca/ca.crt" in p for p in problems)
    assert any("Certificate/mongo-gateway-tls is issued by Issuer letsencrypt, which the overlay does not declare"
               in p for p in problems)
    # The pods of matching's enterprise cell still mount their database's own CA, not the one its replica set now
    # trusts; the smb cell's replica set is another, untouched.
    assert any("Deployment/matching-enterprise container matching: /etc/tasklinkr/mongo-ca/ca.crt (tlsCAFile of "
               "MongoDBCommunity/mongo-matching-enterprise) is not ca.crt of Secret tasklinkr-ca mounted" in p
               for p in problems)
    assert not any("Deployment/matching-smb" in p for p in problems)
    assert len(problems) == 8, problems


@overlays
def test_probe_and_init_commands_are_commands_of_the_image(overlay):
    from shared.tools.cli import app

    commands = set()
    for doc in objects(overlay):
        if doc["kind"] in ("Deployment", "Job"):
            pod = doc["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                commands.add(tuple(container["args"][:-1] if container["args"][0] == "run" else container["args"]))
                if probe := container.get("readinessProbe", {}).get("exec"):
                    commands.add(tuple(probe["command"][1:]))
    assert commands
    for args in commands:
        words = [word for word in args if not word.startswith("-") and not word.isdigit()]
        if words[0] == "probe":
            words = words[:1]  # the service name is its argument
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"tasklinkr {' '.join(words)}: {result.output}"


def test_production_runs_a_three_node_broker_and_three_member_replica_sets():
    docs = objects(PRODUCTION)
    assert named(docs, "RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 3
    replica_sets = named(docs, "MongoDBCommunity")
    assert set(replica_sets) == {f"mongo-{database}" for database in DATABASES}
    assert {db["spec"]["members"] for db in replica_sets.values()} == {3}
    assert all(so["spec"]["minReplicaCount"] >= 2 for so in named(docs, "ScaledObject").values())
    assert named(docs, "Namespace")["tasklinkr"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == \
        "baseline"
    assert not named(docs, "Secret"), "production keeps no credential in the repository"


@overlays
def test_overlay_carries_the_alert_rules_and_dashboards_of_deploy_observability(overlay, generator):
    docs = objects(overlay)
    assert {"tasklinkr", "rabbitmq"} <= set(named(docs, "PodMonitor"))
    rules, dashboards = generator.observability_files()
    groups = [group for path in rules for group in yaml.safe_load(path.read_text())["groups"]]
    assert [rule["spec"]["groups"] for rule in named(docs, "PrometheusRule").values()] == ([groups] if rules else [])
    maps = named(docs, "ConfigMap")
    for source in dashboards:
        generated = next(doc for name, doc in maps.items() if name.startswith("tasklinkr-grafana-dashboards-"))
        assert generated["data"][generator.copy_name(source)] == source.read_text()


def test_observability_component_is_generated_from_deploy_observability(generator, tmp_path, monkeypatch):
    source = tmp_path / "observability"
    (source / "prometheus").mkdir(parents=True)
    alert = {"alert": "DeadLetters", "expr": "sum(rabbitmq_queue_messages_ready{queue=~'dlq.*'}) > 0",
             "labels": {"severity": "page"}}
    (source / "prometheus" / "alerts.yml").write_text(yaml.safe_dump({"groups": [{"name": "t", "rules": [alert]}]}))
    (source / "prometheus" / "prometheus.yml").write_text("scrape_configs: []\n")  # compose's, not a rule file
    (source / "grafana.json").write_text('{"title": "TaskLINKr"}\n')
    component = tmp_path / "component"
    monkeypatch.setattr(generator, "OBSERVABILITY", source)
    monkeypatch.setattr(generator, "COMPONENT", component)
    monkeypatch.setattr(generator, "COPIES", component / "from-observability")
    rendered = generator.render()
    assert rendered[component / "from-observability" / "grafana.json"] == '{"title": "TaskLINKr"}\n'
    rule = yaml.safe_load(rendered[component / "prometheus-rules.generated.yaml"])
    assert rule["spec"]["groups"] == [{"name": "t", "rules": [alert]}]
    assert manifests.schema_problems([rule]) == []
    assert not any("prometheus.yml" in path.name for path in rendered)
    kustomization = yaml.safe_load(rendered[component / "kustomization.yaml"])
    assert kustomization["resources"] == ["monitors.yaml", "prometheus-rules.generated.yaml"]
    assert kustomization["configMapGenerator"][0]["files"] == ["from-observability/grafana.json"]


# -- the checks fail on broken manifests --------------------------------------------------------------------------


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    return next(doc for doc in docs if doc["kind"] == kind and name in (None, doc["metadata"]["name"]))


def container_of(docs: list[dict], service: str) -> dict:
    return one(docs, "Deployment", service)["spec"]["template"]["spec"]["containers"][0]


def env(container: dict, name: str) -> dict:
    return next(variable for variable in container["env"] if variable["name"] == name)


@pytest.mark.parametrize("break_it, expected", [
    (lambda d: one(d, "Deployment").__setitem__("spec", {**one(d, "Deployment")["spec"], "replicas": "two"}),
     "'two' is not of type 'integer'"),
    (lambda d: container_of(d, "providers").pop("name"), "'name' is a required property"),
    (lambda d: container_of(d, "billing-smb").__setitem__("livenesProbe", {}), "livenesProbe"),
    (lambda d: one(d, "RabbitmqCluster")["spec"].__setitem__("replicas", "three"), "'three' is not of type"),
    (lambda d: one(d, "RabbitmqCluster")["spec"].__setitem__("replica", 3), "'replica' was unexpected"),
    (lambda d: one(d, "MongoDBCommunity")["spec"].__setitem__("type", "Sharded"), "'Sharded' is not one of"),
    (lambda d: one(d, "ScaledObject")["spec"]["triggers"][0].pop("type"), "'type' is a required property"),
    (lambda d: one(d, "TriggerAuthentication")["spec"].__setitem__("secretTargetRefs", []), "secretTargetRefs"),
    (lambda d: one(d, "User")["spec"].__setitem__("tags", ["root"]), "'root' is not one of"),
    (lambda d: one(d, "Permission")["spec"].pop("vhost"), "'vhost' is a required property"),
    (lambda d: one(d, "Certificate")["spec"].pop("secretName"), "'secretName' is a required property"),
    (lambda d: one(d, "Issuer")["spec"].__setitem__("selfsigned", {}), "'selfsigned' was unexpected"),
    (lambda d: one(d, "MongoDBCommunity")["spec"]["security"]["tls"].__setitem__("enabled", "yes"),
     "'yes' is not of type 'boolean'"),
    (lambda d: one(d, "PodMonitor")["spec"]["podMetricsEndpoints"][0].__setitem__("port", 9100), "9100 is not of"),
    (lambda d: d.append({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
     "no schema"),
])
def test_schema_check_rejects_an_invalid_object(break_it, expected):
    docs = objects(PRODUCTION)
    break_it(docs)
    problems = manifests.schema_problems(docs)
    assert len(problems) == 1 and expected in problems[0], problems


def test_secret_check_rejects_undeclared_wrong_key_and_unused_secrets():
    docs = objects(PRODUCTION)
    required = manifests.required_secrets(PRODUCTION)
    postings = container_of(docs, "postings-enterprise")
    env(postings, "RABBITMQ_USERNAME")["valueFrom"]["secretKeyRef"]["name"] = "tasklinkr-amqp-typo"
    env(postings, "TASKLINKR_MONGO_URI")["valueFrom"]["secretKeyRef"]["key"] = "connectionString.standrd"
    one(docs, "RabbitmqCluster")["spec"]["tls"]["caSecretName"] = "rabbitmq-ca"
    problems = manifests.secret_problems(docs, {**required, "forgotten": {"x"}})
    assert any("Secret tasklinkr-amqp-typo, which the overlay neither declares" in p for p in problems)
    assert any("key connectionString.standrd of Secret mongo-postings-uri" in p for p in problems)
    assert any("lists Secret forgotten, which nothing refers to" in p for p in problems)
    assert any("RabbitmqCluster/rabbitmq refers to Secret rabbitmq-ca" in p for p in problems)
    assert len(problems) == 4, problems


def test_container_check_rejects_missing_limits_and_probes():
    docs = objects(PRODUCTION)
    del container_of(docs, "matching-enterprise")["readinessProbe"]
    del container_of(docs, "billing-smb")["resources"]["limits"]["memory"]
    gateway = container_of(docs, "gateway")
    gateway["readinessProbe"] = {**gateway["livenessProbe"]}
    problems = manifests.container_problems(docs)
    assert any("Deployment/matching-enterprise" in p and "readiness probe" in p for p in problems)
    assert any("Deployment/billing-smb" in p and "no limits for ['memory']" in p for p in problems)
    assert any("Deployment/gateway" in p and "probe the same thing" in p for p in problems)
    assert len(problems) == 3, problems


def test_pod_security_check_rejects_root_escalation_and_capabilities():
    docs = objects(PRODUCTION)
    del one(docs, "Job")["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
    container_of(docs, "postings-smb")["securityContext"]["allowPrivilegeEscalation"] = True
    container_of(docs, "matching-enterprise")["securityContext"]["capabilities"] = {"drop": ["NET_RAW"]}
    problems = manifests.pod_security_problems(docs)
    assert any("Job/tasklinkr-topology" in p and "runAsNonRoot" in p for p in problems)
    assert any("Deployment/postings-smb" in p and "allowPrivilegeEscalation" in p for p in problems)
    assert any("Deployment/matching-enterprise" in p and "capabilities" in p for p in problems)
    assert len(problems) == 3, problems


def test_workload_check_rejects_dangling_references():
    docs = objects(PRODUCTION)
    docs.remove(one(docs, "PodDisruptionBudget", "contracting-enterprise"))
    docs.remove(one(docs, "PodDisruptionBudget", "mongo-billing-smb"))
    one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] = "gatewy"
    one(docs, "Deployment", "providers")["spec"]["replicas"] = 2
    one(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"name": "web"}
    one(docs, "Service", "rabbitmq-amqps")["spec"]["selector"]["app.kubernetes.io/name"] = "rabbit"
    problems = manifests.workload_problems(docs)
    assert any("Deployment/contracting-enterprise has no PodDisruptionBudget" in p for p in problems)
    assert any("scales gatewy, which is no Deployment" in p for p in problems)
    assert any("Ingress/gateway routes to" in p for p in problems)
    assert any("Deployment/providers sets replicas" in p for p in problems)
    assert any("MongoDBCommunity/mongo-billing-smb has no PodDisruptionBudget" in p for p in problems)
    assert any("Service/rabbitmq-amqps selects no pods" in p for p in problems)
    assert len(problems) == 6, problems


def test_scaling_check_rejects_unknown_missing_and_foreign_queues_and_targets():
    docs = objects(PRODUCTION)
    queues = consumed_queues()
    billing = one(docs, "ScaledObject", "billing-enterprise")["spec"]
    dropped = billing["triggers"].pop()["metadata"]["queueName"]
    billing["triggers"][0]["metadata"]["queueName"] = "evt-nowhere"
    foreign = next(q for q in queues["matching"] if q.endswith("--enterprise"))
    billing["triggers"][1]["metadata"]["queueName"] = foreign
    docs.remove(one(docs, "ScaledObject", "postings-smb"))
    docs.remove(one(docs, "ScaledObject", "postings-enterprise"))
    one(docs, "ScaledObject", "providers")["spec"]["scaleTargetRef"]["name"] = "provider"
    problems = manifests.scaling_problems(docs, queues, LANES)
    problems += manifests.workload_problems(docs)
    assert any(f"queue {dropped} of billing is a trigger of 0 ScaledObjects" in p for p in problems)
    assert any("scales on evt-nowhere, which the topology does not declare" in p for p in problems)
    assert any(f"scales on {foreign}, which billing does not consume" in p for p in problems)
    assert any("consumer postings has no ScaledObject" in p for p in problems)
    assert any("ScaledObject/providers scales provider, which is no Deployment" in p for p in problems)


def test_scaling_check_rejects_mixed_lanes_a_queue_counted_twice_and_a_lane_deployment_running_every_lane():
    docs = objects(PRODUCTION)
    queues = consumed_queues()
    smb = one(docs, "ScaledObject", "matching-smb")["spec"]["triggers"]
    enterprise = one(docs, "ScaledObject", "matching-enterprise")["spec"]["triggers"]
    stolen = next(t for t in enterprise if t["metadata"]["queueName"].endswith("--enterprise"))
    smb.append(copy.deepcopy(stolen))  # the enterprise queue now also scales the smb lane
    container_of(docs, "contracting-enterprise")["args"] = ["run", "contracting"]  # consumes every lane
    problems = manifests.scaling_problems(docs, queues, LANES)
    queue = stolen["metadata"]["queueName"]
    assert sorted(problems) == sorted([
        f"ScaledObject/matching-smb of lane smb scales on {queue} of lane enterprise",
        "ScaledObject/matching-smb mixes lanes ['enterprise', 'smb']",
        "Deployment/contracting-enterprise of lane enterprise runs ['run', 'contracting']",
        f"queue {queue} of matching is a trigger of 2 ScaledObjects ['matching-enterprise', 'matching-smb'], "
        "not exactly 1",
    ]), problems


def test_no_scaled_object_scales_on_a_queue_that_one_consumer_takes_whatever_the_replicas():
    docs = objects(PRODUCTION)
    queues = consumed_queues()
    single = sorted(q for q in queues["matching"] if "--single--smb" in q)
    assert single  # matching's provider and contract changes: one re-ranker per lane
    assert manifests.scaling_problems(docs, queues, LANES) == []
    smb = one(docs, "ScaledObject", "matching-smb")["spec"]["triggers"]
    smb.append({**copy.deepcopy(smb[0]), "metadata": {**smb[0]["metadata"], "queueName": single[0]}})
    assert manifests.scaling_problems(docs, queues, LANES) == [
        f"queue {single[0]} of matching is a trigger of 1 ScaledObjects ['matching-smb'], not exactly 0"]


@overlays
def test_every_laned_consumer_runs_a_deployment_per_lane_and_the_gateway_one(overlay):
    """A service with event or command queues of a lane runs a Deployment per lane; one with RPC only (providers)
    one Deployment, serving every lane's RPC queue."""
    deployments = named(objects(overlay), "Deployment")
    for service, queues in consumed_queues().items():
        if service != "gateway" and any(q.endswith(f"--{lane}") for q in queues for lane in LANES
                                        if not q.startswith("rpc-")):
            for lane in LANES:
                args = deployments[f"{service}-{lane}"]["spec"]["template"]["spec"]["containers"][0]["args"]
                assert args == ["run", service, "--lane", lane]
            assert service not in deployments
    assert {"matching-enterprise", "matching-smb", "contracting-enterprise", "billing-smb"} <= set(deployments)
    assert deployments["gateway"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["run", "gateway"]
    assert deployments["providers"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["run", "providers"]


@overlays
def test_the_large_lanes_pods_run_fewer_workers_and_request_less_cpu_than_the_small_lanes(overlay):
    """Their CPU request is their weight when a node's CPU is contended: a flood of large work leaves the small
    lane its share, and holds fewer transactions open in the service's database (docs/operations.md, Scaling)."""
    docs = objects(overlay)
    for service in ("matching", "contracting", "billing"):
        small, large = container_of(docs, f"{service}-smb"), container_of(docs, f"{service}-enterprise")
        assert int(env(large, "TASKLINKR_MAX_WORKERS")["value"]) < int(env(small, "TASKLINKR_MAX_WORKERS")["value"])
        cpu = {lane: int(c["resources"]["requests"]["cpu"].removesuffix("m")) for lane, c in (("smb", small),
                                                                                              ("enterprise", large))}
        assert cpu["enterprise"] * 4 < cpu["smb"]
        assert large["resources"]["limits"] == small["resources"]["limits"]
