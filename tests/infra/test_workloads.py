"""Phase 3's workloads on the cluster, as the real program declares them: every object
valid for the cluster's Kubernetes version, Pod Security "restricted", NetworkPolicies and
security groups equal to the topology's flows, and each role granting exactly its
workload's reaches."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from deployment_helpers import CERT

from coldreach import manifests, policy_eval
from coldreach.runtime import Deployment, Resource
from components.workloads import NAMESPACE
from components.workloads.network_policies import DEFAULT_DENY, PLUMBING
from infra import phases, topology
from infra.config.keys import SCHEMA
from infra.layers.cluster import NODES
from infra.layers.compute import APP_DB_USER
from infra.layers.edge import API_NODE_PORT
from infra.topology import AWS_APIS, EDGE, INTERNET, TIERS, Platform
from policies import catalog
from policies import tokens as t
from policies.kubernetes import pod_spec

EKS = [s.name for s in topology.running(phases.of(3), Platform.EKS)]
DEPLOYMENT = t.K8S_DEPLOYMENT
KUBERNETES_VERSION = SCHEMA.by_name["eksVersion"].default
"""The cluster's version (no stack overrides it): what the objects validate against."""
CLUSTER_GROUP = "eks-cluster-group"
"""EKS creates the cluster's security group; the graph holds only its id."""


@pytest.fixture(scope="module")
def staging(program: Callable[..., Deployment]) -> Deployment:
    return program("staging", 3)


@pytest.fixture(scope="module")
def prod(program: Callable[..., Deployment]) -> Deployment:
    return program("prod", 3, certificateArn=CERT, senderDomain="mail.example.com")


def _k8s(d: Deployment, type_: str) -> dict[str, Resource]:
    return {r.get("metadata")["name"]: r for r in d.of_type(type_)}


# --- schema and Pod Security ---------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_object_validates_strictly_against_the_clusters_schema(
    stack: str, staging: Deployment, prod: Deployment
) -> None:
    d = staging if stack == "staging" else prod
    objects = manifests.manifests(d)
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "Deployment", "Service", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "ServiceAccount", "NetworkPolicy",
            "SecurityGroupPolicy", "ConfigMap"} <= kinds  # fmt: skip
    assert "Job" not in kinds  # MSK's topic API creates the topics
    if stack == "prod":
        assert {"PersistentVolumeClaim", "StorageClass"} <= kinds
    found = {f"{o['kind']}/{o['metadata']['name']}": manifests.problems(o, KUBERNETES_VERSION)
             for o in objects}  # fmt: skip
    assert {k: v for k, v in found.items() if v} == {}


