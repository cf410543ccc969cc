"""Settings, read from the environment (.env.example documents every variable).

Debug is off unless DJANGO_DEBUG says otherwise. With debug off the process refuses to start
without a secret key and allowed hosts, and the security settings default to production values.
"""

from datetime import timedelta
from pathlib import Path

import environ
import xstatic.pkg.bootstrap
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (50 or more random characters) "
            "or set DJANGO_DEBUG=1 for a development machine."
        )
    SECRET_KEY = "development-only-key-never-used-with-debug-off"

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
if DEBUG and not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is not set. List the host names the clinic is served on, "
        "separated by commas."
    )
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # The admin, behind the clinic's second factor for staff (clinic/admin_site.py).
    "clinic.apps.ClinicAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "simple_history",
    "phonenumber_field",
    "crispy_forms",
    "crispy_bootstrap5",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "clinic",
    "patients",
    "inventory",
    "treatments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "clinic.middleware.IdleTimeoutMiddleware",
    "clinic.audit.ExportLogMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username and address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    # ModelBackend with each user's permissions kept in the cache (clinic/auth_backends.py).
    "clinic.auth_backends.CachedPermissionsBackend",
]

ROOT_URLCONF = "clinic.urls"
WSGI_APPLICATION = "clinic.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "clinic" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "clinic.context_processors.clinic",
            ],
        },
    },
    {
        # Only where a template is drawn thousands of times: the rows of the long stock-report
        # tables (inventory/jinja2/) and the reminder email (treatments/jinja2/). Jinja2 draws
        # them several times faster than Django's engine (clinic/jinja.py). Every page is a
        # Django template.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "APP_DIRS": True,
        "OPTIONS": {"autoescape": True},
    },
]

# Database: PostgreSQL in production and CI, a SQLite file under var/ as the embedded default.
if "DATABASE_URL" not in env:
    VAR_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'clinic.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django binds parameters on the client, so its own queries are never prepared; this lets
    # a statement that asks to be (the reminder sender's, run once a reminder) be prepared.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: the cache here, and the Celery broker.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, keeping its Redis client between calls (clinic/cache.py).
            "BACKEND": "clinic.cache.ClinicRedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# How long each user's permissions are kept in the cache (clinic/auth_backends.py); also the
# longest a change made behind the ORM's back (raw SQL) can go unseen. Off without Redis: a
# cache of one process's own cannot hear of a change made in another.
PERMISSION_CACHE_SECONDS = env.int("PERMISSION_CACHE_SECONDS", default=300 if REDIS_URL else 0)

# Celery: Redis as broker, or the filesystem under var/ when there is no Redis.
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _queue = VAR_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "queue"),
        "data_folder_out": str(_queue / "queue"),
        "processed_folder": str(_queue / "processed"),
        "control_folder": str(_queue / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "processed", "control"):
        (_queue / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TIMEZONE = env.str("CLINIC_TIME_ZONE", default="Europe/Madrid")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connections around every task unless told to reuse
# them: a new PostgreSQL connection per task cost more than sending a reminder (docs/benchmarks.md,
# "Reminders"). A worker keeps its connection for this many tasks, then opens a fresh one.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=100)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "stock-digest": {
        "task": "inventory.tasks.stock_digest",
        "schedule": crontab(hour=env.int("STOCK_DIGEST_HOUR", default=7), minute=30),
    },
}
# Lots expiring within this many days are in the managers' daily digest.
STOCK_EXPIRY_ALERT_DAYS = env.int("STOCK_EXPIRY_ALERT_DAYS", default=30)

# Reminders. The rows in the database are the truth: beat runs the dispatcher, which hands due
# reminders to the workers, and the sweeper, which returns claims a dead worker left behind.
# Each reminder is CHANNEL:HOURS before the session (the patient's preferred channel wins).
REMINDER_SCHEDULE = env.list("REMINDER_SCHEDULE", default=["email:48", "sms:3"])
# No reminder leaves inside these hours, clinic time (HH:MM-HH:MM).
REMINDER_QUIET_HOURS = env.str("REMINDER_QUIET_HOURS", default="21:00-08:00")
# Seconds between two runs of the dispatcher and of the sweeper.
REMINDER_DISPATCH_SECONDS = env.float("REMINDER_DISPATCH_SECONDS", default=60.0)
# Most reminders the dispatcher hands out in one go; a full batch starts the next at once.
REMINDER_DISPATCH_BATCH = env.int("REMINDER_DISPATCH_BATCH", default=500)
# A reminder handed out this many seconds ago and still pending is handed out again (the
# broker lost the message, for example when Redis restarted). Keep it well above the time the
# workers take to send what is queued: a row still waiting in the queue would get a second
# message (which its claim ignores) and keep the dispatcher busy.
REMINDER_REQUEUE_SECONDS = env.int("REMINDER_REQUEUE_SECONDS", default=300)
# A claim older than this many seconds belongs to a worker that died: back to pending.
REMINDER_CLAIM_TIMEOUT_SECONDS = env.int("REMINDER_CLAIM_TIMEOUT_SECONDS", default=300)
# Sending attempts before a reminder is marked failed, and the first retry's delay (doubling,
# with jitter, up to 30 minutes).
REMINDER_MAX_ATTEMPTS = env.int("REMINDER_MAX_ATTEMPTS", default=5)
REMINDER_RETRY_SECONDS = env.float("REMINDER_RETRY_SECONDS", default=30.0)
# How links in reminders are built: the public address of the clinic's site.
CLINIC_BASE_URL = env.str("CLINIC_BASE_URL", default="http://127.0.0.1:8000")
CELERY_BEAT_SCHEDULE |= {
    "reminders-dispatch": {
        "task": "treatments.tasks.reminders_dispatch",
        "schedule": REMINDER_DISPATCH_SECONDS,
    },
    "reminders-sweep": {
        "task": "treatments.tasks.reminders_sweep",
        "schedule": REMINDER_DISPATCH_SECONDS,
    },
}

