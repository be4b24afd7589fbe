"""What each subcommand does, over the hub's REST API. Results go to stdout, progress to stderr."""

from __future__ import annotations

import argparse
import getpass
import json
import re
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nomoat_cli.client import ApiError, Client, api_path
from nomoat_cli.config import save_login
from nomoat_cli.errors import CliError, ExitCode
from nomoat_cli.progress import Progress, human_bytes
from nomoat_cli.recipes import is_recipe_path, load_recipe
from nomoat_cli.transfer import LocalFile, RemoteFile, UploadJournal, destination, download_file, sha256_of, upload_file

REF_RE = re.compile(r"^(?P<owner>[A-Za-z0-9][A-Za-z0-9._-]*)/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(@(?P<number>[0-9]+))?$")
VALIDATED = ("rejected", "pending_review", "published")
BUILD_DONE = ("ready", "failed")
POLL_SECONDS = 1.0
KINDS = ("adapter", "dataset")


@dataclass(frozen=True)
class Context:
    client: Client
    progress: bool  # False with --quiet


@dataclass(frozen=True)
class Ref:
    owner: str
    name: str
    number: int | None

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}" + (f"@{self.number}" if self.number is not None else "")


def parse_ref(text: str, *, allow_version: bool = True) -> Ref:
    match = REF_RE.match(text)
    if not match or (match["number"] and not allow_version):
        expected = "owner/name[@version]" if allow_version else "owner/name"
        raise CliError(f"{text!r} is not a repository reference; expected {expected}")
    return Ref(match["owner"], match["name"], int(match["number"]) if match["number"] else None)


