"""REST API of provenance: the hub's public keys, and each served blob's torrent and Metalink."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.api.schema import api_error
from hub.catalog.models import Blob
from hub.provenance.keys import public_keys
from hub.provenance.models import BlobSwarm
from hub.provenance.sources import Source, blob_sources, mirror_urls
from hub.provenance.swarm import magnet, metalink, swarm_for, torrent_file


class KeyOut(serializers.Serializer):
    key_id = serializers.CharField(help_text="sha256 of the PEM: the `publicKey.hint` of a model.sig it signed")
    status = serializers.ChoiceField(choices=["current", "previous", "revoked"],
                                     help_text="previous keys still verify old signatures; revoked ones must not")
    algorithm = serializers.CharField()
    pem = serializers.CharField(help_text="the public key, PEM (SubjectPublicKeyInfo)")


class KeysOut(serializers.Serializer):
    keys = KeyOut(many=True)


class KeyList(APIView):
    """The keys the hub signs model.sig and attestations with: `model_signing verify key --public_key`."""

    @extend_schema(responses=KeysOut)
    def get(self, request: Request) -> Response:
        return Response({"keys": [{"key_id": k.key_id, "status": k.status, "algorithm": "ecdsa-p256-sha256",
                                   "pem": k.pem.decode()} for k in public_keys()]})


class CurrentKeyPem(APIView):
    @extend_schema(responses={(200, "application/x-pem-file"): OpenApiTypes.STR})
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(public_keys()[0].pem, content_type="application/x-pem-file")


def _served(request: Request, sha256: str) -> tuple[Blob, list[Source]]:
    """The blob and its sources; a blob nothing public serves answers exactly like one that does not exist."""
    blob = Blob.objects.filter(pk=sha256).first()
    sources = blob_sources(request, sha256) if blob else []
    if not sources:
        raise Http404(f"no file with sha256 {sha256[:64]} is served here")
    return blob, sources


class BlobTorrent(APIView):
    @extend_schema(responses={(200, "application/x-bittorrent"): OpenApiTypes.BINARY,
                              404: api_error("no public file has this sha256")})
    def get(self, request: Request, sha256: str) -> HttpResponse:
        blob, sources = _served(request, sha256)
        body = torrent_file(swarm_for(blob, sources[0].name), sources)
        response = HttpResponse(body, content_type="application/x-bittorrent")
        response["Content-Disposition"] = f'attachment; filename="{sources[0].name}.torrent"'
        return response


class BlobMetalink(APIView):
    @extend_schema(responses={(200, "application/metalink4+xml"): OpenApiTypes.BINARY,
                              404: api_error("no public file has this sha256")})
    def get(self, request: Request, sha256: str) -> HttpResponse:
        blob, sources = _served(request, sha256)
        response = HttpResponse(metalink(blob, swarm_for(blob, sources[0].name), sources),
                                content_type="application/metalink4+xml")
        response["Content-Disposition"] = f'attachment; filename="{sources[0].name}.meta4"'
        return response


def file_links(entry: dict, blob: Blob, request: Request | None) -> dict:
    """A file entry's torrent and Metalink URLs, and its magnet once the torrent is made (workers make it when
    they sign; else the first request for the .torrent or .meta4 does). The magnet's web seeds are the entry's own
    URL and the mirrors (the .torrent, at `xs=`, lists every source); the listing loads `blob.swarm` with the files
    (catalog's BLOB_RELATIONS), so this costs no query per file."""
    sha256 = entry["sha256"]
    links = {"torrent": reverse("api:blob-torrent", kwargs={"sha256": sha256}),
             "metalink": reverse("api:blob-metalink", kwargs={"sha256": sha256})}
    try:
        swarm = blob.swarm
    except BlobSwarm.DoesNotExist:
        return links
    if request is not None and entry.get("url"):
        seeds = [request.build_absolute_uri(entry["url"]), *mirror_urls(sha256)]
        links["magnet"] = magnet(swarm, seeds, request.build_absolute_uri(links["torrent"]))
    return links
