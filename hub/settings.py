"""nomoat settings: every value comes from the environment, with embedded defaults.

The defaults run the whole hub on one machine with no servers: SQLite, a filesystem blob
store, and kombu's filesystem broker. Production (NOMOAT_ENV=production) refuses to start
with the development secret key or with DEBUG on.
"""

from __future__ import annotations

import os
from pathlib import Path

import csp.constants as csp
import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected true/false")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return default if value is None else int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected an integer") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return default if value is None else float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected a number") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


NOMOAT_ENV = env_str("NOMOAT_ENV", "development")
if NOMOAT_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"NOMOAT_ENV={NOMOAT_ENV!r}: expected development or production")
PRODUCTION = NOMOAT_ENV == "production"

DEV_SECRET_KEY = "nomoat-development-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("production refuses to start with DEBUG on")
if PRODUCTION:
    from hub.core.security import secret_key_problem

    if SECRET_KEY == DEV_SECRET_KEY or secret_key_problem(SECRET_KEY):
        raise ImproperlyConfigured(f"production needs SECRET_KEY set to a random value: "
                                   f"{secret_key_problem(SECRET_KEY) or 'it is the development key'}; make one with "
                                   "python -c 'import secrets; print(secrets.token_urlsafe(50))'")

DATA_DIR = Path(env_str("NOMOAT_DATA_DIR", str(BASE_DIR / "var"))).resolve()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = env_str("SITE_URL", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served by the hub itself: no CDN, so the docs work offline
    "hub.audit",
    "hub.accounts",
    "hub.catalog",
    "hub.datareports",
    "hub.stacks",
    "hub.evals",
    "hub.moderation",
    "hub.hfcompat",
    "hub.oci",
    "hub.training",
    "hub.provenance",
    "hub.federation",
]

MIDDLEWARE = [
    # Anonymous catalog reads answered from the shared cache (hub/core/anoncache.py; ANONYMOUS_CACHE_VIEWS): first,
    # so a hit costs almost nothing and what it stores carries every header the middleware below adds.
    "hub.core.anoncache.AnonymousReadCacheMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response, with a per-request nonce for inline scripts (CONTENT_SECURITY_POLICY).
    "csp.middleware.CSPMiddleware",
    # 304 when the client already has the answer: lists and details get a weak ETag of their body just below.
    "django.middleware.http.ConditionalGetMiddleware",
    "hub.middleware.ContentETagMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so the error pages it renders know the signed-in user.
    "hub.middleware.ClientErrorMiddleware",
]

ROOT_URLCONF = "hub.urls"
WSGI_APPLICATION = "hub.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # humanize and the hub's readable-value filters (numbers, bytes, metric names) on every page
            "builtins": ["django.contrib.humanize.templatetags.humanize", "hub.catalog.templatetags.readable"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'nomoat.sqlite3'}"))}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so a worker process can share the test database; WAL lets the web
    # process read while a worker writes. IMMEDIATE: a transaction takes the write lock when it begins, so it waits
    # (`timeout`) for another process's write; a deferred one that read first and then wrote failed at once with
    # "database is locked" (the web server and four workers write to this one file).
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-nomoat.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 30,
                                       "transaction_mode": "IMMEDIATE"}
elif DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # A stopped or unreachable server fails a request within this many seconds (a 503, hub/core/outages.py) instead
    # of holding it; a connection kept past a request (CONN_MAX_AGE) is checked before it is reused, so service
    # resumes by itself once PostgreSQL is back.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 5))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # The hub's queries are short index walks: starting parallel workers cost more than they saved (the browse page
    # of a 100,000-adapter catalog, tag + popular: 84 -> 46 ms p50, bench/RESULTS.md). Raise it for analytics.
    parallel = f"-c max_parallel_workers_per_gather={env_int('DATABASE_PARALLEL_WORKERS', 0)}"
    options = DATABASES["default"]["OPTIONS"]
    options["options"] = f"{options['options']} {parallel}" if options.get("options") else parallel