def format_table(headers: Sequence[str] | None, rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns; `headers` None for a plain list of label/value rows."""
    cells = ([[str(c) for c in headers]] if headers else []) + [["" if c is None else str(c) for c in row]
                                                                  for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def poll(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], *, timeout: float,
         on_update: Callable[[dict[str, Any]], None], what: str) -> dict[str, Any]:
    """Fetch a status until `done`; each answer goes to `on_update`. Running out of time is an API error."""
    deadline = time.monotonic() + timeout
    while True:
        state = fetch()
        on_update(state)
        if done(state):
            return state
        if time.monotonic() >= deadline:
            raise CliError(f"{what} is still {state.get('state')} after {timeout:.0f} s", ExitCode.API)
        time.sleep(POLL_SECONDS)


def download_all(ctx: Context, files: Sequence[RemoteFile], folder: Path) -> None:
    """Download (or find already in place) every file, each sha256-verified; print where they are."""
    fetched = [download_file(ctx.client, f, destination(folder, f.path), progress=ctx.progress) for f in files]
    total = sum(f.size for f in files)
    print(f"{len(files)} files ({human_bytes(total)}, sha256 verified, {len(files) - sum(fetched)} already there) "
          f"in {folder}")


# --- login ------------------------------------------------------------------------------------------------------------


def _read_secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        secret = getpass.getpass(prompt)
    else:
        raise CliError("no terminal to ask for a password: pass --password-stdin and pipe it in")
    if not secret:
        raise CliError(f"empty {prompt.rstrip(': ')}")
    return secret


def login(ctx: Context, args: argparse.Namespace) -> None:
    """Create a token with a username and password (or check a given token) and save it for this endpoint."""
    if args.token_stdin:
        token = _read_secret("token: ", True)
        Client(ctx.client.endpoint, token).get_json(api_path("auth/tokens"))  # 401 when the token is wrong
        who = "with the given token"
    else:
        username = args.username or input("username: ").strip()
        password = _read_secret("password: ", args.password_stdin)
        body = {"username": username, "password": password, "scope": args.scope,
                "name": args.token_name or f"nomoat-cli on {socket.gethostname()}"}
        anonymous = Client(ctx.client.endpoint)  # a stale saved token must not be sent along
        token = anonymous.post_json(api_path("auth/tokens"), body).json()["token"]
        who = f"as {username} ({args.scope} token)"
    path = save_login(ctx.client.endpoint, token)
    print(f"logged in to {ctx.client.endpoint} {who}; token saved in {path}")


# --- push -------------------------------------------------------------------------------------------------------------


def collect_files(path: Path) -> list[tuple[Path, str]]:
    """(local path, name in the upload) for a file, or for every non-hidden file under a folder."""
    if path.is_file():
        return [(path, path.name)]
    if not path.is_dir():
        raise CliError(f"{path}: no such file or folder")
    files = [(p, p.relative_to(path).as_posix()) for p in sorted(path.rglob("*"))
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)]
    if not files:
        raise CliError(f"{path}: the folder has no files to upload")
    return files


def detect_kind(names: Sequence[str]) -> str:
    basenames = [n.rsplit("/", 1)[-1] for n in names]
    if any(b.startswith("adapter_") for b in basenames):
        return "adapter"
    if any(b.endswith((".jsonl", ".csv", ".parquet")) for b in basenames):
        return "dataset"
    raise CliError("cannot tell whether this is an adapter (adapter_config.json, adapter_model.safetensors) or a "
                   "dataset (.jsonl, .csv, .parquet): pass --kind")


def declared_base_model(ctx: Context, files: Sequence[LocalFile]) -> str | None:
    """The base model named in adapter_config.json, when the hub has it: sent with the upload, it makes the
    version stackable on that base (validation checks that the adapter fits it)."""
    config = next((f for f in files if f.name == "adapter_config.json"), None)
    try:
        declared = json.loads(config.path.read_text())["base_model_name_or_path"] if config else None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # validation reports what is wrong with the file
    if not isinstance(declared, str) or not re.fullmatch(r"[^/\s]+/[^/\s]+", declared):
        return None
    try:
        ctx.client.get_json(api_path("base-models", declared))
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return declared


def check_lines(report: dict[str, Any] | None) -> list[str]:
    rows = [("skip" if c.get("skipped") else "ok" if c.get("passed") else "FAIL", c.get("name", ""),
             c.get("message", "")) for c in (report or {}).get("checks", [])]
    return format_table(None, rows).splitlines() if rows else []


def rejection(ref: str, version: dict[str, Any]) -> str:
    """One line: the first failing check (name and message) and how many more failed."""
    failing = [c for c in (version.get("validation_report") or {}).get("checks", [])
               if not c.get("passed") and not c.get("skipped")]
    if not failing:
        return f"{ref} was rejected: {version.get('state_reason') or 'no reason given'}"
    more = f" (and {len(failing) - 1} more failing checks)" if len(failing) > 1 else ""
    return f"{ref} was rejected: {failing[0]['name']}: {failing[0]['message']}{more}"


def push(ctx: Context, args: argparse.Namespace) -> None:
    """Upload every file through a resumable session, create the version, then follow its validation."""
    ref = parse_ref(args.repo, allow_version=False)
    if not ctx.client.token:
        raise CliError(f"not logged in to {ctx.client.endpoint}: run `nomoat login` or set NOMOAT_TOKEN")
    found = collect_files(Path(args.path))
    kind = args.kind or detect_kind([name for _, name in found])
    with Progress("hashing", sum(p.stat().st_size for p, _ in found), enabled=ctx.progress) as bar:
        files = [LocalFile(p, name, p.stat().st_size, sha256_of(p, bar)) for p, name in found]
    journal = UploadJournal()
    sessions = {f.name: upload_file(ctx.client, f, journal, chunk_bytes=args.chunk_size, progress=ctx.progress)
                for f in files}
    base_model = args.base_model or (declared_base_model(ctx, files) if kind == "adapter" else None)
    body: dict[str, Any] = {"uploads": sessions}
    body |= {key: value for key, value in (("base_model", base_model), ("summary", args.summary)) if value}
    created = ctx.client.post_json(api_path(f"{kind}s", ref.owner, ref.name, "versions"), body).json()
    for file in files:
        journal.put(journal.key(ctx.client, file), None)  # the sessions now belong to the version
    label = f"{ref}@{created['number']}"
    print(f"uploaded {kind} {label} ({len(files)} files)")
    if args.no_wait:
        print(f"validation: {created['status_page_url']}")
        return
    with Progress(f"validating {label}", unit="", enabled=ctx.progress) as bar:
        version = poll(lambda: ctx.client.get_json(created["status_url"]), lambda v: v["state"] in VALIDATED,
                       timeout=args.timeout, on_update=lambda v: bar.update(message=v["state"]),
                       what=f"validation of {label} ({created['status_page_url']})")
    print(f"{label}: {version['state']}")
    for line in check_lines(version.get("validation_report")):
        print(line)
    if version["state"] == "rejected":
        raise CliError(rejection(label, version), ExitCode.API)
    print(f"page: {created['page_url']}")


# --- pull -------------------------------------------------------------------------------------------------------------


def _repository(ctx: Context, ref: Ref, kind: str | None) -> tuple[str, dict[str, Any]]:
    """The repository's kind and detail; without --kind an adapter is looked for first, then a dataset."""
    misses: list[ApiError] = []
    for candidate in (kind,) if kind else KINDS:
        try:
            return candidate, ctx.client.get_json(api_path(f"{candidate}s", ref.owner, ref.name))
        except ApiError as exc:
            if exc.status != 404:
                raise
            misses.append(exc)
    if len(misses) > 1:
        raise ApiError(f"no adapter or dataset {ref.owner}/{ref.name} ({misses[0].message})", status=404,
                       code=misses[0].code)
    raise misses[0]


def pull_repository(ctx: Context, ref: Ref, kind: str | None, folder: Path | None) -> None:
    kind, repo = _repository(ctx, ref, kind)
    number = ref.number
    if number is None:
        published = [v["number"] for v in repo.get("versions", []) if v["state"] == "published"]
        if not published:
            raise CliError(f"{kind} {ref} has no published version; pin one with {ref}@N", ExitCode.API)
        number = published[0]  # the hub lists versions newest first
    version = ctx.client.get_json(api_path(f"{kind}s", ref.owner, ref.name, "versions", number))
    files = [RemoteFile(ctx.client.url(api_path(f"{kind}s", ref.owner, ref.name, "versions", number, "files",
                                                f["path"])), f["path"], f["size"], f["sha256"],
                        metalink=ctx.client.url(f["metalink"]) if f.get("metalink") else None)
             for f in version["files"]]
    print(f"{kind} {ref.owner}/{ref.name}@{number} ({version['state']})")
    download_all(ctx, files, folder or Path(ref.name))


def pull(ctx: Context, args: argparse.Namespace) -> None:
    """`pull owner/name[@N]` downloads a version; `pull recipe.yaml` builds (or reuses) the stack and downloads it."""
    if is_recipe_path(args.target):
        build_and_download(ctx, load_recipe(Path(args.target), output=args.output), args.output_dir, args.timeout)
    else:
        if args.output:
            raise CliError("--output applies to stack recipes, not to owner/name references")
        pull_repository(ctx, parse_ref(args.target), args.kind, args.output_dir)


# --- stacks -----------------------------------------------------------------------------------------------------------


def build_and_download(ctx: Context, recipe: dict[str, Any], folder: Path | None, timeout: float) -> None:
    """Submit a recipe (an identical one shares its build), follow the build, download its files."""
    response = ctx.client.post_json(api_path("stacks"), recipe, idempotent=True)  # same recipe, same build
    build = response.json()
    short = build["recipe_hash"][:12]
    print(f"stack {build['recipe_hash']}: {'ready' if response.status_code == 200 else build['state']}")
    if build["state"] not in BUILD_DONE:
        with Progress(f"build {short}", 100, unit="%", enabled=ctx.progress) as bar:
            build = poll(lambda: ctx.client.get_json(build["url"]), lambda b: b["state"] in BUILD_DONE,
                         timeout=timeout, what=f"the build of stack {short}",
                         on_update=lambda b: bar.update(b["progress_percent"], b["progress_message"] or b["state"]))
    if build["state"] == "failed":
        raise CliError(f"the build of stack {short} failed: {build.get('failure_reason') or 'no reason given'}",
                       ExitCode.API)
    files = [RemoteFile(ctx.client.url(f["url"]), f["path"], f["size"], f["sha256"],
                        metalink=ctx.client.url(f["metalink"]) if f.get("metalink") else None) for f in build["files"]]
    download_all(ctx, files, folder or Path(f"stack-{short}"))


def stack_build(ctx: Context, args: argparse.Namespace) -> None:
    build_and_download(ctx, load_recipe(Path(args.recipe), output=args.output), args.output_dir, args.timeout)


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(params.items()))


