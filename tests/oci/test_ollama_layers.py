"""Ollama's template, system and params layers, pulled with the real ORAS client: the base model's chat format as
Ollama's own Go template, the card's system prompt, stop tokens that match the template, and no template (with a
note saying why) for a chat format the hub does not know."""

from __future__ import annotations

import json
import shutil
from urllib.parse import urlparse

import oras.client
import pytest
import requests

from hub.catalog.services import base_model_register
from hub.oci.chat_formats import CHAT_FORMATS, chat_format_of
from hub.oci.selectors import TEMPLATE_NOTE

pytestmark = pytest.mark.django_db(transaction=True)

CARD = "---\nlicense: mit\nbase_model: {base}\n{extra}---\n# A poet\n"
LORA = b"GGUF a LoRA " * 100
LLAMA3 = ("{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
          "message['content'] + '<|eot_id|>' }}{% endfor %}")


def test_oras_pulls_the_template_system_and_params_layers(live_server, make_user, make_version, tiny_base_model,
                                                          tmp_path):
    alice = make_user("alice")
    card = CARD.format(base=tiny_base_model.name, extra="system: You answer in SQL only.\n")
    make_version(alice, "poet", files={"README.md": card.encode(), "adapter_model.gguf": LORA},
                 base_model=tiny_base_model)
    host = urlparse(live_server.url).netloc
    registry = oras.client.OrasClient(hostname=host, insecure=True)

    pulled = registry.pull(target=f"{host}/alice/poet:v1", outdir=str(tmp_path))
    assert [p.rsplit("/", 1)[-1] for p in pulled] == ["adapter_model.gguf", "template", "system", "params.json"]
    chatml = next(f for f in CHAT_FORMATS if f.name == "chatml")  # the tiny base's template is ChatML, as SmolLM2's
    assert (tmp_path / "template").read_text() == chatml.template
    assert "{{ .Role }}" in chatml.template and "<|im_start|>assistant" in chatml.template  # Go, not Jinja
    assert (tmp_path / "system").read_text() == "You answer in SQL only."
    stop = json.loads((tmp_path / "params.json").read_text())["stop"]
    assert stop == ["<|im_start|>", "<|im_end|>"]  # the template's turn markers; the eos <|im_end|> among them
    assert all(token in chatml.template for token in stop)

    manifest = requests.get(f"{live_server.url}/v2/alice/poet/manifests/v1", timeout=10).json()
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.ollama.image.adapter", "application/vnd.ollama.image.template",
        "application/vnd.ollama.image.system", "application/vnd.ollama.image.params"]
    assert TEMPLATE_NOTE not in manifest["annotations"]
    config = requests.get(f"{live_server.url}/v2/alice/poet/blobs/{manifest['config']['digest']}", timeout=10).json()
    assert config["rootfs"]["diff_ids"] == [layer["digest"] for layer in manifest["layers"]]


def test_an_unknown_chat_format_gets_no_template_and_a_note(live_server, make_user, make_version, tiny_base,
                                                            tmp_path):
    folder = shutil.copytree(tiny_base, tmp_path / "odd-base")
    (folder / "chat_template.jinja").write_text("{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n"
                                                "{% endfor %}### assistant:")
    odd = base_model_register(name="nomoat/odd-chat", model_dir=folder, license="apache-2.0")
    alice = make_user("alice")
    make_version(alice, "odd", files={"README.md": CARD.format(base=odd.name, extra="").encode(),
                                      "adapter_model.gguf": LORA}, base_model=odd)
    manifest = requests.get(f"{live_server.url}/v2/alice/odd/manifests/latest", timeout=10).json()
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.ollama.image.adapter", "application/vnd.ollama.image.params"]
    assert manifest["annotations"][TEMPLATE_NOTE].startswith(
        "no template layer: the base model's chat template is not one of the known formats (llama3-instruct, chatml")
    params = next(layer for layer in manifest["layers"] if layer["mediaType"].endswith("params"))
    blob = requests.get(f"{live_server.url}/v2/alice/odd/blobs/{params['digest']}", timeout=10)
    assert blob.json() == {"stop": ["<|im_end|>"]}  # without a template, the tokenizer's end of turn alone


def test_known_chat_formats_are_recognised_by_their_special_tokens():
    assert chat_format_of(LLAMA3).name == "llama3-instruct"
    assert chat_format_of("<|user|>\n{{ m }}<|end|>\n<|assistant|>").name == "phi-3"
    assert chat_format_of("<|im_start|>{{ role }} without its end marker") is None
    assert chat_format_of("") is None
