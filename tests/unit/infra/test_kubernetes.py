"""`infra/k8s`, checked offline: every manifest parses and has its required fields, built-in kinds pass
`kubernetes-validate`'s strict schemas, the kustomizations list exactly their files (and build, when
`kubectl kustomize` is on the machine), no secret is committed, RBAC grants little, and names, ports,
images and the MLflow URI agree with what compiled pipelines and the configs use."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from components.trainer.component import SegmentationTrainer
from pipeline.cli import build_parser
from pipeline.config import CONFIGS_DIR, load_config
from pipeline.kubeflow_runner import DEFAULT_IMAGE, DEFAULT_TRACKING_URI

REPOSITORY = Path(__file__).resolve().parents[3]
K8S = REPOSITORY / "infra" / "k8s"
KUBERNETES_VERSION = "1.31.0"
CUSTOM_KINDS = {"TFJob"}
"""Kinds of operators (no bundled schema): checked field by field below."""
SECRETS_EXAMPLE = K8S / "mlflow" / "secrets.env.example"


def _documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def _kustomization(folder: Path) -> dict:
    return yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))


def _manifests() -> dict[Path, list[dict]]:
    return {path: _documents(path) for path in sorted(K8S.rglob("*.yaml")) if path.name != "kustomization.yaml"}


def _objects() -> list[tuple[str, dict]]:
    """(namespace from the folder's kustomization, object) of every manifest."""
    return [(_kustomization(path.parent).get("namespace", ""), document)
            for path, documents in _manifests().items() for document in documents]


def _one(kind: str, name: str) -> tuple[str, dict]:
    (found,) = [(namespace, item) for namespace, item in _objects()
                if item["kind"] == kind and item["metadata"]["name"] == name]
    return found


def _containers(item: dict) -> list[dict]:
    if item["kind"] == "TFJob":
        return [container for replica in item["spec"]["tfReplicaSpecs"].values()
                for container in replica["template"]["spec"]["containers"]]
    return item["spec"]["template"]["spec"]["containers"]


def _env(container: dict) -> dict[str, dict]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def test_every_manifest_parses_with_its_required_fields():
    manifests = _manifests()
    assert len(manifests) >= 8
    for path, documents in manifests.items():
        assert documents, path
        for document in documents:
            assert {"apiVersion", "kind", "metadata"} <= set(document), path
            assert document["metadata"].get("name"), path


def test_built_in_kinds_pass_the_strict_kubernetes_schema():
    built_in = [item for _, item in _objects() if item["kind"] not in CUSTOM_KINDS]
    assert {item["kind"] for item in built_in} == {"Namespace", "Service", "StatefulSet", "Deployment", "Job",
                                                    "ServiceAccount", "Role", "RoleBinding"}
    failures = []
    for item in built_in:
        try:
            kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{item['kind']}/{item['metadata']['name']}: {error}")
    assert not failures, failures


def test_the_schema_validator_rejects_a_wrong_field():
    _, service = _one("Service", "mlflow")
    broken = {**service, "spec": {**service["spec"], "ports": [{"port": "five thousand"}]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_each_kustomization_lists_exactly_its_files_and_the_top_one_its_folders():
    top = _kustomization(K8S)
    folders = sorted(path.parent for path in K8S.glob("*/kustomization.yaml"))
    assert sorted(K8S / name for name in top["resources"]) == folders
    for folder in folders:
        listed = _kustomization(folder)["resources"]
        assert all((folder / name).is_file() for name in listed), folder
        assert sorted(listed) == sorted(path.name for path in folder.glob("*.yaml") if path.name != "kustomization.yaml")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed: the static check above stands")
def test_kustomize_builds_every_object_with_the_generated_secret(tmp_path):
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    shutil.copy(copy / "mlflow" / "secrets.env.example", copy / "mlflow" / "secrets.env")
    built = list(yaml.safe_load_all(subprocess.run(["kubectl", "kustomize", str(copy)], check=True,
                                                   capture_output=True, text=True).stdout))
    kinds = sorted(f"{item['kind']}/{item['metadata']['name']}" for item in built)
    secret = next(item for item in built if item["kind"] == "Secret")
    assert secret["metadata"]["name"].startswith("mlflow-secrets-")  # name suffixed with the content's hash
    expected = sorted([f"{item['kind']}/{item['metadata']['name']}" for _, item in _objects()]
                      + [f"Secret/{secret['metadata']['name']}"])
    assert kinds == expected
    references = {variable["valueFrom"]["secretKeyRef"]["name"] for item in built if item["kind"] != "TFJob"
                  and "template" in item.get("spec", {}) for container in _containers(item)
                  for variable in container.get("env", []) if "secretKeyRef" in variable.get("valueFrom", {})}
    assert references == {secret["metadata"]["name"]}  # every reference was rewritten to the generated name


def test_secrets_are_generated_from_an_ignored_file_never_committed():
    assert all(item["kind"] != "Secret" for _, item in _objects())
    (generator,) = _kustomization(K8S / "mlflow")["secretGenerator"]
    assert generator["envs"] == ["secrets.env"]
    ignored = subprocess.run(["git", "check-ignore", "-q", "infra/k8s/mlflow/secrets.env"], cwd=REPOSITORY)
    assert ignored.returncode == 0, "infra/k8s/mlflow/secrets.env must be git-ignored"
    tracked = subprocess.run(["git", "ls-files", "infra"], cwd=REPOSITORY, capture_output=True, text=True).stdout
    assert not [line for line in tracked.splitlines() if Path(line).name == "secrets.env"]
    example_keys = {line.split("=", 1)[0] for line in SECRETS_EXAMPLE.read_text().splitlines()
                    if line and not line.startswith("#")}
    referenced = {(variable["valueFrom"]["secretKeyRef"]["name"], variable["valueFrom"]["secretKeyRef"]["key"])
                  for _, item in _objects() if item["kind"] in ("Deployment", "StatefulSet", "Job")
                  for container in _containers(item) for variable in container.get("env", [])
                  if "secretKeyRef" in variable.get("valueFrom", {})}
    assert {name for name, _ in referenced} == {generator["name"]}
    assert {key for _, key in referenced} == example_keys


def test_mlflow_service_is_where_compiled_pipelines_and_the_kubeflow_config_send_runs():
    uri = urlsplit(DEFAULT_TRACKING_URI)
    service_name, namespace = uri.hostname.split(".")[:2]
    assert uri.hostname == f"{service_name}.{namespace}.svc.cluster.local"
    service_namespace, service = _one("Service", service_name)
    assert service_namespace == namespace
    (port,) = service["spec"]["ports"]
    assert port["port"] == uri.port
    _, deployment = _one("Deployment", "mlflow")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (container,) = _containers(deployment)
    assert {item["name"]: item["containerPort"] for item in container["ports"]}[port["targetPort"]] == uri.port
    args = dict(arg.split("=", 1) for arg in container["args"] if "=" in arg)
    assert args["--port"] == str(uri.port)
    assert f"{uri.hostname}:{uri.port}" in args["--allowed-hosts"].split(",")
    assert load_config(CONFIGS_DIR / "kubeflow_voc_unet.yaml").runtime.mlflow_tracking_uri == DEFAULT_TRACKING_URI


def test_mlflow_reaches_postgres_and_minio_by_their_service_names_and_ports():
    _, deployment = _one("Deployment", "mlflow")
    (container,) = _containers(deployment)
    args = dict(arg.split("=", 1) for arg in container["args"] if "=" in arg)
    backend = urlsplit(args["--backend-store-uri"])
    _, postgres = _one("Service", backend.hostname)
    assert backend.port == postgres["spec"]["ports"][0]["port"]
    _, postgres_set = _one("StatefulSet", "postgres")
    assert _env(_containers(postgres_set)[0])["POSTGRES_DB"]["value"] == backend.path.lstrip("/")
    endpoint = urlsplit(_env(container)["MLFLOW_S3_ENDPOINT_URL"]["value"])
    _, minio = _one("Service", endpoint.hostname)
    assert endpoint.port in {port["port"] for port in minio["spec"]["ports"] if port["name"] == "s3"}
    bucket = urlsplit(args["--artifacts-destination"]).hostname
    _, job = _one("Job", "minio-create-bucket")
    script = " ".join(_containers(job)[0]["args"])
    assert f"http://{endpoint.hostname}:{endpoint.port}" in script and f"store/{bucket}" in script


def test_pipeline_pods_get_little_and_by_name():
    namespace = _kustomization(K8S / "pipeline")["namespace"]
    _, role = _one("Role", "segpipe-pipeline")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        assert set(rule["verbs"]) <= {"get", "create", "patch"}, rule
        if rule["apiGroups"] == [""]:
            assert rule["verbs"] == ["get"] and rule["resourceNames"], rule  # core objects: read, by name
    _, binding = _one("RoleBinding", "segpipe-pipeline")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "segpipe-pipeline"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "segpipe-pipeline", "namespace": namespace}]
    _one("ServiceAccount", "segpipe-pipeline")


def test_the_trainer_tfjob_runs_the_compiled_trainers_executor_in_the_pipeline_image_without_api_access():
    _, job = _one("TFJob", "segpipe-trainer")
    assert job["apiVersion"] == "kubeflow.org/v1"
    replicas = job["spec"]["tfReplicaSpecs"]
    assert set(replicas) == {"Chief", "Worker"} and replicas["Chief"]["replicas"] == 1
    assert replicas["Worker"]["replicas"] >= 1
    _, account = _one("ServiceAccount", "segpipe-trainer")
    assert account["automountServiceAccountToken"] is False
    executor = SegmentationTrainer.EXECUTOR_SPEC.executor_class
    for name, replica in replicas.items():
        assert replica["restartPolicy"] in ("OnFailure", "Always", "ExitCode", "Never"), name
        pod = replica["template"]["spec"]
        assert pod["serviceAccountName"] == "segpipe-trainer" and pod["automountServiceAccountToken"] is False
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name.lower()},
                                      "template": replica["template"]}, KUBERNETES_VERSION, strict=True)
        (container,) = pod["containers"]
        assert container["name"] == "tensorflow"  # the operator's required container name
        assert container["image"] == DEFAULT_IMAGE
        module = container["command"][container["command"].index("-m") + 1]
        importlib.import_module(module)  # TFX's Kubeflow v2 executor entry point, as compiled specs use it
        class_path = container["args"][container["args"].index("--executor_class_path") + 1]
        assert class_path == f"{executor.__module__}.{executor.__name__}"
        for flag, variable, key in (("--json_serialized_invocation_args", "EXECUTOR_INPUT", "executor_input.json"),
                                    ("--json_serialized_inputs_spec_args", "INPUTS_SPEC", "inputs_spec.json")):
            assert container["args"][container["args"].index(flag) + 1] == f"$({variable})"
            configmap = _env(container)[variable]["valueFrom"]["configMapKeyRef"]
            assert configmap == {"name": "segpipe-trainer-invocation", "key": key}


def test_one_image_name_everywhere():
    version = re.search(r'^version = "([^"]+)"$', (REPOSITORY / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert DEFAULT_IMAGE == f"segpipe:{version}"
    compile_args = build_parser().parse_args(["compile", "--out", "x.yaml", "--data-dir", "gs://b/d"])
    assert compile_args.image == DEFAULT_IMAGE
    images = {entry["name"]: f"{entry['newName']}:{entry['newTag']}" for entry in _kustomization(K8S)["images"]}
    assert images["segpipe"] == DEFAULT_IMAGE
    used = {container["image"] for _, item in _objects() if item["kind"] in ("Deployment", "TFJob")
            for container in _containers(item)}
    assert used == {DEFAULT_IMAGE, images["segpipe-mlflow"]}
    dockerfiles = REPOSITORY / "infra" / "docker"
    assert f"-t {DEFAULT_IMAGE} ." in (dockerfiles / "pipeline.Dockerfile").read_text()
    assert f"-t {images['segpipe-mlflow']} ." in (dockerfiles / "mlflow.Dockerfile").read_text()