def stack_show(ctx: Context, args: argparse.Namespace) -> None:
    build = ctx.client.get_json(api_path("stacks", args.hash))
    recipe = build.get("recipe") or {}
    output = {k: v for k, v in (recipe.get("output") or {}).items() if k != "type"}
    timings = build.get("timings") or {}
    seconds = f"{timings['build_seconds']:.1f} s" if timings.get("build_seconds") is not None else "-"
    fields = [
        ("stack", build["recipe_hash"]),
        ("state", build["state"] if build["state"] in BUILD_DONE
         else f"{build['state']} {build['progress_percent']:.0f}% {build.get('progress_message') or ''}"),
        ("base model", build["base_model"]),
        ("method", f"{build['method']} {_params((recipe.get('method') or {}).get('params') or {})}"),
        ("output", f"{build['output']} {_params(output)}"),
        ("build time", seconds),
        ("downloads", build.get("downloads", 0)),
        ("page", ctx.client.url(build["page_url"])),
    ]
    fields += [(label, build[key]) for label, key in (("failed", "failure_reason"), ("withdrawn", "withdrawn_reason"))
               if build.get(key)]
    print(format_table(None, fields))
    print()
    print(format_table(("adapter", "version", "weight"),
                       [(a["adapter"], a["version"], a["weight"]) for a in build.get("adapters", [])]))
    if build.get("files"):
        print()
        print(format_table(("file", "size", "sha256"),
                           [(f["path"], human_bytes(f["size"]), f["sha256"]) for f in build["files"]]))


# --- evals ------------------------------------------------------------------------------------------------------------


def _number(value: Any, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def evals(ctx: Context, args: argparse.Namespace) -> None:
    """The adapter's eval card: one row per suite and metric, with the base model's score and the delta."""
    ref = parse_ref(args.repo, allow_version=False)
    try:
        card = ctx.client.get_json(api_path("adapters", ref.owner, ref.name, "evals"))
    except ApiError as exc:
        if exc.status != 404:
            raise
        detail = f": {exc.message}" if exc.code else ""  # the hub's own JSON error, not a bare 404 page
        raise ApiError(f"no eval card for adapter {ref} on {ctx.client.endpoint} (HTTP 404{detail})", status=404,
                       code=exc.code) from None
    results = card.get("results") or []
    if not results:
        print(f"adapter {ref} has no eval results yet")
        return
    rows = [(r.get("suite"), r.get("suite_version"), r.get("metric"), _number(r.get("value")),
             _number(r.get("stderr")), _number(r.get("base_value")), _number(r.get("delta"), signed=True),
             (r.get("created_at") or "")[:10]) for r in results]
    print(format_table(("suite", "version", "metric", "value", "stderr", "base", "delta", "date"), rows))
