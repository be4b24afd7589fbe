"""`nomoat`: argument parsing, and the one place where errors become a line on stderr and an exit code."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from nomoat_cli import __version__, commands, train, verify
from nomoat_cli.client import Client
from nomoat_cli.config import load_settings
from nomoat_cli.errors import CliError, ExitCode
from nomoat_cli.transfer import CHUNK_BYTES

EPILOG = """exit codes: 0 ok, 1 bad usage or input, 2 the hub refused or failed (HTTP error, rejected upload,
failed build), 3 a download failed sha256 verification, 4 the hub could not be reached, 130 interrupted.
environment: NOMOAT_ENDPOINT (default: the last login's endpoint), NOMOAT_TOKEN (overrides the saved token)."""
Handler = Callable[[commands.Context, argparse.Namespace], None]
SIZE_RE = re.compile(r"^([0-9]+)([KMG]?)i?B?$", re.IGNORECASE)


class Parser(argparse.ArgumentParser):
    """Usage errors are one line and exit code 1 (argparse's own is 2, which here means a hub error)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def byte_size(text: str) -> int:
    """'8M', '512K', '1048576' -> bytes."""
    match = SIZE_RE.match(text.strip())
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 8M or 512K")
    return int(match[1]) * 1024 ** " KMG".index((match[2] or " ").upper())


def add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options that work before or after the subcommand; a subcommand's copy must not reset the top one."""
    default = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument("--endpoint", metavar="URL", help="the hub (default: $NOMOAT_ENDPOINT or the last login's)",
                        **({"default": None} | default))
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display", **default)


def build_parser() -> Parser:
    parser = Parser(prog="nomoat", description="Share, pull and stack LoRA adapters and datasets on a nomoat hub.",
                    epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"nomoat {__version__}")
    add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler | None, help_text: str,
                parent: argparse._SubParsersAction = sub) -> Parser:
        cmd = parent.add_parser(name, help=help_text, description=help_text, epilog=EPILOG)
        if handler:
            cmd.set_defaults(handler=handler)
        add_common(cmd, top=False)
        return cmd

    login = command("login", commands.login, "create an API token and save it for this endpoint")
    login.add_argument("--username", help="asked for when missing")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument("--token-stdin", action="store_true", help="save an existing token read from stdin")
    login.add_argument("--scope", choices=("write", "read"), default="write", help="(default: write)")
    login.add_argument("--token-name", help="a name to recognize the token by on the hub")

    push = command("push", commands.push, "upload an adapter folder or a dataset as a new version; follow validation")
    push.add_argument("path", help="a folder (every non-hidden file in it) or one file")
    push.add_argument("repo", metavar="owner/name")
    push.add_argument("--kind", choices=commands.KINDS, help="(default: guessed from the file names)")
    push.add_argument("--base-model",
                      help="the base model's name on the hub (default: adapter_config.json's, when the hub has it)")
    push.add_argument("--summary", help="one line shown in listings")
    push.add_argument("--chunk-size", type=byte_size, default=CHUNK_BYTES, metavar="SIZE",
                      help="bytes per upload request, e.g. 8M (default), less behind proxies with small body limits")
    push.add_argument("--no-wait", action="store_true", help="do not follow validation")
    push.add_argument("--timeout", type=float, default=1800, metavar="SECONDS", help="for validation (default 1800)")

    pull = command("pull", commands.pull, "download owner/name[@version], or build and download a stack recipe")
    pull.add_argument("target", metavar="owner/name[@version] | recipe.yaml")
    pull.add_argument("-o", "--output-dir", type=Path, metavar="DIR", help="(default: ./name or ./stack-HASH)")
    pull.add_argument("--kind", choices=commands.KINDS, help="(default: an adapter, else a dataset)")
    pull.add_argument("--output", metavar="TYPE", help="for a recipe: the output type, e.g. merged or gguf-q4_k_m")
    pull.add_argument("--timeout", type=float, default=3600, metavar="SECONDS", help="for a build (default 3600)")

    stack = command("stack", None, "build or inspect stacks")
    stack_sub = stack.add_subparsers(dest="stack_command", required=True, metavar="COMMAND")
    build = command("build", commands.stack_build, "submit a YAML recipe, follow the build, download the result",
                    stack_sub)
    build.add_argument("recipe", type=Path, metavar="recipe.yaml")
    build.add_argument("--output", metavar="TYPE", help="replaces the recipe's output, e.g. merged or gguf-q4_k_m")
    build.add_argument("-o", "--output-dir", type=Path, metavar="DIR", help="(default: ./stack-HASH)")
    build.add_argument("--timeout", type=float, default=3600, metavar="SECONDS", help="(default 3600)")
    show = command("show", commands.stack_show, "show a stack's recipe, state and files", stack_sub)
    show.add_argument("hash", help="the recipe hash")

    check = command("verify", verify.verify, "check a pulled folder offline: every file's sha256, model.sig, the "
                    "attestations and, for a stack, its adapters' bundles")
    check.add_argument("dir", type=Path, metavar="DIR")
    check.add_argument("--key", type=Path, action="append", metavar="PEM",
                       help="verify with this public key instead of the hub's (repeatable; no network)")
    check.add_argument("--refresh-keys", action="store_true",
                       help="fetch the hub's keys again (to learn of revoked keys) instead of using the cached ones")

    evals = command("evals", commands.evals, "print an adapter's eval card as a table")
    evals.add_argument("repo", metavar="owner/name")

    train.add_command(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (the `nomoat` script exits with it)."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.endpoint)
        context = commands.Context(Client(settings.endpoint, settings.token), progress=not args.quiet)
        args.handler(context, args)
    except CliError as exc:
        print(f"nomoat: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nomoat: interrupted; run the same command again to resume", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return ExitCode.OK