# While the database or the blob store cannot be reached, requests answer 503 with this Retry-After (seconds).
OUTAGE_RETRY_AFTER_SECONDS = env_int("OUTAGE_RETRY_AFTER_SECONDS", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "hub" / "static"]

# Blob store: file:///abs/path (default) or s3://bucket/prefix (with S3_ENDPOINT_URL for
# a non-AWS server; credentials come from boto3's usual AWS_* variables).
BLOB_STORE = env_str("BLOB_STORE", f"file://{DATA_DIR / 'blobs'}")
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL", "") or None
S3_REGION = env_str("S3_REGION", "us-east-1")
S3_PRESIGN_DOWNLOADS = env_bool("S3_PRESIGN_DOWNLOADS", False)
# With the file store behind nginx: downloads answer `X-Accel-Redirect: <this prefix><path in the store>` and nginx
# sends the bytes (deploy/nginx.conf's `location /_blobs/`). Empty: the hub streams them itself.
BLOB_ACCEL_REDIRECT = env_str("BLOB_ACCEL_REDIRECT", "")
# Bounds on each S3 call, so a request never hangs on an unreachable store (it answers 503 instead): seconds to
# connect, seconds without a byte while reading, and attempts in all (boto3's standard retry mode, with backoff).
S3_CONNECT_TIMEOUT_SECONDS = env_float("S3_CONNECT_TIMEOUT_SECONDS", 3)
S3_READ_TIMEOUT_SECONDS = env_float("S3_READ_TIMEOUT_SECONDS", 30)
S3_MAX_ATTEMPTS = env_int("S3_MAX_ATTEMPTS", 3)
BLOB_CACHE_DIR = Path(env_str("BLOB_CACHE_DIR", str(DATA_DIR / "blob-cache")))
# Where workers keep unpacked models between tasks (a cache: safe to delete).
WORK_DIR = Path(env_str("NOMOAT_WORK_DIR", str(DATA_DIR / "work")))
# Provenance (hub/provenance): the hub's signing keys. The current private key is NOMOAT_SIGNING_KEY when set (a
# path, shared by every worker like SECRET_KEY), else SIGNING_KEY_DIR/current.pem, generated on first use; retired
# and revoked public keys stay in SIGNING_KEY_DIR/previous and /revoked so old signatures stay verifiable.
SIGNING_KEY_DIR = Path(env_str("SIGNING_KEY_DIR", str(DATA_DIR / "keys")))
SIGNING_KEY = Path(env_str("NOMOAT_SIGNING_KEY", str(SIGNING_KEY_DIR / "current.pem")))
# More places that serve every blob by sha256 (URL templates with {sha256}, comma-separated: a proxy over the blob
# store, a mirror), listed beside the hub's own URLs as torrent web seeds and Metalink sources.
BLOB_MIRROR_URLS = env_list("BLOB_MIRROR_URLS", "")
# Base models converted at seed time (SmolLM2 from its GGUF); shared by runs that point at it.
MODEL_CACHE_DIR = Path(env_str("NOMOAT_MODEL_CACHE", str(WORK_DIR / "models")))

# Upload limits (bytes / counts), enforced by the upload services and the archive checks.
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 2 * 1024**3)
MAX_UPLOAD_FILES = env_int("MAX_UPLOAD_FILES", 64)
MAX_UNPACKED_BYTES = env_int("MAX_UNPACKED_BYTES", 4 * 1024**3)
MAX_COMPRESSION_RATIO = env_int("MAX_COMPRESSION_RATIO", 200)
MAX_CHUNK_BYTES = env_int("MAX_CHUNK_BYTES", 64 * 1024**2)
# Chunks of resumable uploads are appended here; with several web machines it must be shared
# storage (or route one session to one machine).
UPLOAD_DIR = Path(env_str("NOMOAT_UPLOAD_DIR", str(DATA_DIR / "uploads")))
# Each user may hold this many open resumable sessions, declaring at most this many bytes in all; a
# session idle this long (no chunk, not completed or used) is deleted with its .part file, by the beat
# every UPLOAD_SESSION_EXPIRE_EVERY_SECONDS and on the spot when it is next asked for.
UPLOAD_SESSIONS_PER_USER = env_int("UPLOAD_SESSIONS_PER_USER", 16)
UPLOAD_SESSION_BYTES_PER_USER = env_int("UPLOAD_SESSION_BYTES_PER_USER", 8 * 1024**3)
UPLOAD_SESSION_TTL_SECONDS = env_int("UPLOAD_SESSION_TTL_SECONDS", 24 * 3600)
UPLOAD_SESSION_EXPIRE_EVERY_SECONDS = env_int("UPLOAD_SESSION_EXPIRE_EVERY_SECONDS", 3600)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024**2
# How long a commit through the Hugging Face Hub API (huggingface_hub's upload_file, upload_folder, `hf upload`)
# waits for validation, so that a refused push fails in the client with the reasons (hub/hfcompat/writes.py).
HF_COMMIT_WAIT_SECONDS = env_int("HF_COMMIT_WAIT_SECONDS", 60)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2
FILE_UPLOAD_TEMP_DIR = None

