"""Drive the real huggingface_hub client (and peft) against the live server, each run in a fresh interpreter.

The client reads HF_ENDPOINT when it is imported, so every run is a subprocess pointed at the live server, with an
empty HF_HOME (no saved token, empty cache) and a dead proxy for every host but loopback: nothing can reach
huggingface.co, even by mistake.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DEAD_PROXY = "http://127.0.0.1:9"
PRELUDE = '''
import json, sys
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError

globals().update(json.loads(sys.argv[1]))
api = HfApi()


def error(call):
    """The client's exception for a call, as [class name, HTTP status], or None when it succeeds."""
    try:
        call()
    except HfHubHTTPError as exc:
        return [type(exc).__name__, exc.response.status_code]
    return None
'''


@pytest.fixture
def hub_client(live_server, tmp_path) -> Callable[..., Any]:
    return hf_runner(live_server.url, tmp_path)


def hf_runner(endpoint: str, tmp_path: Path) -> Callable[..., Any]:
    """Runs of the huggingface_hub client against the hub at `endpoint`, with a fresh HF_HOME under `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("HF_", "HUGGING_FACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_OFFLINE="0",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", TOKENIZERS_PARALLELISM="false")
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = DEAD_PROXY
    env["no_proxy"] = env["NO_PROXY"] = "localhost,127.0.0.1,127.0.0.0/8"  # every loopback address (other hubs)

    def run(script: str, **values: Any) -> Any:
        """Run `script` after PRELUDE with `values` as globals; it leaves its answer, JSON-able, in `result`."""
        code = PRELUDE + textwrap.dedent(script) + "\nprint('RESULT ' + json.dumps(result))\n"
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(values)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-6000:]
        [line] = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        return json.loads(line.removeprefix("RESULT "))

    return run