def test_validation_catches_an_unknown_field_and_a_bad_security_group_policy(
    staging: Deployment,
) -> None:
    """The check can fail: strict mode refuses a misspelt field, the CRD schema an empty list."""
    deployment = manifests.manifest(_k8s(staging, DEPLOYMENT)["api"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert manifests.problems(deployment, KUBERNETES_VERSION)
    sgp = manifests.manifest(_k8s(staging, t.K8S_SECURITY_GROUP_POLICY)["api"])
    sgp["spec"]["securityGroups"]["groupIds"] = []
    assert manifests.problems(sgp, KUBERNETES_VERSION)
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert manifests.problems(unknown, KUBERNETES_VERSION)


def _violations(d: Deployment) -> list[str]:
    """The pack's findings on what the workloads declared (and on the tiers they open)."""
    return [
        f"{v.rule} {v.resource}: {v.message}"
        for v in policy_eval.evaluate(d)
        if v.rule.startswith("W") or (v.urn and "coldreach:workloads" in v.urn)
    ]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_pod_meets_pod_security_restricted_and_the_workload_rules(
    stack: str, staging: Deployment, prod: Deployment
) -> None:
    d = staging if stack == "staging" else prod
    assert _violations(d) == []
    # Nor does anything the workloads add to the rest of the stack (the tiers' rules, N6).
    assert [f"{v.rule} {v.resource}" for v in policy_eval.evaluate(d) if v.mandatory] == []
    ran = {r.id for r in catalog.rules() if r.id.startswith("W")}
    assert ran == {"W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9"}


def test_pods_are_restricted_by_their_own_fields(staging: Deployment) -> None:
    deployments = _k8s(staging, DEPLOYMENT)
    assert sorted(deployments) == sorted(EKS)
    pods = [(n, pod_spec(DEPLOYMENT, {"spec": r.get("spec")})) for n, r in deployments.items()]
    for name, spec in pods:
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] == name
        [c] = spec["containers"]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        assert {v["name"] for v in spec["volumes"]} >= {"tmp"}
        zones = [s for s in spec["topologySpreadConstraints"]
                 if s["topologyKey"] == "topology.kubernetes.io/zone"]  # fmt: skip
        assert zones and zones[0]["maxSkew"] == 1
        assert c["resources"]["requests"]["cpu"].endswith("m")
        assert c["resources"]["limits"] == {"memory": c["resources"]["requests"]["memory"]}
    namespace = _k8s(staging, t.K8S_NAMESPACE)[NAMESPACE]
    labels = namespace.get("metadata")["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == f"v{KUBERNETES_VERSION}"


def _container(d: Deployment, name: str) -> dict[str, Any]:
    return _k8s(d, DEPLOYMENT)[name].get("spec")["template"]["spec"]["containers"][0]


def test_probes_fit_each_kind_and_images_are_immutable(staging: Deployment) -> None:
    api, clients, campaigns = (_container(staging, n) for n in ("api", "clients", "campaigns"))
    assert api["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8000}
    assert clients["livenessProbe"]["grpc"] == {"port": 50051}
    assert campaigns["readinessProbe"]["grpc"] == {"port": 50052}
    tracing = _container(staging, "tracing")
    assert tracing["readinessProbe"]["grpc"] == {"port": 13132}
    sender = _container(staging, "sender")
    # No port: its liveness is the heartbeat its poll loop writes where the pod may write.
    assert "ports" not in sender
    assert sender["livenessProbe"]["exec"]["command"] == [
        "python", "-m", "openapi_server.healthcheck", "--worker"
    ]  # fmt: skip
    assert _env(staging, "sender")["DATA_DIR"] == "/tmp"
    for name in ("api", "clients", "campaigns", "sender"):
        assert "@sha256:" in _container(staging, name)["image"]
    assert tracing["image"] == "jaegertracing/jaeger:2.17.0"
    assert tracing["imagePullPolicy"] == "Always"  # a tag may be pushed again
    assert api["imagePullPolicy"] == "IfNotPresent"  # a digest never changes
    assert clients["args"] == ["coldreach-app", "serve-clients"]
    assert sender["args"] == ["coldreach-app", "consume"]
    assert api["args"][0] == "uvicorn"


# --- services, scaling, disruption ---------------------------------------------------------


def test_grpc_services_are_headless_and_the_api_is_on_the_load_balancers_node_port(
    staging: Deployment,
) -> None:
    services = _k8s(staging, t.K8S_SERVICE)
    assert sorted(services) == ["api", "campaigns", "clients", "tracing"]  # sender: no port
    for name in ("clients", "campaigns", "tracing"):
        assert services[name].get("spec")["clusterIP"] == "None"
    api = services["api"].get("spec")
    assert api["type"] == "NodePort" and api["externalTrafficPolicy"] == "Cluster"
    # The port the load balancer's cluster target group sends to.
    [targets] = [g for g in staging.of_type("aws:lb/targetGroup:TargetGroup")
                 if g.get("targetType") == "instance"]  # fmt: skip
    assert api["ports"][0]["nodePort"] == targets.get("port") == API_NODE_PORT
    assert api["ports"][0]["targetPort"] == 8000


def test_hpa_owns_the_replicas_and_every_workload_has_a_pdb(staging: Deployment) -> None:
    hpas = _k8s(staging, t.K8S_HPA)
    assert sorted(hpas) == ["api", "campaigns", "clients", "sender"]
    assert hpas["sender"].get("spec")["minReplicas"] == 2
    assert hpas["sender"].get("spec")["maxReplicas"] == 8
    metric = hpas["api"].get("spec")["metrics"][0]["resource"]
    assert metric == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    deployments = _k8s(staging, DEPLOYMENT)
    for name in hpas:
        assert "replicas" not in deployments[name].get("spec"), name
    # Jaeger's storage is single-writer: one pod, no autoscaler.
    assert deployments["tracing"].get("spec")["replicas"] == 1
    pdbs = _k8s(staging, t.K8S_PDB)
    assert sorted(pdbs) == sorted(EKS)
    assert all(p.get("spec")["maxUnavailable"] == 1 for p in pdbs.values())


# --- NetworkPolicies = flows ---------------------------------------------------------------


def _flows_from_policies(d: Deployment, vpc_cidr: str) -> set[tuple[str, str, int]]:
    """Reads the NetworkPolicies back into (source, target, port) flows."""
    by_port = {tier.port: name for name, tier in TIERS.items()}
    found: set[tuple[str, str, int]] = set()

    def peer(p: dict[str, Any], port: int, outward: bool) -> str:
        if "podSelector" in p:
            return p["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        cidr = p["ipBlock"]["cidr"]
        if cidr == "0.0.0.0/0":
            return AWS_APIS
        assert cidr == vpc_cidr
        return by_port[port] if outward else EDGE

    for name, r in _k8s(d, t.K8S_NETWORK_POLICY).items():
        if name == DEFAULT_DENY or name in PLUMBING:
            continue
        spec = r.get("spec")
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == name
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        for rule in spec["ingress"]:
            [p], [port] = rule["from"], rule["ports"]
            found.add((peer(p, port["port"], False), name, port["port"]))
        for rule in spec["egress"]:
            [p], [port] = rule["to"], rule["ports"]
            found.add((name, peer(p, port["port"], True), port["port"]))
    return found


def test_network_policies_are_exactly_the_topologys_flows(staging: Deployment) -> None:
    d = staging
    declared = topology.declare(phases.of(3))
    expected = {(f.source, f.target, f.port) for f in declared.flows_on(Platform.EKS)
                if f.source != INTERNET}  # fmt: skip
    assert _flows_from_policies(d, "10.41.0.0/16") == expected
    policies = _k8s(d, t.K8S_NETWORK_POLICY)
    assert policies[DEFAULT_DENY].get("spec") == {
        "podSelector": {}, "policyTypes": ["Ingress", "Egress"]
    }  # fmt: skip
    dns = policies["allow-dns"].get("spec")["egress"]
    assert dns[0]["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert {p["protocol"] for p in dns[0]["ports"]} == {"UDP", "TCP"}
    credentials = policies["allow-pod-identity"].get("spec")
    assert credentials["podSelector"]["matchExpressions"][0]["values"] == [
        "api", "campaigns", "clients", "sender"
    ]  # fmt: skip
    assert credentials["egress"][0]["to"] == [{"ipBlock": {"cidr": "169.254.170.23/32"}}]


# --- security groups for pods --------------------------------------------------------------


def _group_of(d: Deployment, node: str) -> Resource:
    [group] = [r for r in d.of_type("aws:ec2/securityGroup:SecurityGroup")
               if (r.get("tags") or {}).get("coldreach:node") == node]  # fmt: skip
    return group


def _cluster_group_id(d: Deployment) -> str:
    [cluster] = d.of_type("aws:eks/cluster:Cluster")
    return cluster.out("vpcConfig")["clusterSecurityGroupId"]


def _admitted(d: Deployment, group: Resource) -> dict[str, set[int]]:
    """Following the graph by ids: the nodes whose groups the group's ingress rules name
    (EKS's cluster group by the id the cluster reports)."""
    cluster_group = _cluster_group_id(d)
    found: dict[str, set[int]] = {}
    for rule in d.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        if rule.get("securityGroupId") != group.id:
            continue
        assert rule.get("cidrIpv4") is None, rule.name
        referenced = rule.get("referencedSecurityGroupId")
        if referenced == cluster_group:
            node = CLUSTER_GROUP
        else:
            source = d.by_id(referenced)
            node = (source.get("tags") or {}).get("coldreach:node", source.name)
        found.setdefault(node, set()).add(rule.get("fromPort"))
    return found


@pytest.mark.parametrize("tier", ["database", "kafka"])
def test_data_tiers_admit_exactly_the_services_the_topology_names(
    staging: Deployment, tier: str
) -> None:
    declared = topology.declare(phases.of(3))
    admitted = _admitted(staging, _group_of(staging, tier))
    assert sorted(admitted) == sorted(declared.admits(tier))
    assert all(ports == {TIERS[tier].port} for ports in admitted.values())


def test_a_pod_is_admitted_only_after_its_group_policy_and_its_credentials(
    staging: Deployment,
) -> None:
    """EKS gives a pod its security group and its Pod Identity credentials at admission
    only: the Deployment waits for both, so no first pod starts without them."""
    deployments = _k8s(staging, t.K8S_DEPLOYMENT)
    policies = _k8s(staging, t.K8S_SECURITY_GROUP_POLICY)
    associations = {r.get("serviceAccount"): r for r in staging.of_type(t.EKS_POD_IDENTITY)}
    assert set(associations) == {name for name in EKS if name != "tracing"}
    for name in EKS:
        after = set(deployments[name].dependencies)
        assert policies[name].urn in after, name
        if name in associations:
            assert associations[name].urn in after, name


def test_each_workloads_pods_get_their_own_group(staging: Deployment) -> None:
    declared = topology.declare(phases.of(3))
    policies = _k8s(staging, t.K8S_SECURITY_GROUP_POLICY)
    assert sorted(policies) == sorted(EKS)
    for name in EKS:
        group = _group_of(staging, name)
        spec = policies[name].get("spec")
        assert spec["securityGroups"]["groupIds"] == [group.id]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == name
        admitted = _admitted(staging, group)
        peers = {n for n in admitted if n not in (NODES, CLUSTER_GROUP)}
        assert peers == set(declared.admits(name)), name
    # The kubelet probes from the nodes (EKS's cluster group), on the probe port only.
    probes = {"api": 8000, "clients": 50051, "campaigns": 50052, "tracing": 13132}
    for name, port in probes.items():
        assert _admitted(staging, _group_of(staging, name))[CLUSTER_GROUP] == {port}, name
    # kube-proxy forwards the load balancer's NodePort traffic from our node group, to
    # the API's pods alone.
    assert _admitted(staging, _group_of(staging, "api"))[NODES] == {8000}
    for name in EKS:
        if name != "api":
            assert NODES not in _admitted(staging, _group_of(staging, name)), name
    sender = _admitted(staging, _group_of(staging, "sender"))
    assert CLUSTER_GROUP not in sender and NODES not in sender  # no probe, no port


# --- roles and grants ----------------------------------------------------------------------


def _roles(d: Deployment) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Workload -> (trust policy, statements), through the Pod Identity associations."""
    found = {}
    for association in d.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation"):
        role = next(r for r in d.of_type("aws:iam/role:Role")
                    if r.out("arn") == association.get("roleArn"))  # fmt: skip
        [policy] = [p for p in d.of_type("aws:iam/rolePolicy:RolePolicy")
                    if p.get("role") == role.id]  # fmt: skip
        assert association.get("namespace") == NAMESPACE
        found[association.get("serviceAccount")] = (
            json.loads(role.get("assumeRolePolicy")),
            json.loads(policy.get("policy"))["Statement"],
        )
    return found


def _grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(a, r) for s in statements for a in s["Action"] for r in s["Resource"]}


def test_each_role_grants_exactly_its_reaches(prod: Deployment) -> None:
    roles = _roles(prod)
    assert sorted(roles) == ["api", "campaigns", "clients", "sender"]  # not tracing
    secrets = {r.name: r.out("arn") for r in prod.of_type("aws:secretsmanager/secret:Secret")}
    shard_1, shard_2 = secrets["db-credentials"], secrets["shard2-credentials"]
    unsubscribe = secrets["unsubscribe-key-secret"]
    [cluster] = prod.of_type("aws:msk/cluster:Cluster")
    kafka = cluster.out("arn")
    topics = {r.get("name"): r.out("arn") for r in prod.of_type("aws:msk/topic:Topic")}
    send, dead_letters = topics["email.send.v1"], topics["email.send.dlq.v1"]
    group = kafka.replace(":cluster/", ":group/") + "/sender"
    read = "secretsmanager:GetSecretValue"
    # The edge finds an unsubscribing client on its own shard: every shard, like the services.
    assert _grants(roles["api"][1]) == {(read, shard_1), (read, shard_2), (read, unsubscribe)}
    assert _grants(roles["clients"][1]) == {(read, shard_1), (read, shard_2)}
    assert _grants(roles["campaigns"][1]) == {
        (read, shard_1), (read, shard_2),
        ("kafka-cluster:Connect", kafka), ("kafka-cluster:WriteDataIdempotently", kafka),
        ("kafka-cluster:DescribeTopic", send), ("kafka-cluster:WriteData", send),
    }  # fmt: skip
    sender = _grants(roles["sender"][1])
    ses = {g for g in sender if g[0] == "ses:SendEmail"}
    assert ses and all(g[1].startswith("arn:aws:ses:") for g in ses)
    assert sender - ses == {
        (read, shard_1), (read, shard_2), (read, unsubscribe),
        ("kafka-cluster:Connect", kafka), ("kafka-cluster:WriteDataIdempotently", kafka),
        ("kafka-cluster:DescribeTopic", send), ("kafka-cluster:ReadData", send),
        ("kafka-cluster:WriteData", send),  # its outbox relay publishes
        ("kafka-cluster:DescribeTopic", dead_letters), ("kafka-cluster:WriteData", dead_letters),
        ("kafka-cluster:DescribeGroup", group), ("kafka-cluster:AlterGroup", group),
    }  # fmt: skip
    # Nobody may create, alter or delete topics: MSK's topic API does that from the program.
    granted = {action for _, statements in roles.values() for action, _ in _grants(statements)}
    assert not {a for a in granted if "Topic" in a and not a.endswith("DescribeTopic")}
    [eks] = prod.of_type("aws:eks/cluster:Cluster")
    eks_name = eks.out("name")
    for name, (trust, _) in roles.items():
        [statement] = trust["Statement"]
        assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
        assert statement["Condition"]["StringEquals"] == {
            "aws:RequestTag/eks-cluster-name": eks_name,
            "aws:RequestTag/kubernetes-namespace": NAMESPACE,
            "aws:RequestTag/kubernetes-service-account": name,
        }


def test_with_iam_database_auth_pods_sign_in_as_the_app_role_and_read_no_shard_secret(
    program: Callable[..., Deployment],
) -> None:
    """`dbIamAuth: on` (the ECS services sign in with IAM tokens and the master secret is
    closed): the pods connect the same way, each to exactly the shards it reaches."""
    d = program("staging", 3, dbIamAuth="on")
    roles = _roles(d)
    instances = {r.name: r for r in d.of_type("aws:rds/instance:Instance")}

    def connect(instance: str) -> str:
        r = instances[instance]
        region, account = r.out("arn").split(":")[3:5]
        return f"arn:aws:rds-db:{region}:{account}:dbuser:{r.out('resourceId')}/{APP_DB_USER}"

    shard_1, shard_2 = connect("db-instance"), connect("shard2-instance")
    by_action = {
        name: {(a, r) for a, r in _grants(statements) if a.startswith(("rds-db", "secrets"))}
        for name, (_, statements) in roles.items()
    }
    unsubscribe = next(r.out("arn") for r in d.of_type("aws:secretsmanager/secret:Secret")
                       if r.name == "unsubscribe-key-secret")  # fmt: skip
    read = "secretsmanager:GetSecretValue"
    assert by_action["api"] == by_action["clients"] | {(read, unsubscribe)}
    assert by_action["clients"] == {("rds-db:connect", shard_1), ("rds-db:connect", shard_2)}
    assert by_action["sender"] == by_action["clients"] | {(read, unsubscribe)}
    shard_2_address = instances["shard2-instance"].out("address")
    assert _env(d, "clients")["DB_SHARD_2"] == (
        f"postgresql://{APP_DB_USER}@{shard_2_address}:5432/coldreach"
    )
    for name in ("api", "clients"):
        env = _env(d, name)
        assert env["DB_IAM_AUTH"] == "1" and env["DB_USER"] == APP_DB_USER
        assert env["DB_DIRECTORY"].startswith(f"postgresql://{APP_DB_USER}@")
        assert not [k for k in env if k.endswith("_SECRET_ARN") and k.startswith("DB_")], name


def _env(d: Deployment, name: str) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container(d, name).get("env", [])}


def test_environment_follows_the_reaches_and_holds_no_secret(prod: Deployment) -> None:
    api, clients, sender = _env(prod, "api"), _env(prod, "clients"), _env(prod, "sender")
    assert api["CLIENT_SERVICE_ADDR"] == f"dns:///clients.{NAMESPACE}.svc.cluster.local:50051"
    assert api["CAMPAIGN_SERVICE_ADDR"] == f"dns:///campaigns.{NAMESPACE}.svc.cluster.local:50052"
    assert api["DB_DIRECTORY"].endswith(":5432/coldreach_directory")
    assert api["DB_SHARD_2"] == clients["DB_SHARD_2"] and "KAFKA_BOOTSTRAP_SERVERS" not in api
    shards = [r for r in prod.of_type("aws:rds/instance:Instance") if r.name == "shard2-instance"]
    [shard_2] = shards
    secrets = {r.name: r.out("arn") for r in prod.of_type("aws:secretsmanager/secret:Secret")}
    assert clients["DB_SHARD_2"] == f"postgresql://{shard_2.out('address')}:5432/coldreach"
    assert clients["DB_SHARD_2_SECRET_ARN"] == secrets["shard2-credentials"]
    assert "CAMPAIGN_SERVICE_ADDR" not in clients and "MAILER" not in clients
    [msk] = prod.of_type("aws:msk/cluster:Cluster")
    assert sender["KAFKA_BOOTSTRAP_SERVERS"] == msk.out("bootstrapBrokersSaslIam")
    assert sender["KAFKA_GROUP_ID"] == "sender" and sender["KAFKA_AUTH"] == "iam"
    assert sender["KAFKA_CREATE_TOPICS"] == "0"  # MSK's topic API made them
    [db] = [r for r in prod.of_type("aws:rds/instance:Instance") if r.name == "db-instance"]
    assert (api["DB_HOST"], api["DB_PORT"]) == (db.out("address"), "5432")
    assert clients["GRPC_PORT"] == "50051" and api["PORT"] == "8000"
    assert sender["MAILER"] == "ses"
    for env in (api, clients, sender):
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
            f"http://tracing.{NAMESPACE}.svc.cluster.local:4317"
        )
    words = ("PASSWORD", "password")
    for name in EKS:
        for key, value in _env(prod, name).items():
            assert not any(w in key or w in str(value) for w in words), (name, key)


def test_the_topics_the_pods_use_are_the_ones_msk_creates(staging: Deployment) -> None:
    """No Job and no admin client: the send and dead-letter topics the pods are told are
    `aws.msk.Topic` resources of the same cluster."""
    assert not staging.of_type(t.K8S_JOB)
    [msk] = staging.of_type("aws:msk/cluster:Cluster")
    created = {r.get("name") for r in staging.of_type("aws:msk/topic:Topic")
               if r.get("clusterArn") == msk.out("arn")}  # fmt: skip
    campaigns, sender = _env(staging, "campaigns"), _env(staging, "sender")
    assert campaigns["KAFKA_SEND_TOPIC"] == sender["KAFKA_SEND_TOPIC"] == "email.send.v1"
    assert {sender["KAFKA_SEND_TOPIC"], sender["KAFKA_DLQ_TOPIC"]} <= created
    assert campaigns["QUEUE_BACKEND"] == sender["QUEUE_BACKEND"] == "kafka"
    assert "KAFKA_DLQ_TOPIC" not in campaigns


# --- tracing -------------------------------------------------------------------------------


def _tracing_config(d: Deployment) -> dict[str, Any]:
    config = _k8s(d, t.K8S_CONFIG_MAP)["tracing-config"]
    return yaml.safe_load(config.get("data")["config.yaml"])


def test_tracing_keeps_spans_in_memory_outside_prod_and_on_a_volume_in_prod(
    staging: Deployment, prod: Deployment
) -> None:
    backends = _tracing_config(staging)["extensions"]["jaeger_storage"]["backends"]
    assert "memory" in backends["traces"]
    assert not staging.of_type(t.K8S_PVC)
    badger = _tracing_config(prod)["extensions"]["jaeger_storage"]["backends"]["traces"]
    assert badger["badger"]["ephemeral"] is False
    [claim] = prod.of_type(t.K8S_PVC)
    assert claim.get("spec")["resources"]["requests"]["storage"] == "20Gi"
    [storage_class] = prod.of_type(t.K8S_STORAGE_CLASS)
    assert storage_class.get("parameters") == {"type": "gp3", "encrypted": "true"}
    spec = _k8s(prod, DEPLOYMENT)["tracing"].get("spec")
    assert spec["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "tracing-data"


def test_shard_one_is_its_own_database_beside_the_phase_2_source(staging: Deployment) -> None:
    """`migrate-shards` reads the phase-2 database and refuses a source that is also a
    shard: shard 1 is another database on the same instance."""
    env = _env(staging, "clients")
    [db] = [r for r in staging.of_type("aws:rds/instance:Instance") if r.name == "db-instance"]
    assert env["DB_SHARD_1"].endswith(f"{db.out('address')}:5432/coldreach_shard1")
    assert env["DB_SHARD_2"].endswith(":5432/coldreach")
    assert db.get("dbName") == "coldreach"