# Workers hold what they work on under a short lease that a heartbeat renews every third of it
# (hub/core/leases.py): a dead worker's claim lapses within one lease and the beat's requeue (every
# REQUEUE_EVERY_SECONDS) hands the work to another, so lost work comes back within about two minutes.
# Versions left `uploaded` for REQUEUE_UPLOADED_AFTER_SECONDS are enqueued again (a lost message).
VALIDATION_LEASE_SECONDS = env_int("VALIDATION_LEASE_SECONDS", 60)
# A stack build running past the timeout fails cleanly ("timed out").
STACK_LEASE_SECONDS = env_int("STACK_LEASE_SECONDS", 60)
STACK_BUILD_TIMEOUT_SECONDS = env_float("STACK_BUILD_TIMEOUT_SECONDS", 3600)
REQUEUE_UPLOADED_AFTER_SECONDS = env_int("REQUEUE_UPLOADED_AFTER_SECONDS", 120)

# Evaluations run under a lease as above; a run past the timeout fails.
# Runs still queued after EVAL_REQUEUE_QUEUED_AFTER_SECONDS are sent again (a lost message).
# EVAL_MAX_DOCS caps the general-perplexity corpus (0: all of it) and EVAL_MAX_ITEMS a task suite's
# items, for small machines; either makes a different suite version, so scores never mix.
EVAL_LEASE_SECONDS = env_int("EVAL_LEASE_SECONDS", 60)
EVAL_TIMEOUT_SECONDS = env_int("EVAL_TIMEOUT_SECONDS", 3600)
EVAL_REQUEUE_QUEUED_AFTER_SECONDS = env_int("EVAL_REQUEUE_QUEUED_AFTER_SECONDS", 3600)
# Data reports and contamination checks run on the evals queue under the same kind of lease. A leaderboard hides
# rows whose training data holds more than CONTAMINATION_HIDE_ABOVE of the suite's eval rows (a share, 0 to 1)
# unless asked to show them; every contaminated row is flagged either way.
DATA_REPORT_LEASE_SECONDS = env_int("DATA_REPORT_LEASE_SECONDS", 60)
CONTAMINATION_HIDE_ABOVE = env_float("CONTAMINATION_HIDE_ABOVE", 0.1)
EVAL_SEED = env_int("EVAL_SEED", 0)
EVAL_MAX_DOCS = env_int("EVAL_MAX_DOCS", 0)
EVAL_MAX_ITEMS = env_int("EVAL_MAX_ITEMS", 500)
EVAL_DEVICE = env_str("EVAL_DEVICE", "cpu")

