"""deploy/k8s/indexed-job.yaml: valid for the Kubernetes API.

No Kubernetes cluster can run here (no image can be pulled): the manifest is validated against
the Kubernetes API's own schema (kubernetes-validate, from PyPI) for the version the README
names and for the newest one it ships. Its pod script, run once per JOB_COMPLETION_INDEX and
merged, is tests/system/test_k8s_pods.py (with the Slurm array: the deploy runs).
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.support import REPO, require

K8S = REPO / "deploy" / "k8s" / "indexed-job.yaml"

try:  # the test extra installs it; only the schema tests need it
    import kubernetes_validate as kv
except ImportError:  # the `needs_kv` fixture says what is missing
    kv = None


@pytest.fixture()
def needs_kv() -> None:
    require("kubernetes-validate", kv is not None, "pip install -e .[test]")


def _readme_version() -> str:
    m = re.search(r"validated against the API schema of\s+Kubernetes (\d+\.\d+)", _readme())
    assert m, "README must name the Kubernetes version the manifest is validated for"
    return f"{m.group(1)}.0"


def _readme() -> str:
    return (REPO / "README.md").read_text()


def _job() -> dict:
    return yaml.safe_load(K8S.read_text())


@pytest.mark.usefixtures("needs_kv")
@pytest.mark.parametrize("which", ["readme", "latest"])
def test_indexed_job_is_valid_for_the_kubernetes_api(which: str) -> None:
    from kubernetes_validate.utils import latest_version

    version = _readme_version() if which == "readme" else latest_version()
    kv.validate(_job(), version, strict=True)  # raises ValidationError when invalid


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "completionsMode"), "Indexed"),  # a misspelt field (strict schema)
        (("spec", "parallelism"), "4"),  # a string where an integer belongs
        (("spec", "template", "spec", "restartPolicy"), 7),
    ],
)
@pytest.mark.usefixtures("needs_kv")
def test_the_validator_catches_a_broken_manifest(path: tuple[str, ...], value) -> None:
    job = _job()
    target = job
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    with pytest.raises(kv.ValidationError):
        kv.validate(job, _readme_version(), strict=True)
