from django.core.exceptions import ValidationError


class DoubleBooking(ValidationError):
    """The practitioner or the room already has a session at that time."""


class NotTreatable(ValidationError):
    """A hard stop, or a warning not acknowledged, stands between the patient and treatment."""