# Training jobs (hub/training): held under a lease like the rest; checkpoints every so many steps or seconds under
# TRAINING_DIR (shared storage when training workers run on several machines, so another can resume). Per-user
# limits are checked before a job is queued.
TRAINING_LEASE_SECONDS = env_int("TRAINING_LEASE_SECONDS", 60)
TRAINING_DIR = Path(env_str("NOMOAT_TRAINING_DIR", str(DATA_DIR / "training")))
TRAINING_CHECKPOINT_EVERY_STEPS = env_int("NOMOAT_TRAINING_CHECKPOINT_EVERY_STEPS", 50)
TRAINING_CHECKPOINT_EVERY_SECONDS = env_float("NOMOAT_TRAINING_CHECKPOINT_EVERY_SECONDS", 300)
TRAINING_MAX_CONCURRENT_JOBS = env_int("NOMOAT_TRAINING_MAX_CONCURRENT_JOBS", 2)
TRAINING_MAX_STEPS = env_int("NOMOAT_TRAINING_MAX_STEPS", 2000)
TRAINING_MAX_SEQ_LEN = env_int("NOMOAT_TRAINING_MAX_SEQ_LEN", 1024)
TRAINING_MAX_RANK = env_int("NOMOAT_TRAINING_MAX_RANK", 64)
TRAINING_MAX_BATCH_SIZE = env_int("NOMOAT_TRAINING_MAX_BATCH_SIZE", 32)
TRAINING_THREADS = env_int("NOMOAT_TRAINING_THREADS", min(4, os.cpu_count() or 1))
TRAINING_DEVICE = env_str("NOMOAT_TRAINING_DEVICE", "auto")

# Celery: Redis when CELERY_BROKER_URL is set, else kombu's filesystem transport (no server).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = DATA_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Each app's tasks (hub/<app>/tasks.py) name their queue: uploads, builds or evals.
CELERY_TASK_DEFAULT_QUEUE = "uploads"
CELERY_TASK_ALWAYS_EAGER = False
_REQUEUE_EVERY_SECONDS = env_int("REQUEUE_EVERY_SECONDS", 60)
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-validations": {"task": "catalog.requeue_stale_validations", "schedule": _REQUEUE_EVERY_SECONDS,
                                  "options": {"queue": "uploads"}},
    "requeue-stale-builds": {"task": "stacks.requeue_stale_builds", "schedule": _REQUEUE_EVERY_SECONDS,
                             "options": {"queue": "builds"}},
    "requeue-stale-evals": {"task": "evals.requeue_stale_runs", "schedule": _REQUEUE_EVERY_SECONDS,
                            "options": {"queue": "evals"}},
    "requeue-stale-data-reports": {"task": "datareports.requeue_stale", "schedule": _REQUEUE_EVERY_SECONDS,
                                   "options": {"queue": "evals"}},
    "requeue-stale-trainings": {"task": "training.requeue_stale_jobs", "schedule": _REQUEUE_EVERY_SECONDS,
                                "options": {"queue": "training"}},
    "expire-upload-sessions": {"task": "catalog.expire_upload_sessions",
                               "schedule": UPLOAD_SESSION_EXPIRE_EVERY_SECONDS, "options": {"queue": "uploads"}},
}
# Federation (hub/federation): the URL peers reach this hub at (actor, object and activity ids start with it; it
# should never change once peers follow the hub), the largest activity an inbox accepts, how far a signed request's
# Date may be from now, and the timeout of requests to peers. Catch-up pages each followed outbox this often.
NOMOAT_PUBLIC_URL = env_str("NOMOAT_PUBLIC_URL", f"http://{env_str('HOST', '127.0.0.1')}:{env_str('PORT', '8000')}"
                            ).rstrip("/")
NOMOAT_FEDERATION_MAX_ACTIVITY_BYTES = env_int("NOMOAT_FEDERATION_MAX_ACTIVITY_BYTES", 1024**2)
FEDERATION_SIGNATURE_MAX_AGE_SECONDS = env_int("FEDERATION_SIGNATURE_MAX_AGE_SECONDS", 300)
FEDERATION_HTTP_TIMEOUT_SECONDS = env_float("FEDERATION_HTTP_TIMEOUT_SECONDS", 10.0)
FEDERATION_DELIVERY_MAX_ATTEMPTS = env_int("FEDERATION_DELIVERY_MAX_ATTEMPTS", 8)
FEDERATION_CATCH_UP_EVERY_SECONDS = env_int("FEDERATION_CATCH_UP_EVERY_SECONDS", 60)
CELERY_BEAT_SCHEDULE["federation-catch-up"] = {"task": "federation.catch_up", "schedule":
                                               FEDERATION_CATCH_UP_EVERY_SECONDS, "options": {"queue": "federation"}}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The cache every web process shares (download counting deduplicates through it): Redis when the
