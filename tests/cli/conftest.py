"""Driving the real `nomoat` CLI against a live hub: a subprocess with its own HOME, or `main()` in-process.

Both see the same configuration (XDG dirs under the test's tmp_path, NOMOAT_ENDPOINT = the live
server), so a test can interrupt the CLI in-process and resume it with the real script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.accounts.services import api_token_create
from tests.stacks.conftest import publish_adapter  # noqa: F401 - the same published adapters as the stack tests

NOMOAT = Path(sys.executable).with_name("nomoat")


@dataclass
class Cli:
    env: dict[str, str]
    cwd: Path

    def run(self, *args: str, token: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run the installed `nomoat` script; stdout and stderr come back as text."""
        env = {**self.env, "NOMOAT_TOKEN": token} if token else self.env
        return subprocess.run([str(NOMOAT), *args], env=env, cwd=self.cwd, input=stdin, capture_output=True,
                              text=True, timeout=600, check=False)

    @property
    def config_file(self) -> Path:
        return Path(self.env["XDG_CONFIG_HOME"]) / "nomoat" / "config.json"

    @property
    def journal_file(self) -> Path:
        return Path(self.env["XDG_STATE_HOME"]) / "nomoat" / "uploads.json"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """A CLI with a fresh home and no token, for subprocesses and (through monkeypatch) for in-process runs."""
    assert NOMOAT.exists(), "the nomoat script is missing: pip install -e ."
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "NOMOAT_TOKEN"}
    env |= {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_STATE_HOME": str(home / ".state")}
    monkeypatch.delenv("NOMOAT_TOKEN", raising=False)
    for key in ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(key, env[key])
    work = tmp_path / "work"
    work.mkdir()
    return Cli(env, work)


@pytest.fixture
def cli(cli_env: Cli, live_server, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI pointed at the live test server."""
    cli_env.env["NOMOAT_ENDPOINT"] = live_server.url
    monkeypatch.setenv("NOMOAT_ENDPOINT", live_server.url)
    return cli_env


def write_token(user) -> str:
    return api_token_create(user=user, name="cli-test", scope="write").raw
