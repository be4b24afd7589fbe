"""The OCI distribution pull API, driven by the real ORAS client: a GGUF stack and an adapter version's GGUF LoRA
pulled by tag, manifests in Ollama's media types, blobs by digest with Range, and what is hidden stays hidden."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlparse

import oras.client
import pytest
import requests
from rest_framework.test import APIClient

from hub.accounts.services import api_token_create
from hub.catalog.models import VersionState
from tests.stacks.conftest import publish_adapter  # noqa: F401 - a fixture
from tests.stacks.test_stacks_api import wait_ready

pytestmark = pytest.mark.django_db(transaction=True)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_oras_pulls_a_gguf_stack_and_an_adapter_versions_lora(live_server, celery_worker, make_user, make_version,
                                                              publish_adapter, tmp_path):  # noqa: F811
    alice = make_user("alice")
    publish_adapter(alice, "sql", rank=4, alpha=8, seed=31)
    client = APIClient(headers={"Authorization": f"Bearer {api_token_create(user=alice, name='w', scope='write').raw}"})
    created = client.post("/api/v1/stacks", {"base_model": "nomoat/tiny-llama", "adapters": ["alice/sql"],
                                             "output": "gguf-q8_0"}, format="json").json()
    stack = wait_ready(client, created["url"], timeout=300)
    assert stack["state"] == "ready", stack["failure_reason"]
    lora = b"GGUF a LoRA " * 500
    make_version(alice, "poet", files={"README.md": b"---\nlicense: mit\n---\n", "adapter_model.gguf": lora})
    make_version(alice, "poet", files={"README.md": b"draft", "adapter_model.gguf": b"GGUF draft"},
                 state=VersionState.PENDING_REVIEW)
    host = urlparse(live_server.url).netloc
    registry = oras.client.OrasClient(hostname=host, insecure=True)

    pulled = registry.pull(target=f"{host}/stacks/{stack['recipe_hash']}:latest", outdir=str(tmp_path / "stack"))
    expected = {f["path"]: f["sha256"] for f in stack["files"]}
    assert [p.rsplit("/", 1)[-1] for p in pulled] == ["model-q8_0.gguf", "template", "params.json"]
    # The tiny base's ChatML as Ollama's template (tests/oci/test_ollama_layers.py), and its stop tokens.
    assert json.loads((tmp_path / "stack" / "params.json").read_text()) == {"stop": ["<|im_start|>", "<|im_end|>"]}
    assert sha256_of(tmp_path / "stack" / "model-q8_0.gguf") == expected["model-q8_0.gguf"]
    [adapter] = registry.pull(target=f"{host}/alice/poet:v1", outdir=str(tmp_path / "poet"))
    assert adapter.endswith("adapter_model.gguf") and (tmp_path / "poet" / "adapter_model.gguf").read_bytes() == lora
    assert registry.get_tags(f"{host}/alice/poet") == ["latest", "v1"]  # the pending v2 is not anyone's tag

    # What Ollama's client asks for: Docker's manifest type, with Ollama's layer and config types.
    base = f"{live_server.url}/v2/stacks/{stack['recipe_hash']}"
    response = requests.get(f"{base}/manifests/latest", headers={"Accept": DOCKER_MANIFEST}, timeout=10)
    manifest = response.json()
    assert response.headers["Content-Type"] == DOCKER_MANIFEST and manifest["mediaType"] == DOCKER_MANIFEST
    assert response.headers["Docker-Content-Digest"] == "sha256:" + hashlib.sha256(response.content).hexdigest()
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/vnd.ollama.image.model",
                                                                     "application/vnd.ollama.image.template",
                                                                     "application/vnd.ollama.image.params"]
    config = requests.get(f"{base}/blobs/{manifest['config']['digest']}", timeout=10)
    assert config.status_code == 200 and json.loads(config.content)["model_format"] == "gguf"
    head = requests.head(f"{base}/manifests/latest", headers={"Accept": DOCKER_MANIFEST}, timeout=10)
    assert head.headers["Docker-Content-Digest"] == response.headers["Docker-Content-Digest"] and not head.content
    by_digest = requests.get(f"{base}/manifests/{response.headers['Docker-Content-Digest']}",
                             headers={"Accept": DOCKER_MANIFEST}, timeout=10)
    assert by_digest.content == response.content
    layer = manifest["layers"][0]
    part = requests.get(f"{base}/blobs/{layer['digest']}", headers={"Range": "bytes=0-3"}, timeout=10)
    assert part.status_code == 206 and part.content == b"GGUF"
    assert part.headers["Docker-Content-Digest"] == layer["digest"]

    def error(url: str) -> list:
        answer = requests.get(url, timeout=10)
        return [answer.status_code, answer.json()["errors"][0]["code"]]

    poet = f"{live_server.url}/v2/alice/poet"
    assert error(f"{poet}/manifests/v2") == [404, "MANIFEST_UNKNOWN"]  # pending: as if missing
    assert error(f"{live_server.url}/v2/alice/nothing/manifests/latest") == [404, "NAME_UNKNOWN"]
    assert error(f"{poet}/blobs/{layer['digest']}") == [404, "BLOB_UNKNOWN"]  # the stack's blob is not poet's
    assert error(f"{live_server.url}/v2/stacks/{'0' * 64}/manifests/latest") == [404, "NAME_UNKNOWN"]
    assert requests.get(f"{live_server.url}/v2/", timeout=10).headers["Docker-Distribution-API-Version"] == \
        "registry/2.0"
