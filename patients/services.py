"""Every write to a patient's record. Each takes the acting user, validates before it writes,
runs in one transaction and leaves a history row naming that user."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.locks import advisory_lock

from .exceptions import LikelyDuplicatePatient
from .models import Consent, Patient, Screening, name_key


def _lock_identity(patient: Patient) -> None:
    """Serialises registrations of the same names and date of birth, so two receptionists
    registering the same walk-in at once cannot both pass the duplicate check. PostgreSQL only:
    SQLite already serialises writers."""
    key = f"{name_key(f'{patient.given_name} {patient.family_name}')}|{patient.date_of_birth}"
    advisory_lock(f"patient:{key}")


def _identity_changed(patient: Patient) -> bool:
    """A new patient, or a change of names or date of birth: only then can a record become a
    likely duplicate (namesakes confirmed once stay confirmed through later edits)."""
    if patient.pk is None:
        return True
    stored = Patient.objects.filter(pk=patient.pk).values_list("name_key", "date_of_birth").get()
    return stored != (
        name_key(f"{patient.given_name} {patient.family_name}"),
        patient.date_of_birth,
    )


def _save_patient(
    patient: Patient, *, actor: AbstractBaseUser, confirm_duplicate: bool, reason: str
) -> Patient:
    patient.full_clean()
    _lock_identity(patient)
    if not confirm_duplicate and _identity_changed(patient):
        duplicates = Patient.objects.likely_duplicates_of(
            given_name=patient.given_name,
            family_name=patient.family_name,
            date_of_birth=patient.date_of_birth,
        ).exclude(pk=patient.pk)
        if duplicates:
            raise LikelyDuplicatePatient(duplicates)
    patient._history_user = actor
    if reason:
        patient._change_reason = reason
    patient.save()
    return patient


@transaction.atomic
def patient_register(
    *, patient: Patient, actor: AbstractBaseUser, confirm_duplicate: bool = False
) -> Patient:
    """Writes a new patient built by the caller. Refuses a likely duplicate (same names and
    date of birth) unless `confirm_duplicate` says staff checked it is another person."""
    if patient.pk is not None:
        raise ValueError("patient_register takes a patient that is not saved yet")
    return _save_patient(patient, actor=actor, confirm_duplicate=confirm_duplicate, reason="")


@transaction.atomic
def patient_update(
    *, patient: Patient, actor: AbstractBaseUser, confirm_duplicate: bool = False, reason: str = ""
) -> Patient:
    """Saves the changes made to a registered patient."""
    if patient.pk is None:
        raise ValueError("patient_update takes a registered patient")
    return _save_patient(patient, actor=actor, confirm_duplicate=confirm_duplicate, reason=reason)


@transaction.atomic
def screening_record(*, screening: Screening, actor: AbstractBaseUser) -> Screening:
    """Stores a new set of answers. Screenings are never edited: a correction is a new one."""
    if screening.pk is not None:
        raise ValueError("screening_record takes a screening that is not saved yet")
    screening.recorded_by = actor
    screening.recorded_at = timezone.now()
    screening.full_clean()
    screening._history_user = actor
    screening.save()
    return screening


@transaction.atomic
def consent_record(*, consent: Consent, actor: AbstractBaseUser) -> Consent:
    """Stores a signed consent form."""
    if consent.pk is not None:
        raise ValueError("consent_record takes a consent that is not saved yet")
    consent.recorded_by = actor
    consent.withdrawn_at = None
    consent.withdrawal_reason = ""
    consent.full_clean()
    consent._history_user = actor
    consent.save()
    return consent


@transaction.atomic
def consent_withdraw(
    *, consent: Consent, actor: AbstractBaseUser, reason: str, withdrawn_at: datetime | None = None
) -> Consent:
    """Records that the patient withdrew a consent. The consent stays on file, marked."""
    consent = Consent.objects.select_for_update().get(pk=consent.pk)
    withdrawn_at = withdrawn_at or timezone.now()
    if consent.withdrawn_at is not None:
        raise ValidationError(
            _("This consent was already withdrawn on %(day)s.")
            % {"day": timezone.localtime(consent.withdrawn_at).strftime("%d/%m/%Y %H:%M")}
        )
    if not reason.strip():
        raise ValidationError({"withdrawal_reason": _("Say why the consent is withdrawn.")})
    if withdrawn_at < consent.signed_at:
        raise ValidationError(
            {"withdrawn_at": _("A consent cannot be withdrawn before it was signed.")}
        )
    if withdrawn_at > timezone.now():
        raise ValidationError({"withdrawn_at": _("A withdrawal cannot be dated in the future.")})
    consent.withdrawn_at = withdrawn_at
    consent.withdrawal_reason = reason.strip()
    consent._history_user = actor
    consent._change_reason = _("Withdrawn: %(reason)s") % {"reason": consent.withdrawal_reason}
    consent.save(update_fields=["withdrawn_at", "withdrawal_reason"])
    return consent
