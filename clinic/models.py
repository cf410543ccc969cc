from django.db import models
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
