"""Where the CLI keeps its state: the login (endpoint + tokens) and the journal of unfinished uploads.

Tokens are stored per endpoint, so a token issued by one hub is never sent to another one
when `--endpoint` or `NOMOAT_ENDPOINT` points elsewhere. Files holding tokens are written
atomically with mode 0600 in a 0700 folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nomoat_cli.errors import CliError

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"


def _xdg_dir(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable) or str(Path.home() / fallback)
    return Path(base) / "nomoat"


def config_path() -> Path:
    return _xdg_dir("XDG_CONFIG_HOME", ".config") / "config.json"


def uploads_journal_path() -> Path:
    return _xdg_dir("XDG_STATE_HOME", ".local/state") / "uploads.json"


def normalize_endpoint(endpoint: str) -> str:
    endpoint = endpoint.strip().rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise CliError(f"endpoint {endpoint!r} must start with http:// or https://")
    return endpoint


def read_json(path: Path) -> dict[str, Any]:
    """The object in `path`, or {} when it does not exist yet."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: unreadable ({exc}); fix or delete it") from None
    if not isinstance(data, dict):
        raise CliError(f"{path}: expected a JSON object; fix or delete it")
    return data


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace `path` with `data`, readable by the user only (it may hold tokens)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Settings:
    endpoint: str
    token: str | None


def load_settings(endpoint_flag: str | None = None) -> Settings:
    """Endpoint: --endpoint, else NOMOAT_ENDPOINT, else the last login's, else localhost.
    Token: NOMOAT_TOKEN, else the one saved for that endpoint."""
    saved = read_json(config_path())
    endpoint = normalize_endpoint(endpoint_flag or os.environ.get("NOMOAT_ENDPOINT") or saved.get("endpoint")
                                  or DEFAULT_ENDPOINT)
    token = os.environ.get("NOMOAT_TOKEN") or saved.get("tokens", {}).get(endpoint)
    return Settings(endpoint=endpoint, token=token)


def save_login(endpoint: str, token: str) -> Path:
    """Remember `token` for `endpoint` and make that endpoint the default one."""
    path = config_path()
    saved = read_json(path)
    saved["endpoint"] = endpoint
    saved.setdefault("tokens", {})[endpoint] = token
    write_private_json(path, saved)
    return path
