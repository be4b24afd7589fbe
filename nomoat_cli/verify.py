"""`nomoat verify DIR`: check a pulled folder offline against its `model.sig` and attestations.

Every file's sha256 against the signed list (none missing, none added), the signature by one of the hub's keys,
each attestation's signature and subjects (those of provenance.intoto.jsonl and the later ones in attestations/,
e.g. evaluations), and for a stack the bundles of the adapters it was built from, back to
their uploads. The hub's public keys are fetched once and cached by key id (fetched again only when a bundle
names a key the cache does not have, e.g. after a rotation, or with `--refresh-keys`, which learns revocations);
`--key PEM` uses the given keys and no network at all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nomoat_cli.client import Client, NetworkError, api_path
from nomoat_cli.commands import Context
from nomoat_cli.config import _xdg_dir, read_json, write_private_json
from nomoat_cli.errors import ApiError, CliError, ExitCode
from workers.engine.signing import (
    EVALUATION,
    QUANTIZATION,
    SIGNATURE_FILE,
    STACK_BUILD,
    VALIDATION,
    VERIFICATION,
    ProvenanceError,
    PublicKey,
    Verified,
    bundle_key_id,
    verify_folder,
)


def keys_cache_path() -> Path:
    return _xdg_dir("XDG_CACHE_HOME", ".cache") / "keys.json"


def hub_keys(client: Client, wanted: str, *, refresh: bool = False) -> list[PublicKey]:
    """The keys cached by id, fetched from the hub (and cached) when the cache lacks the key `wanted`, or on
    `refresh` (which is how a revocation after the first fetch is learnt)."""
    cache = keys_cache_path()
    cached = read_json(cache)
    if refresh or wanted not in cached:
        try:
            fetched = client.get_json(api_path("keys"))["keys"]
        except (NetworkError, ApiError) as exc:
            if wanted not in cached:
                raise CliError(f"key {wanted[:16]}… is not cached and {client.endpoint} cannot be asked "
                               f"({exc.message}); pass --key hub-key.pem", ExitCode.NETWORK) from None
        else:
            cached |= {k["key_id"]: {"pem": k["pem"], "status": k["status"], "endpoint": client.endpoint}
                       for k in fetched}
            write_private_json(cache, cached)
    return [PublicKey(entry["pem"].encode(), entry["status"]) for entry in cached.values()]


def describe(result: Verified) -> list[str]:
    """What the signatures say, for people: who signed, what each worker did."""
    lines = [f"{len(result.files)} files match {SIGNATURE_FILE}, signed by hub key {result.key.key_id[:16]}… "
             f"({result.key.status})"]
    for item in result.statements:
        kind, p = item.get("predicateType"), item.get("predicate", {})
        if kind == VALIDATION:
            lines.append(f"validated: {p.get('kind')} {p.get('repository')}@{p.get('version')} uploaded by "
                         f"{p.get('uploaded_by')}, checked by {p.get('builder', {}).get('id')} (engine "
                         f"{p.get('builder', {}).get('engine_version')})")
        elif kind == STACK_BUILD:
            members = ", ".join(f"{a['ref']} × {a['weight']:g} (uploaded by {a.get('uploaded_by')})"
                                for a in p.get("adapters", []))
            lines.append(f"built: stack {str(p.get('recipe_hash'))[:12]} ({p.get('method')} → {p.get('output')}) on "
                         f"{p.get('base_model', {}).get('name')} from {members}")
        elif kind == QUANTIZATION:
            q = p.get("quantize") or {}
            lines.append(f"quantized: {q.get('qtype')} ({q.get('bits_per_weight')} bits per weight) with "
                         f"llama-cpp-python {p.get('llama_cpp_python')}")
        elif kind == VERIFICATION:
            lines.append(f"verification gates passed: {', '.join(sorted(p.get('gates', {})))}")
        elif kind == EVALUATION:
            suite = p.get("suite") or {}
            data = suite.get("dataset") or {}
            metrics = ", ".join(f"{name} {m.get('value'):.4g}" if isinstance(m.get("value"), int | float)
                                else f"{name} n/a" for name, m in sorted((p.get("metrics") or {}).items()))
            lines.append(f"evaluated: {suite.get('id')} (version {suite.get('version')}, "
                         f"{data.get('ref') or 'the engine corpus'}): {metrics}; engine {p.get('engine_version')}")
    for upstream in result.upstream:
        lines += [f"  {line}" for line in describe(upstream)[1:]]
        lines.append(f"  adapter bundle signed by hub key {upstream.key.key_id[:16]}… ({upstream.key.status})")
    return lines


def verify(ctx: Context, args: argparse.Namespace) -> None:
    """Check a pulled folder; exit code 3 with the file and what was expected when it does not verify."""
    client = ctx.client
    folder: Path = args.dir
    signature = folder / SIGNATURE_FILE
    if not signature.is_file():
        raise CliError(f"{folder}: no {SIGNATURE_FILE} here; pull the version or stack again", ExitCode.VERIFICATION)
    try:
        keys = ([PublicKey(path.read_bytes()) for path in args.key] if args.key
                else hub_keys(client, bundle_key_id(signature), refresh=args.refresh_keys))
        result = verify_folder(folder, keys)
    except ProvenanceError as exc:
        raise CliError(f"verification failed: {exc}", ExitCode.VERIFICATION) from None
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    print(f"verified {folder}")
    for line in describe(result):
        print(line)