# broker is Redis, else files under the data dir (the embedded default runs on one machine).
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CELERY_BROKER_URL,
                          "KEY_PREFIX": "nomoat-cache"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(DATA_DIR / "cache"), "OPTIONS": {"MAX_ENTRIES": 20000}}}

# Downloads: a GET from byte 0 counts once per client (user, else IP address) and item in this many
# seconds (0: every one counts). The client's address is REMOTE_ADDR; behind TRUSTED_PROXY_COUNT
# proxies that append to X-Forwarded-For (deploy/nginx.conf is one), the entry the outermost added.
DOWNLOAD_DEDUP_SECONDS = env_int("DOWNLOAD_DEDUP_SECONDS", 3600)
# With Redis, counted downloads are buffered there and folded into the rows this often (hub/catalog/download_counts.py):
# the figures shown lag by up to this much. The embedded default counts in the rows at once.
DOWNLOAD_COUNT_FLUSH_SECONDS = env_int("DOWNLOAD_COUNT_FLUSH_SECONDS", 30)
CELERY_BEAT_SCHEDULE["flush-version-downloads"] = {"task": "catalog.flush_download_counts",
                                                   "schedule": DOWNLOAD_COUNT_FLUSH_SECONDS,
                                                   "options": {"queue": "uploads"}}
CELERY_BEAT_SCHEDULE["flush-stack-downloads"] = {"task": "stacks.flush_download_counts",
                                                 "schedule": DOWNLOAD_COUNT_FLUSH_SECONDS, "options": {"queue": "uploads"}}
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hub.accounts.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["hub.accounts.auth.TokenScopePermission"],
    "DEFAULT_PAGINATION_CLASS": "hub.api.pagination.HubCursorPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "hub.api.schema.HubAutoSchema",
    "EXCEPTION_HANDLER": "hub.api.errors.exception_handler",
    # Per-route limits and anonymous reads per address (hub/core/throttling.py; rates in THROTTLE_RATES below).
    "DEFAULT_THROTTLE_CLASSES": ["hub.core.throttling.ApiThrottle"],
    "DEFAULT_PARSER_CLASSES": [
        "hub.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "nomoat API",
    "DESCRIPTION": "Share, evaluate and stack LoRA adapters and curated datasets.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["hub.api.schema.api_paths_only"],
    # Bearer tokens are the API's authentication; the session cookie is the site's (its scheme's text says so).
    "AUTHENTICATION_WHITELIST": ["hub.accounts.auth.BearerTokenAuthentication"],
    # Request bodies are documented as JSON (uploads and chunks name their own media types); the form parsers
    # serve the browsable API, and a form cannot say which field is a list or a number.
    "PARSER_WHITELIST": ["hub.api.parsers.JSONParser"],
    # Request and response bodies as separate components: what a client sends is not what it reads back.
    "COMPONENT_SPLIT_REQUEST": True,
    # Several choice sets share a field name (`kind`, `state`): each gets its own component name.
    "ENUM_NAME_OVERRIDES": {
        "RepoKindEnum": "hub.catalog.models.RepoKind",
        "VersionStateEnum": "hub.catalog.models.VersionState",
        "UploadStateEnum": "hub.catalog.models.UploadSession.State",
        "BuildStateEnum": "hub.stacks.models.BuildState",
        "RunStateEnum": "hub.evals.models.RunState",
        "PeerStateEnum": "hub.federation.models.PeerState",
        "FollowStateEnum": "hub.federation.models.FollowState",
    },
}

# Moderation. Reports from this many different users hide an item until a moderator decides; this share
# (0..1) of trusted uploaders' versions, published at once, is still drawn into the review queue; a
# moderator's claim on a queue item lapses after this many seconds.
REPORT_HIDE_THRESHOLD = env_int("REPORT_HIDE_THRESHOLD", 3)
TRUSTED_SAMPLE_RATE = env_float("TRUSTED_SAMPLE_RATE", 0.1)
if not 0 <= TRUSTED_SAMPLE_RATE <= 1:
    raise ImproperlyConfigured(f"TRUSTED_SAMPLE_RATE={TRUSTED_SAMPLE_RATE}: expected a share between 0 and 1")
