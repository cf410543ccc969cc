from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = _("Clinic")

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from . import auth_backends  # noqa: F401 - connects the permission cache's signals
        from .audit import connect_signals
        from .middleware import start_idle_clock

        connect_signals()
        user_logged_in.connect(start_idle_clock, dispatch_uid="clinic.idle_clock")


class ClinicAdminConfig(admin_apps.AdminConfig):
    """The Django admin, with the clinic's site: staff need their second factor."""

    default = False
    default_site = "clinic.admin_site.ClinicAdminSite"
