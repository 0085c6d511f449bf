"""The generator's Kubernetes manifests (``--format kubernetes``), validated offline against the
schemas of two Kubernetes minor versions (``kubernetes-validate`` ships them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kubernetes

from executor_pool.__main__ import main
from executor_pool.compose import container_config as compose_config
from executor_pool.kubernetes import EXECUTOR_CAPABILITIES, PRIVATE_RANGES
from tests.conftest import EXAMPLES

#: The oldest and the newest minor version the manifests are checked against.
KUBERNETES_VERSIONS = ("1.35.0", "1.37.0")


def generate(tmp_path: Path, *flags: str) -> list[dict[str, Any]]:
    output = tmp_path / "pool.k8s.yaml"
    assert main(["compose", "--format", "kubernetes", "-o", str(output), *flags]) == 0
    return [document for document in yaml.safe_load_all(output.read_text()) if document]


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


FLAGS = ("-n", "3", "-t", "python:2,node_js:1", "-m", str(EXAMPLES / "my_utilities"), "-s", "/srv/saved",
         "-e", "MEM_LIMIT=512M,CPUS=0.25,MEM_RESERVATION=256M,API_KEY=abc",
         "--image", "node_js=node-executor:1")  # fmt: skip


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_kubernetes(tmp_path: Path, version: str) -> None:
    for flags in (
        FLAGS,
        ("-n", "1", "-t", "python:1", "--workspace-claim", "code", "--store", "redis://r:6379/0"),
        (*FLAGS, "--recycle", "python"),
    ):
        for document in generate(tmp_path, *flags):
            kubernetes.validate(document, version, strict=True)  # raises on any unknown or wrong field


def test_each_type_is_a_stateful_set_behind_a_headless_service(tmp_path: Path) -> None:
    documents = generate(tmp_path, *FLAGS)
    sets, services = by_kind(documents, "StatefulSet"), by_kind(documents, "Service")
    assert {name: s["spec"]["replicas"] for name, s in sets.items()} == {"executor-python": 2, "executor-node-js": 1}
    for name, stateful_set in sets.items():
        assert services[name]["spec"]["clusterIP"] == "None" and stateful_set["spec"]["serviceName"] == name
        container = stateful_set["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8432}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8432}
        assert container["resources"]["limits"] == {"memory": "512M", "cpu": "0.25"}
        assert container["resources"]["requests"]["memory"] == "256M"
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["WORKSPACE_FOLDER"] == "/data" and env["SUBMISSION_DIR"] == "/submission"
        assert env["SESSION_ENV"] == "API_KEY" and env["API_KEY"] == "abc"  # for user code, as in compose
        security = container["securityContext"]
        assert security["capabilities"] == {"drop": ["ALL"], "add": EXECUTOR_CAPABILITIES}
        assert security["allowPrivilegeEscalation"] is False
        assert stateful_set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "submission"
    assert sets["executor-node-js"]["spec"]["template"]["spec"]["containers"][0]["image"] == "node-executor:1"


def test_the_manager_routes_each_id_to_a_stable_pod_address(tmp_path: Path) -> None:
    documents = generate(tmp_path, *FLAGS)
    config_map = by_kind(documents, "ConfigMap")["executor-manager-config"]
    config = json.loads(config_map["data"]["container_config.json"])
    assert config == {
        "0": {"url": "http://executor-python-0.executor-python:8432", "type": "python"},
        "1": {"url": "http://executor-python-1.executor-python:8432", "type": "python"},
        "2": {"url": "http://executor-node-js-0.executor-node-js:8432", "type": "node_js"},
    }
    # The same ids, of the same types, as the compose file's container_config.json.
    from executor_pool.compose import Deployment

    compose = compose_config(Deployment(types=[("python", 2), ("node_js", 1)]))
    assert {i: entry["type"] for i, entry in compose.items()} == {i: entry["type"] for i, entry in config.items()}
    manager = by_kind(documents, "Deployment")["executor-manager"]
    spec = manager["spec"]["template"]["spec"]["containers"][0]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["capabilities"] == {
        "drop": ["ALL"]
    }
    assert manager["spec"]["replicas"] == 1  # no shared store: exactly one manager
    workspace = by_kind(documents, "ConfigMap")["executor-workspace"]["data"]
    assert set(workspace) == {p.name for p in (EXAMPLES / "my_utilities").iterdir() if p.is_file()}


def test_a_shared_store_gives_two_managers_and_a_claim_replaces_the_config_map(tmp_path: Path) -> None:
    documents = generate(tmp_path, "-n", "1", "-t", "python:1", "--workspace-claim", "code",
                         "--store", "redis://redis:6379/0")  # fmt: skip
    manager = by_kind(documents, "Deployment")["executor-manager"]
    assert manager["spec"]["replicas"] == 2
    assert manager["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == ["--store", "redis://redis:6379/0"]
    assert "executor-workspace" not in by_kind(documents, "ConfigMap")
    volume = by_kind(documents, "StatefulSet")["executor-python"]["spec"]["template"]["spec"]["volumes"][0]
    assert volume["persistentVolumeClaim"] == {"claimName": "code", "readOnly": True}


def test_a_workspace_too_large_for_a_config_map_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "big.py").write_text("#" * (2 * 1024 * 1024))
    assert main(["compose", "--format", "kubernetes", "-o", str(tmp_path / "k.yaml"), "-n", "1", "-t", "python:1",
                 "-m", str(code)]) == 2  # fmt: skip
    assert "--workspace-claim" in capsys.readouterr().out


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    assert set(selector) == {"matchLabels"}, selector  # no expressions to read wrongly here
    wanted: dict[str, str] = selector["matchLabels"]
    return wanted.items() <= labels.items()


def test_network_policies_cover_every_executor_pod(tmp_path: Path) -> None:
    """Issue #29: the manifests had no NetworkPolicy, so any executor's user code reached every
    other executor and the manager. Each executor pod is now selected by policies that let in only
    the manager's pods, on the executor's port, and let nothing out; a type given to
    --allow-outbound may also reach public addresses and the cluster's DNS, never a private one."""
    documents = generate(tmp_path, *FLAGS, "--allow-outbound", "node_js")
    policies = list(by_kind(documents, "NetworkPolicy").values())
    manager_pods = by_kind(documents, "Deployment")["executor-manager"]["spec"]["template"]["metadata"]["labels"]
    sets = by_kind(documents, "StatefulSet")
    assert sets
    for name, stateful_set in sets.items():
        labels = stateful_set["spec"]["template"]["metadata"]["labels"]
        selecting = [policy["spec"] for policy in policies if _selects(policy, labels)]
        assert any({"Ingress", "Egress"} <= set(spec["policyTypes"]) for spec in selecting), name
        ingress = [rule for spec in selecting for rule in spec.get("ingress", [])]
        assert ingress and all(
            rule["ports"] == [{"protocol": "TCP", "port": 8432}]
            and all(
                set(peer) == {"podSelector"}  # this namespace's pods only
                and peer["podSelector"]["matchLabels"]
                and peer["podSelector"]["matchLabels"].items() <= manager_pods.items()
                and not peer["podSelector"]["matchLabels"].items() <= labels.items()  # no executor's
                for peer in rule["from"]
            )
            for rule in ingress
        ), name
        egress = [rule for spec in selecting for rule in spec.get("egress", [])]
        if labels["executor/type"] == "node_js":
            blocks = [peer["ipBlock"] for rule in egress for peer in rule["to"] if "ipBlock" in peer]
            assert blocks == [{"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}]
            others = [peer for rule in egress for peer in rule["to"] if "ipBlock" not in peer]
            assert all(rule.get("ports") for rule in egress if "ipBlock" not in rule["to"][0]) and others
        else:
            assert egress == [], name
    # The manager's own pods are not the executors' (no policy meant for executors selects them).
    assert not any(_selects(policy, manager_pods) for policy in policies)


def test_a_recycled_types_pods_are_the_only_ones_the_managers_role_may_delete(tmp_path: Path) -> None:
    """Recycling (``--recycle``): the manager deletes a pod between users and its StatefulSet makes
    it again. Its Role may get and delete the recycled pods, by name, and nothing else; only the
    manager's pod mounts the account's token."""
    documents = generate(tmp_path, *FLAGS, "--recycle", "python")
    config = json.loads(by_kind(documents, "ConfigMap")["executor-manager-config"]["data"]["container_config.json"])
    recycled = {entry["recycle"]["kubernetes"] for entry in config.values() if "recycle" in entry}
    sets = by_kind(documents, "StatefulSet")
    pods = {
        f"{name}-{n}" for name, s in sets.items() if name == "executor-python" for n in range(s["spec"]["replicas"])
    }
    assert recycled == pods == {"executor-python-0", "executor-python-1"}
    assert {entry["type"] for entry in config.values() if "recycle" not in entry} == {"node_js"}  # restarted
    [role] = by_kind(documents, "Role").values()
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete"], "resourceNames": sorted(pods)}
    ]
    [binding] = by_kind(documents, "RoleBinding").values()
    [account] = by_kind(documents, "ServiceAccount").values()
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"]}]
    manager = by_kind(documents, "Deployment")["executor-manager"]["spec"]["template"]["spec"]
    assert manager["serviceAccountName"] == account["metadata"]["name"] and manager["automountServiceAccountToken"]
    for stateful_set in sets.values():  # user code never holds a token of the cluster's API
        assert stateful_set["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    restarted = generate(tmp_path, *FLAGS)
    assert not [d for d in restarted if d["kind"] in ("Role", "RoleBinding", "ServiceAccount")]
    assert (
        by_kind(restarted, "Deployment")["executor-manager"]["spec"]["template"]["spec"]["automountServiceAccountToken"]
        is False
    )
