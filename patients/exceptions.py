from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class LikelyDuplicatePatient(ValidationError):
    """Another patient has the same names and date of birth; staff must confirm it is a
    different person before a second record is written."""

    def __init__(self, duplicates):
        self.duplicates = list(duplicates)
        super().__init__(
            _(
                "A patient with the same names and date of birth is already registered "
                "(%(records)s). Open that record instead, or tick the confirmation if this "
                "is a different person."
            )
            % {"records": "; ".join(f"#{p.pk} {p}" for p in self.duplicates)},
            code="likely_duplicate",
        )
