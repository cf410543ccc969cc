from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ClinicAccess(models.Model):
    """Holds the permissions that belong to no model: which of the clinic's own pages a user
    may open. Unmanaged, so it has no table; it exists for its content type."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("use_practice_pages", _("Can use the practitioner pages")),
            ("view_reports", _("Can read the managers' reports")),
        ]
        verbose_name = _("clinic access")

    def __str__(self) -> str:
        return str(self._meta.verbose_name)


class AccessEvent(models.TextChoices):
    LOGIN = "login", _("Logged in")
    LOGOUT = "logout", _("Logged out")
    LOGIN_FAILED = "login_failed", _("Failed login")
    RECORD_VIEWED = "record_viewed", _("Patient record viewed")
    RECORD_EXPORTED = "record_exported", _("Patient record exported")
    REPORT_EXPORTED = "report_exported", _("Report exported")


class AccessLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The access log is append-only.")

    def delete(self):
        raise PermissionError("The access log is append-only.")


class AccessLog(models.Model):
    """Who saw or took what, when and from where: every view and export of a patient's record,
    every report export, every login, logout and failed login. Rows are only ever added; on
    PostgreSQL a trigger refuses UPDATE and DELETE whatever the code (clinic/audit.py)."""

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    # The user's id and name as they were, not a foreign key: the log outlives accounts.
    user_id = models.BigIntegerField(_("user id"), null=True, blank=True)
    username = models.CharField(_("user"), max_length=150, blank=True)
    event = models.CharField(_("event"), max_length=20, choices=AccessEvent.choices)
    patient_id = models.BigIntegerField(_("patient id"), null=True, blank=True)
    what = models.CharField(_("what"), max_length=300, blank=True)
    address = models.GenericIPAddressField(_("from address"), null=True, blank=True)

    objects = AccessLogQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log")
        indexes = [
            models.Index(fields=["patient_id", "at"], name="access_patient_idx"),
            models.Index(fields=["user_id", "at"], name="access_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.get_event_display()}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("The access log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The access log is append-only.")
