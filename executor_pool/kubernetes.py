"""`executor-pool compose --format kubernetes`: the pool as Kubernetes manifests.

From the same ``Deployment`` as the compose file:

- per executor type, a StatefulSet and its headless Service: each executor is a pod with a stable
  name and DNS name (``executor-python-0.executor-python``), which the manager routes a session
  to; readiness is ``GET /ready`` (the contract's 503 while not ready), liveness ``GET /health``;
  the limits from ``-e`` (``MEM_LIMIT``, ``CPUS``, ``MEM_RESERVATION``);
- the workspace read-only at ``/data``: a ConfigMap made from ``--mountable-volumes`` (small code;
  a ConfigMap holds at most 1 MiB), or an existing volume claim the operator names
  (``--workspace-claim``); with ``-s``, the save-to folder ``/submission`` as a volume claim per
  pod (kept across sessions and pod restarts, as the host folder is in the compose file);
  ``CONTAINER_ID`` is the pod's name;
- the manager: a Deployment, its Service, and ``container_config.json`` in a ConfigMap; its token
  from the Secret ``executor-manager`` (key ``token``), required, and the executors' token
  (EXECUTOR_TOKEN, SEC-4) from its key ``executor-token``, which executors require and the
  manager sends;
- NetworkPolicies: every executor pod denies all traffic but the manager's calls to its port, so
  user code reaches no other executor, not the manager, and nothing outside; a type given to
  ``--allow-outbound`` may also open connections to public addresses (and ask the cluster's DNS),
  never to private ones, where the pool's pods are. They need a network plugin that enforces
  NetworkPolicy.

Least privilege: the reference executor runs as root only to run user code as throwaway user ids
and to clean up after them, so its container drops every capability but those: SETUID and SETGID
(start a kernel as another user), KILL (end that user's processes), CHOWN and FOWNER (hand a
kernel its folder, remove its files from the shared temporary folders), DAC_OVERRIDE (reach
them); no privilege escalation, the runtime's default seccomp profile. The manager runs as an
unprivileged user with no capabilities at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .compose import EXECUTOR_PORT, MANAGER_PORT, SUBMISSION_MOUNT, WORKSPACE_MOUNT, ComposeError, Deployment

__all__ = [
    "EXECUTOR_CAPABILITIES",
    "EXECUTOR_LABELS",
    "MANAGER_LABELS",
    "kubernetes_documents",
    "pod_address",
    "recycled_pods",
]

#: What the reference executor needs of root (see the module's docstring), and no more.
EXECUTOR_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"]
#: A ConfigMap holds at most this much (Kubernetes' limit on an object, less room for the rest).
CONFIG_MAP_LIMIT = 1000 * 1024
MANAGER_USER = 65534  # nobody
WORKSPACE_CONFIG_MAP = "executor-workspace"
MANAGER = "executor-manager"
#: Every executor pod carries these labels (and its type's); the manager's pods carry the others.
EXECUTOR_LABELS = {"app.kubernetes.io/name": "executor"}
MANAGER_LABELS = {"app.kubernetes.io/name": MANAGER}
#: Where a type allowed out may go: anywhere but private addresses (the cluster's pods and services
#: live there, whatever the cluster's own ranges), and the link-local metadata service.
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"]


def _name(kind: str) -> str:
    """A type's StatefulSet and Service name (a DNS label: lower case, digits and '-')."""
    label = "".join(c if c.isalnum() else "-" for c in kind.lower()).strip("-")
    if not label:
        raise ComposeError(f"--types: {kind!r} gives no usable Kubernetes name")
    return f"executor-{label}"[:52]  # a StatefulSet's pods add "-N" and a revision hash to it


def pod_address(kind: str, ordinal: int) -> str:
    """An executor's stable DNS name within the namespace: pod name, then its headless Service."""
    return f"{_name(kind)}-{ordinal}.{_name(kind)}"


def recycled_pods(deployment: Deployment) -> list[str]:
    """The names of the pods the manager replaces (those of the types of ``--recycle``)."""
    return [f"{_name(kind)}-{ordinal}" for kind, count in deployment.types if kind in deployment.recycle
            for ordinal in range(count)]  # fmt: skip


