"""REST API for training jobs: request one (shared per job hash), follow it, cancel it, list yours."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.api.schema import BEARER_REQUIRED, api_error
from hub.training import selectors
from hub.training.models import JobState, TrainingJob
from hub.training.services import training_cancel, training_request


class LoraIn(serializers.Serializer):
    rank = serializers.IntegerField(required=False, help_text="default 8")
    alpha = serializers.FloatField(required=False, help_text="default 16")
    dropout = serializers.FloatField(required=False, help_text="default 0")
    target_modules = serializers.ListField(child=serializers.CharField(), required=False,
                                           help_text='default ["q_proj", "v_proj"]')
    use_rslora = serializers.BooleanField(required=False)


class TrainingIn(serializers.Serializer):
    base_model = serializers.CharField(help_text="e.g. HuggingFaceTB/SmolLM2-135M-Instruct")
    dataset = serializers.CharField(help_text="owner/name@version (or owner/name: the newest published version)")
    split = serializers.CharField(required=False, help_text="default train")
    eval_split = serializers.CharField(required=False, help_text="default: the dataset's held-out split, if any")
    into = serializers.CharField(help_text="owner/name of your adapter repository (created when missing)")
    lora = LoraIn(required=False)
    steps = serializers.IntegerField(required=False, help_text="give steps or epochs")
    epochs = serializers.IntegerField(required=False)
    learning_rate = serializers.FloatField(required=False, help_text="default 2e-4")
    schedule = serializers.ChoiceField(["constant", "constant_with_warmup", "linear", "cosine"], required=False)
    warmup_steps = serializers.IntegerField(required=False)
    batch_size = serializers.IntegerField(required=False, help_text="default 8")
    max_seq_len = serializers.IntegerField(required=False, help_text="default 256")
    seed = serializers.IntegerField(required=False, help_text="default 0")


class TrainingVersionOut(serializers.Serializer):
    adapter = serializers.CharField(help_text="owner/name")
    version = serializers.IntegerField()
    state = serializers.CharField()
    url = serializers.CharField()


class TrainingOut(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(read_only=True, slug_field="username")
    base_model = serializers.SlugRelatedField(read_only=True, slug_field="name")
    dataset = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    produced = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = TrainingJob
        fields = ["id", "spec_hash", "owner", "state", "failure_reason", "cancel_requested", "base_model", "dataset",
                  "split", "eval_split", "into", "spec", "request", "progress", "loss_history", "result", "produced",
                  "attempts", "created_at", "started_at", "finished_at", "url", "page_url"]

    def get_dataset(self, obj: TrainingJob) -> str:
        return str(obj.dataset_version)

    @extend_schema_field(serializers.DictField())
    def get_progress(self, obj: TrainingJob) -> dict:
        return {"step": obj.step, "total_steps": obj.total_steps, "percent": round(obj.progress_fraction * 100, 1),
                "loss": obj.loss, "tokens_per_second": obj.tokens_per_second, "eta_seconds": obj.eta_seconds,
                "checkpoint_step": obj.checkpoint_step, "resumed_from_step": obj.resumed_from_step}

    @extend_schema_field(TrainingVersionOut(allow_null=True))
    def get_produced(self, obj: TrainingJob) -> dict | None:
        version = obj.version
        if version is None:
            return None
        repo = version.repository
        return {"adapter": repo.full_name, "version": version.number, "state": version.state,
                "url": reverse("api:adapter-version", kwargs={"owner": repo.owner.username, "name": repo.name,
                                                              "number": version.number})}

    def get_url(self, obj: TrainingJob) -> str:
        return reverse("api:training-detail", kwargs={"job_id": obj.pk})

    def get_page_url(self, obj: TrainingJob) -> str:
        return reverse("training-page", kwargs={"job_id": obj.pk})


def _signed_in(request: Request) -> None:
    if not (request.user and request.user.is_authenticated):
        raise exceptions.NotAuthenticated()


class TrainingListCreate(generics.ListAPIView):
    """GET: your training jobs, newest first. POST: request one (202; an identical request shares the job)."""

    serializer_class = TrainingOut
    cursor_ordering = ("-created_at", "-pk")

    def get_queryset(self):
        _signed_in(self.request)
        return selectors.jobs_of(self.request.user)

    @extend_schema(auth=BEARER_REQUIRED)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=TrainingIn, responses={200: TrainingOut, 202: TrainingOut,
                                                  403: api_error("training into someone else's namespace"),
                                                  429: api_error("too many of your jobs are queued or running")})
    def post(self, request: Request) -> Response:
        job, _ = training_request(user=request.user, request=request.data)
        job = selectors.job_get_visible(request.user, job.pk)
        return Response(TrainingOut(job).data, status=200 if job.state == JobState.FINISHED else 202)


class TrainingDetail(APIView):
    @extend_schema(responses=TrainingOut, auth=BEARER_REQUIRED)
    def get(self, request: Request, job_id: int) -> Response:
        _signed_in(request)  # a job is only ever its owner's (or a moderator's) to see
        return Response(TrainingOut(selectors.job_get_visible(request.user, job_id)).data)


class TrainingCancel(APIView):
    @extend_schema(request=None, responses={200: TrainingOut, 409: api_error("the job has already ended")})
    def post(self, request: Request, job_id: int) -> Response:
        job = training_cancel(user=request.user, job=selectors.job_get_visible(request.user, job_id))
        return Response(TrainingOut(selectors.job_get_visible(request.user, job.pk)).data)