# SMS: a backend class, as for email. Console and file backends for development; the Vonage
# adapter (SMS API over HTTPS) in production.
SMS_BACKEND = env.str("SMS_BACKEND", default="clinic.sms.backends.console.ConsoleBackend")
# Sender shown on the patient's phone (a number in E.164, or up to 11 letters).
SMS_FROM = env.str("SMS_FROM", default="Clinic")
# Folder of the file backend, one file per message.
SMS_FILE_PATH = env.str("SMS_FILE_PATH", default=str(VAR_DIR / "sms"))
SMS_VONAGE_API_KEY = env.str("SMS_VONAGE_API_KEY", default="")
SMS_VONAGE_API_SECRET = env.str("SMS_VONAGE_API_SECRET", default="")
SMS_VONAGE_URL = env.str("SMS_VONAGE_URL", default="https://rest.nexmo.com/sms/json")
# Seconds to wait for the provider before counting the attempt as failed.
SMS_TIMEOUT_SECONDS = env.float("SMS_TIMEOUT_SECONDS", default=10.0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# The address a request comes from (login throttling, the access log). Behind N reverse proxies
# that each append to X-Forwarded-For, the client is the entry the outermost of ours added;
# anything a client typed further left is ignored. 0: the socket's address (REMOTE_ADDR).
CLINIC_TRUSTED_PROXY_COUNT = env.int("CLINIC_TRUSTED_PROXY_COUNT", default=0)

# Login throttling (django-axes): five failures for one username from one address lock that
# pair out for AXES_COOLOFF_TIME; a success clears the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "clinic.net.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Sessions are read from the cache (Redis in production) and written through to the database:
# one query less on every page, and nothing lost when the cache restarts.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Sessions end after this many idle minutes (clinic/middleware.py).
SESSION_IDLE_MINUTES = env.int("SESSION_IDLE_MINUTES", default=30)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60

# Two-factor authentication (django-otp, TOTP) for staff in the admin: on in production.
CLINIC_ADMIN_REQUIRES_2FA = env.bool("CLINIC_ADMIN_REQUIRES_2FA", default=not DEBUG)
OTP_TOTP_ISSUER = env.str("CLINIC_NAME", default="Clínica Demo")

# Content Security Policy (django-csp): scripts, styles, images and forms from the site only;
# no inline script anywhere; no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Language and time: the clinic's own time zone, English and Spanish.
LANGUAGE_CODE = env.str("DJANGO_LANGUAGE_CODE", default="en")
LANGUAGES = [("en", _("English")), ("es", _("Spanish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates as a clinic in Spain writes them, in English too (clinic/formats/en).
FORMAT_MODULE_PATH = ["clinic.formats"]
TIME_ZONE = env.str("CLINIC_TIME_ZONE", default="Europe/Madrid")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# Bootstrap comes from the XStatic-Bootstrap package: no CDN at run time.
STATICFILES_DIRS = [("bootstrap", xstatic.pkg.bootstrap.BASE_DIR)]
# In development WhiteNoise serves straight from the apps' folders; production serves what
# `collectstatic` gathered.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
if EMAIL_CONFIG["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend":
    # The same backend, with the sender and recipients written once each (clinic/mail.py).
    EMAIL_CONFIG["EMAIL_BACKEND"] = "clinic.mail.SMTPBackend"
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Clinic <clinic@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Seconds an SMTP conversation may stall before the send counts as failed (and is retried).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_SECONDS", default=30)
# The domain of the Message-IDs the clinic's mail carries (so a resend is recognisable).
CLINIC_MAIL_DOMAIN = env.str("CLINIC_MAIL_DOMAIN", default="clinic.localhost")

# Security: production values unless debug is on.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("DJANGO_BEHIND_HTTPS_PROXY", default=False)
    else None
)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

PHONENUMBER_DEFAULT_REGION = env.str("CLINIC_PHONE_REGION", default="ES")
PHONENUMBER_DB_FORMAT = "E164"

# The clinic, as patients and staff see it.
CLINIC_NAME = env.str("CLINIC_NAME", default="Clínica Demo")
# Address and phone in reminders: where to come and whom to call.
CLINIC_ADDRESS = env.str("CLINIC_ADDRESS", default="Carrer de Balmes 1, 08007 Barcelona")
CLINIC_PHONE = env.str("CLINIC_PHONE", default="+34 930 000 000")
# A screening older than this many days no longer clears a patient for treatment.
PATIENTS_SCREENING_MAX_AGE_DAYS = env.int("PATIENTS_SCREENING_MAX_AGE_DAYS", default=30)
# The account that tasks and management commands act as in the history.
CLINIC_SYSTEM_USERNAME = env.str("CLINIC_SYSTEM_USERNAME", default="system")

SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
# History is for reading. Reverting from it would write a record without its service (a
# recalled lot made available, a withdrawn consent in force again).
SIMPLE_HISTORY_REVERT_DISABLED = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}