def container_config(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """What the manager reads: container id -> the executor pod's URL, and its type; for a
    recycled type, the pod the manager deletes (its StatefulSet makes it again)."""
    config: dict[str, dict[str, Any]] = {}
    ordinals = dict.fromkeys((kind for kind, _ in deployment.types), 0)
    for i, kind in enumerate(deployment.container_types()):
        config[str(i)] = {"url": f"http://{pod_address(kind, ordinals[kind])}:{EXECUTOR_PORT}", "type": kind}
        if kind in deployment.recycle:
            config[str(i)]["recycle"] = {"kubernetes": f"{_name(kind)}-{ordinals[kind]}"}
        ordinals[kind] += 1
    return config


def _workspace_files(folder: str) -> dict[str, str]:
    """The workspace's top-level files, for a ConfigMap; ComposeError if it cannot hold them."""
    path = Path(folder)
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(path.iterdir()) if p.is_file()}
    if sum(len(text.encode()) for text in files.values()) > CONFIG_MAP_LIMIT:
        raise ComposeError(
            f"--mountable-volumes {folder}: more than a ConfigMap holds (1 MiB); put it on a volume and pass "
            "--workspace-claim NAME"
        )
    return files


def _resources(deployment: Deployment) -> dict[str, dict[str, str]]:
    resources = deployment.resources()
    limits = {"memory": resources["MEM_LIMIT"], "cpu": resources["CPUS"]}
    if deployment.gpu_ids:
        limits["nvidia.com/gpu"] = "1"  # Kubernetes schedules GPUs by count, not by id
    requests = {"memory": resources.get("MEM_RESERVATION", resources["MEM_LIMIT"]), "cpu": resources["CPUS"]}
    return {"limits": limits, "requests": requests}


def _executor_token() -> dict[str, Any]:
    """EXECUTOR_TOKEN (SEC-4), from the manager's Secret: the executors require it, the manager sends it."""
    return {"name": "EXECUTOR_TOKEN", "valueFrom": {"secretKeyRef": {"name": MANAGER, "key": "executor-token"}}}


def _probe(path: str, period: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": EXECUTOR_PORT}, "periodSeconds": period, "timeoutSeconds": 2}


def _executor_set(deployment: Deployment, kind: str, count: int, workspace_claim: str | None) -> list[dict[str, Any]]:
    """A type's headless Service and StatefulSet."""
    name = _name(kind)
    labels = {**EXECUTOR_LABELS, "app.kubernetes.io/component": name, "executor/type": kind}
    env: list[dict[str, Any]] = [{"name": key, "value": value} for key, value in deployment.environment().items()]
    env.append({"name": "CONTAINER_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    env.append(_executor_token())
    mounts, volumes, claims = [], [], []
    if deployment.workspace or workspace_claim:
        mounts.append({"name": "workspace", "mountPath": WORKSPACE_MOUNT, "readOnly": True})
        source = (
            {"persistentVolumeClaim": {"claimName": workspace_claim, "readOnly": True}}
            if workspace_claim
            else {"configMap": {"name": WORKSPACE_CONFIG_MAP}}
        )
        volumes.append({"name": "workspace", **source})
    if deployment.submission:
        mounts.append({"name": "submission", "mountPath": SUBMISSION_MOUNT})
        claims.append(
            {
                "metadata": {"name": "submission"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }
        )
    container: dict[str, Any] = {
        "name": "executor",
        "image": deployment.images.get(kind, kind),
        "command": ["python", "main.py"],
        "ports": [{"name": "http", "containerPort": EXECUTOR_PORT}],
        "env": env,
        "readinessProbe": _probe("/ready", 2),
        "livenessProbe": {**_probe("/health", 10), "failureThreshold": 3},
        "startupProbe": {**_probe("/health", 2), "failureThreshold": 60},
        "resources": _resources(deployment),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": EXECUTOR_CAPABILITIES},
        },
    }
    if mounts:
        container["volumeMounts"] = mounts
    pod: dict[str, Any] = {
        "containers": [container],
        "automountServiceAccountToken": False,  # user code has no business with the cluster's API
        "enableServiceLinks": False,  # nor with the other services' addresses in its environment
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
    }
    if volumes:
        pod["volumes"] = volumes
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "clusterIP": "None",  # headless: one stable DNS name per pod
            "publishNotReadyAddresses": True,  # the manager asks /ready itself
            "selector": labels,
            "ports": [{"name": "http", "port": EXECUTOR_PORT, "targetPort": EXECUTOR_PORT}],
        },
    }
    stateful_set: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "serviceName": name,
            "replicas": count,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
    if claims:
        stateful_set["spec"]["volumeClaimTemplates"] = claims
    return [service, stateful_set]


def _manager_account(deployment: Deployment) -> list[dict[str, Any]]:
    """Recycling: the manager's service account, and a Role that lets it get and delete the pods it
    recycles, by name, and nothing else."""
    rbac = "rbac.authorization.k8s.io"
    subject = {"kind": "ServiceAccount", "name": MANAGER}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": MANAGER, "labels": MANAGER_LABELS},
         "automountServiceAccountToken": False},
        {"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": {"name": MANAGER, "labels": MANAGER_LABELS},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete"],
                    "resourceNames": recycled_pods(deployment)}]},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": {"name": MANAGER, "labels": MANAGER_LABELS},
         "roleRef": {"apiGroup": rbac, "kind": "Role", "name": MANAGER}, "subjects": [subject]},
    ]  # fmt: skip


