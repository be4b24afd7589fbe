"""`nomoat login`, and how every kind of failure reads: one line on stderr and a meaningful exit code."""

from __future__ import annotations

import json
import stat

import pytest

from hub.accounts.models import ApiToken
from nomoat_cli import client as cli_client
from nomoat_cli.config import load_settings
from nomoat_cli.errors import ExitCode
from nomoat_cli.main import main
from nomoat_cli.recipes import recipe_from_dict


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.django_db(transaction=True)
def test_login_saves_a_private_token_that_later_commands_send(cli, live_server, make_user, make_version):
    alice = make_user("alice", password="correct-horse-battery")
    make_version(alice, "draft", state="pending_review")  # visible to its owner only

    wrong = cli.run("login", "--username", "alice", "--password-stdin", stdin="battery-staple\n")
    assert wrong.returncode == ExitCode.API
    assert one_line(wrong.stderr) == "nomoat: error: username or password is wrong"
    assert not cli.config_file.exists()

    result = cli.run("login", "--username", "alice", "--password-stdin", "--token-name", "laptop",
                     stdin="correct-horse-battery\n")
    assert result.returncode == 0, result.stderr
    assert f"logged in to {live_server.url} as alice (write token)" in result.stdout
    assert stat.S_IMODE(cli.config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.config_file.parent.stat().st_mode) == 0o700
    saved = json.loads(cli.config_file.read_text())
    token = ApiToken.objects.get(user=alice, name="laptop")
    assert saved["endpoint"] == live_server.url and saved["tokens"][live_server.url].startswith(token.prefix)
    assert token.scope == "write" and token.last_used_at is None

    pulled = cli.run("pull", "alice/draft@1", "-o", "draft")  # no NOMOAT_TOKEN: the saved token is sent
    assert pulled.returncode == 0, pulled.stderr
    token.refresh_from_db()
    assert token.last_used_at is not None

    assert load_settings().token == saved["tokens"][live_server.url]
    assert load_settings("http://hub.example.org").token is None  # a token is never sent to another hub


@pytest.mark.django_db(transaction=True)
def test_a_wrong_token_exits_2_with_the_hubs_message(cli):
    result = cli.run("pull", "alice/sql", token="nm_not-a-real-token")
    assert result.returncode == ExitCode.API
    assert one_line(result.stderr) == "nomoat: error: the API token is unknown or revoked"
    saved = cli.run("login", "--token-stdin", stdin="nm_not-a-real-token\n")
    assert saved.returncode == ExitCode.API and not cli.config_file.exists()


@pytest.mark.django_db(transaction=True)
def test_evals_says_in_one_line_when_the_hub_has_no_eval_card(cli, live_server):
    result = cli.run("evals", "alice/sql")
    assert result.returncode == ExitCode.API
    assert one_line(result.stderr).startswith(f"nomoat: error: no eval card for adapter alice/sql on {live_server.url}")


def test_an_unreachable_hub_exits_4_after_retrying(cli_env, monkeypatch, capsys):
    attempts = []
    real_request = cli_client.requests.Session.request

    def counted(self, *args, **kwargs):
        attempts.append(args)
        return real_request(self, *args, **kwargs)

    monkeypatch.setattr(cli_client, "BACKOFF_SECONDS", 0.01)
    monkeypatch.setattr(cli_client.requests.Session, "request", counted)
    assert main(["--endpoint", "http://127.0.0.1:9", "stack", "show", "abc"]) == ExitCode.NETWORK
    assert one_line(capsys.readouterr().err) == "nomoat: error: cannot reach http://127.0.0.1:9 (ConnectionRefusedError)"
    assert len(attempts) == cli_client.ATTEMPTS


@pytest.mark.parametrize(("recipe", "message"), [
    ("base_model: [unclosed", "invalid YAML at line 1, column 22: expected ',' or ']'"),
    ("- just\n- a list\n", "expected a mapping with base_model and adapters, got list"),
    ("adapters: [alice/sql]\n", "base_model: is required"),
    ("base_model: b\nadapters: []\n", "adapters: is required"),
    ("base_model: b\nadapters: [alice]\n", "adapters[0].adapter: expected \"owner/name\" or \"owner/name@version\""),
    ("base_model: b\nadapters: [{adapter: alice/sql, weight: heavy}]\n", "adapters[0].weight: expected a number"),
    ("base_model: b\nadapters: [{adapter: alice/sql, wieght: 1}]\n", "adapters[0].wieght: unknown key"),
    ("base_model: b\nadapters: [alice/sql]\nmerge_method: ties\n", "merge_method: unknown key"),
    ("base_model: b\nadapters: [alice/sql]\nparameters: 0.5\n", "parameters: expected a mapping"),
    ("base_model: b\nadapters: [alice/sql]\noutput: {type: merged, dtype: bf16}\ndtype: fp32\n", "dtype: is given twice"),
])
def test_a_bad_recipe_is_one_line_and_exit_1(cli_env, tmp_path, capsys, recipe, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe)
    # The recipe is checked before any request, so no hub is needed (nothing listens on port 9).
    assert main(["--endpoint", "http://127.0.0.1:9", "stack", "build", str(path)]) == ExitCode.USAGE
    error = one_line(capsys.readouterr().err)
    assert error.startswith(f"nomoat: error: {path}: ") and message in error, error


def test_usage_errors_exit_1_with_one_line(cli_env):
    for args, fragment in [(("pull",), "required"), (("push", ".", "alice/sql@2"), "expected owner/name"),
                           (("stack", "build", "missing.yaml"), "missing.yaml: no such file"),
                           (("pull", "alice/sql", "--output", "merged"), "--output applies to stack recipes")]:
        result = cli_env.run(*args)
        assert result.returncode == ExitCode.USAGE and fragment in one_line(result.stderr), (args, result.stderr)


def test_recipes_become_the_hubs_recipe_json():
    data = {"base_model": "b", "adapters": ["alice/sql@2", {"adapter": "bob/poet", "weight": 0.5}],
            "method": "ties", "parameters": {"density": 0.5}, "output": "merged", "dtype": "bf16"}
    assert recipe_from_dict(data) == {
        "base_model": "b",
        "adapters": [{"adapter": "alice/sql@2", "weight": 1.0}, {"adapter": "bob/poet", "weight": 0.5}],
        "method": {"name": "ties", "params": {"density": 0.5}},
        "output": {"type": "merged", "dtype": "bf16"},
    }
    # --output replaces the whole output (its dtype belonged to the old type); any name goes through to the hub.
    overridden = recipe_from_dict(data, output="gguf-q4_k_m")
    assert overridden["output"] == {"type": "gguf-q4_k_m"}
    assert recipe_from_dict({"base_model": "b", "adapters": ["a/b"]})["method"] == {"name": "linear", "params": {}}
