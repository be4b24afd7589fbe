"""`nomoat verify DIR`: check a pulled folder offline against its `model.sig` and attestations.

Every file's sha256 against the signed list (none missing, none added), the signature by one of the hub's keys,
each attestation's signature and subjects (those of provenance.intoto.jsonl and the later ones in attestations/,
e.g. evaluations), and for a stack the bundles of the adapters it was built from, back to
their uploads. The hub's public keys are fetched once and cached by key id (fetched again only when a bundle
names a key the cache does not have, e.g. after a rotation, or with `--refresh-keys`, which learns revocations);
`--key PEM` uses the given keys and no network at all. A copy mirrored from another hub is signed by its origin's key
and attested by each hub it went through: keys the hub pulled from does not serve are asked of the hubs the
attestations name (each hub's own /api/v1/keys), and every line says whose key signed it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlsplit

from nomoat_cli.client import Client, NetworkError, api_path
from nomoat_cli.commands import Context
from nomoat_cli.config import _xdg_dir, read_json, write_private_json
from nomoat_cli.errors import ApiError, CliError, ExitCode
from workers.engine.signing import (
    ATTESTATIONS_FILE,
    EVALUATION,
    MIRROR,
    QUANTIZATION,
    SIGNATURE_FILE,
    STACK_BUILD,
    VALIDATION,
    VERIFICATION,
    ProvenanceError,
    PublicKey,
    Verified,
    attestation_files,
    attestation_statements,
    bundle_key_id,
    envelope_key_ids,
    verify_folder,
)


def keys_cache_path() -> Path:
    return _xdg_dir("XDG_CACHE_HOME", ".cache") / "keys.json"


def hub_keys(client: Client, wanted: str, *, refresh: bool = False, also: set[str] | None = None,
             hubs: list[str] | None = None) -> list[PublicKey]:
    """The keys cached by id, fetched from the hub (and cached) when the cache lacks the key `wanted` (or one of
    `also`), or on `refresh` (which is how a revocation after the first fetch is learnt). Keys still missing are asked
    of `hubs` (the other hubs a folder's attestations name); only `wanted`, model.sig's key, must be found."""
    cache = keys_cache_path()
    cached = read_json(cache)
    needed = {wanted, *(also or ())}
    hubs = hubs or []
    asked = []
    for endpoint in [client.endpoint, *hubs]:
        if not (needed - set(cached)) and not (refresh and endpoint == client.endpoint):
            break
        if endpoint in asked:
            continue
        asked.append(endpoint)
        source = client if endpoint == client.endpoint else Client(endpoint)
        try:
            fetched = source.get_json(api_path("keys"))["keys"]
        except (NetworkError, ApiError) as exc:
            if wanted not in cached and endpoint == client.endpoint and not hubs:
                raise CliError(f"key {wanted[:16]}… is not cached and {client.endpoint} cannot be asked "
                               f"({exc.message}); pass --key hub-key.pem", ExitCode.NETWORK) from None
            continue
        cached |= {k["key_id"]: {"pem": k["pem"], "status": k["status"], "endpoint": endpoint} for k in fetched}
        write_private_json(cache, cached)
    if wanted not in cached:
        raise CliError(f"key {wanted[:16]}… (of {SIGNATURE_FILE}) is served by none of {', '.join(asked)}; pass "
                       "--key origin-key.pem", ExitCode.NETWORK)
    return [PublicKey(entry["pem"].encode(), entry["status"], entry.get("endpoint", "")) for entry in cached.values()]


def _named_hubs(folder: Path) -> tuple[set[str], list[str]]:
    """The key ids the folder's attestations are signed with, and the hubs they name (unverified: only where to ask
    for keys; a key then counts only if its signature verifies), origins first."""
    ids: set[str] = set()
    hubs: list[str] = []
    bundles = [p for p in [folder / ATTESTATIONS_FILE, *attestation_files(folder)] if p.is_file()]
    for path in bundles:
        ids |= set(envelope_key_ids(path))
        try:
            statements = attestation_statements(path.read_bytes())
        except (ValueError, KeyError, TypeError):
            continue  # verify_folder names what is wrong with it
        for item in statements:
            p = item.get("predicate") if isinstance(item, dict) else None
            if not isinstance(p, dict):
                continue
            named = [(p.get("origin") or {}).get("hub"), p.get("hub"), *[(k.get("signed_by") or {}).get("hub")
                                                                          for k in p.get("kept") or []],
                     (p.get("builder") or {}).get("id")]
            hubs += [h.rstrip("/") for h in named if isinstance(h, str) and urlsplit(h).scheme in ("http", "https")]
    for signature in folder.glob("provenance/**/model.sig"):  # a stack's adapters' bundles
        try:
            ids.add(bundle_key_id(signature))
        except ProvenanceError:
            continue
    return ids - {""}, list(dict.fromkeys(hubs))


def _signer(key: PublicKey) -> str:
    return f"key {key.key_id[:16]}… ({key.status}){f', served by {key.hub}' if key.hub else ''}"


def describe(result: Verified) -> list[str]:
    """What the signatures say, for people: who signed, what each worker did."""
    lines = [f"{len(result.files)} files match {SIGNATURE_FILE}, signed by hub {_signer(result.key)}"]
    for index, item in enumerate(result.statements):
        kind, p = item.get("predicateType"), item.get("predicate", {})
        signer = result.signers[index] if index < len(result.signers) else None
        if signer is not None and signer.key_id != result.key.key_id:
            lines.append(f"signed by {_signer(signer)}:")
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
        elif kind == MIRROR:
            origin = p.get("origin") or {}
            rebuilt = ", ".join(f"{name} {'the same' if r.get('same_as_origin') else 'differs'}"
                                for name, r in sorted((p.get("rebuilt") or {}).items()))
            lines.append(f"mirrored: as {p.get('mirrored_as')} by {p.get('hub')} (received from "
                         f"{p.get('received_from')}), origin {origin.get('object')} whose {SIGNATURE_FILE} it verified "
                         f"with {origin.get('hub')}'s key {str(origin.get('key_id'))[:16]}…; validated again "
                         f"({len((p.get('validation') or {}).get('checks') or [])} checks passed"
                         f"{'; rebuilt here: ' + rebuilt if rebuilt else ''})")
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
        if args.key:
            keys = [PublicKey(path.read_bytes(), hub=path.name) for path in args.key]
        else:
            also, hubs = _named_hubs(folder)
            keys = hub_keys(client, bundle_key_id(signature), refresh=args.refresh_keys, also=also, hubs=hubs)
        result = verify_folder(folder, keys)
    except ProvenanceError as exc:
        raise CliError(f"verification failed: {exc}", ExitCode.VERIFICATION) from None
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    print(f"verified {folder}")
    for line in describe(result):
        print(line)