def _manager(deployment: Deployment, config: dict[str, dict[str, Any]], store: str | None) -> list[dict[str, Any]]:
    """The manager's configuration, Deployment and Service (and, recycling, its account)."""
    labels = MANAGER_LABELS
    name = Path(deployment.config_file).name
    args = ["--config", f"/config/{name}", "--host", "0.0.0.0", "--port", str(MANAGER_PORT)]
    args += deployment.manager_options()
    if store:
        args += ["--store", store]
    # Required: a manager on 0.0.0.0 refuses to start without its token (the generator prints how
    # to make the Secret from the token file it writes).
    env = [
        {"name": "MANAGER_TOKEN", "valueFrom": {"secretKeyRef": {"name": MANAGER, "key": "token"}}},
        _executor_token(),
        *({"name": key, "value": value} for key, value in deployment.manager_environment().items()),
    ]
    container = {
        "name": "manager",
        "image": deployment.manager_image,
        "command": ["python", "-m", "executor_pool.manager", *args],
        "ports": [{"name": "http", "containerPort": MANAGER_PORT}],
        "env": env,
        "readinessProbe": {"httpGet": {"path": "/health", "port": MANAGER_PORT}, "periodSeconds": 5},
        "volumeMounts": [{"name": "config", "mountPath": "/config", "readOnly": True}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": MANAGER_USER,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod: dict[str, Any] = {
        "containers": [container],
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "volumes": [{"name": "config", "configMap": {"name": f"{MANAGER}-config"}}],
    }
    if deployment.recycle:  # the API server, as its own account: it deletes the pods it recycles
        pod.update(serviceAccountName=MANAGER, automountServiceAccountToken=True)
    return [
        *(_manager_account(deployment) if deployment.recycle else []),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{MANAGER}-config", "labels": labels},
            "data": {name: json.dumps(config, indent=2) + "\n"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": MANAGER, "labels": labels},
            "spec": {
                # Several managers need a shared store (--store redis://...); without one, exactly one.
                "replicas": 2 if store else 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": MANAGER, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": MANAGER_PORT, "targetPort": MANAGER_PORT}]},
        },
    ]


def kubernetes_documents(
    deployment: Deployment, *, workspace_claim: str | None = None, store: str | None = None
) -> list[dict[str, Any]]:
    """The manifests, to ``kubectl apply -f`` (the manager's container_config is in one of them)."""
    documents: list[dict[str, Any]] = []
    if deployment.workspace and not workspace_claim:
        documents.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": WORKSPACE_CONFIG_MAP},
                "data": _workspace_files(deployment.workspace),
            }
        )
    for kind, count in deployment.types:
        documents += _executor_set(deployment, kind, count, workspace_claim)
    documents += _manager(deployment, container_config(deployment), store)
    return documents + _network_policies(deployment)


def _policy(name: str, pods: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {"matchLabels": pods}, **spec},
    }


def _network_policies(deployment: Deployment) -> list[dict[str, Any]]:
    """Executors: nothing in but the manager's calls to their port, nothing out; a type allowed
    out: public addresses and the cluster's DNS too (policies add up)."""
    policies = [
        _policy(
            "executor-isolation",
            EXECUTOR_LABELS,
            {
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": MANAGER_LABELS}}],
                        "ports": [{"protocol": "TCP", "port": EXECUTOR_PORT}],
                    }
                ],
                "egress": [],
            },
        )
    ]
    dns = [{"protocol": protocol, "port": 53} for protocol in ("UDP", "TCP")]
    for kind in sorted(deployment.outbound):
        policies.append(
            _policy(
                f"{_name(kind)}-outbound",
                {**EXECUTOR_LABELS, "executor/type": kind},
                {
                    "policyTypes": ["Egress"],
                    "egress": [
                        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}]},
                        {
                            "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                            "ports": dns,
                        },
                    ],
                },
            )
        )
    return policies