CLAIM_TTL_SECONDS = env_int("CLAIM_TTL_SECONDS", 30 * 60)

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "nomoat <noreply@nomoat.local>")

# --- Security headers. Production serves HTTPS only (TLS ends at the proxy, which sets X-Forwarded-Proto): HTTP is
# redirected, browsers are told to remember that (HSTS), cookies are sent over HTTPS only.
if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 86400 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
# Preloading puts the domain into browsers' built-in lists, which takes months to undo: the operator's decision,
# off by default (and then Django's reminder about it, security.W021, is silenced).
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# django-csp: scripts and style sheets only from the hub itself or inline with this request's nonce
# (templates write `nonce="{{ request.csp_nonce }}"`); no plugins, no framing, forms post only to the hub. Style
# attributes (style="…") stay allowed: they cannot run code, and the pages use them for widths and colours.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.NONCE],
        "style-src-attr": [csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF, "data:"],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    },
}

# --- Throttles (hub/core/throttling.py), counted in the shared cache: "N/second|minute|hour|day". Sign-in
# attempts (the page, the admin, token creation with a password) per account named and per address; token creation
# per account and address; uploads, upload sessions and new stack builds per user; anonymous API reads per address.
# A user may also have at most STACK_BUILDS_CONCURRENT_PER_USER builds queued or running at once.
_THROTTLE_DEFAULTS = {
    "signin_per_account": ("THROTTLE_SIGNIN_PER_ACCOUNT", "10/minute"),
    "signin_per_address": ("THROTTLE_SIGNIN_PER_ADDRESS", "30/minute"),
    "tokens_per_account": ("THROTTLE_TOKENS_PER_ACCOUNT", "20/hour"),
    "tokens_per_address": ("THROTTLE_TOKENS_PER_ADDRESS", "60/hour"),
    "signups_per_address": ("THROTTLE_SIGNUPS_PER_ADDRESS", "10/hour"),
    "uploads_per_user": ("THROTTLE_UPLOADS_PER_USER", "60/hour"),
    "upload_sessions_per_user": ("THROTTLE_UPLOAD_SESSIONS_PER_USER", "300/hour"),
    "stack_builds_per_user": ("THROTTLE_STACK_BUILDS_PER_USER", "30/hour"),
    "anonymous_reads_per_address": ("THROTTLE_ANONYMOUS_READS_PER_ADDRESS", "1200/minute"),
}


def _throttle_rates() -> dict:
    from hub.core.rates import Rate

    return {scope: Rate.parse(env_str(name, default), name=name) for scope, (name, default) in _THROTTLE_DEFAULTS.items()}


THROTTLE_RATES = _throttle_rates()

# Anonymous reads of these views are answered from the shared cache for up to this many seconds (0: off); any
# change to a catalog row makes every stored answer stale at once (hub/core/anoncache.py).
ANONYMOUS_CACHE_SECONDS = env_int("ANONYMOUS_CACHE_SECONDS", 30)
ANONYMOUS_CACHE_VIEWS = frozenset({
    "hub.catalog.api.BaseModelList", "hub.catalog.api.BaseModelDetail", "hub.catalog.api.RepositoryList",
    "hub.catalog.api.RepositoryDetail", "hub.catalog.api.VersionListUpload", "hub.catalog.api.VersionDetail",
    "hub.catalog.api.VersionFileList", "hub.hfcompat.views.RepoList", "hub.hfcompat.views.RepoInfo",
    "hub.hfcompat.views.RepoTree", "hub.hfcompat.views.ResolveFile", "hub.catalog.api.VersionFileDownload",
})
STACK_BUILDS_CONCURRENT_PER_USER = env_int("STACK_BUILDS_CONCURRENT_PER_USER", 2)
AUTHENTICATION_BACKENDS = ["hub.accounts.backends.ThrottledModelBackend"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
