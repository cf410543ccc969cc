import unicodedata
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField
from simple_history.models import HistoricalRecords

MAX_AGE_YEARS = 120


class Sex(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")
    NOT_STATED = "not_stated", _("Not stated")


class ReminderChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")


class Fitzpatrick(models.TextChoices):
    I = "I", _("I: always burns, never tans")  # noqa: E741
    II = "II", _("II: usually burns, tans minimally")
    III = "III", _("III: sometimes burns, tans uniformly")
    IV = "IV", _("IV: burns minimally, always tans")
    V = "V", _("V: very rarely burns, tans very easily")
    VI = "VI", _("VI: never burns")


class Glogau(models.TextChoices):
    I = "I", _("I: no wrinkles")  # noqa: E741
    II = "II", _("II: wrinkles in motion")
    III = "III", _("III: wrinkles at rest")
    IV = "IV", _("IV: only wrinkles")


def name_key(text: str) -> str:
    """A name folded for matching: no case, no accents, single spaces ("José  Núñez" and
    "jose nunez" give the same key). Done in Python because SQLite's LOWER() ignores accents."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


class PatientQuerySet(models.QuerySet):
    def likely_duplicates_of(self, *, given_name: str, family_name: str, date_of_birth: date):
        """Same names (ignoring case, accents and spacing) and the same date of birth."""
        return self.filter(
            name_key=name_key(f"{given_name} {family_name}"), date_of_birth=date_of_birth
        )


class Patient(models.Model):
    given_name = models.CharField(_("given name"), max_length=100)
    family_name = models.CharField(_("family name"), max_length=100)
    date_of_birth = models.DateField(_("date of birth"))
    sex = models.CharField(_("sex"), max_length=12, choices=Sex.choices)
    email = models.EmailField(_("email"), blank=True)
    mobile_phone = PhoneNumberField(
        _("mobile phone"),
        blank=True,
        help_text=_("With the country code (+34 …) unless it is a local number."),
    )
    preferred_channel = models.CharField(
        _("preferred reminder channel"),
        max_length=8,
        choices=ReminderChannel.choices,
        default=ReminderChannel.EMAIL,
    )
    reminders_opt_out = models.BooleanField(
        _("no reminders"), default=False, help_text=_("The patient asked not to be reminded.")
    )
    preferred_language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="es"
    )
    address_line = models.CharField(_("address"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=16, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    fitzpatrick_type = models.CharField(
        _("Fitzpatrick skin type"), max_length=3, choices=Fitzpatrick.choices, blank=True
    )
    glogau_type = models.CharField(
        _("Glogau photo-ageing type"), max_length=3, choices=Glogau.choices, blank=True
    )
    notes = models.TextField(_("notes"), blank=True)
    name_key = models.CharField(max_length=201, editable=False, db_index=True)
    created_at = models.DateTimeField(_("registered at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()
    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["family_name", "given_name", "id"]
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        indexes = [
            # The list's order, so a page of it is read from the index without sorting.
            models.Index(fields=["family_name", "given_name", "id"], name="patient_name_idx"),
            models.Index(fields=["date_of_birth"], name="patient_dob_idx"),
            models.Index(fields=["mobile_phone"], name="patient_phone_idx"),
            # Search by email ignores case.
            models.Index(Upper("email"), name="patient_email_upper_idx"),
            # On PostgreSQL a trigram index serves the name search (name_key LIKE '%word%'):
            # migration patients.0002.
        ]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.date_of_birth:%d/%m/%Y})"

    def save(self, *args, **kwargs):
        self.name_key = name_key(f"{self.given_name} {self.family_name}")
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"given_name", "family_name"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "name_key"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("patients:safety", args=[self.pk])

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def age_on(self, day: date) -> int:
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def clean(self) -> None:
        errors = {}
        if self.date_of_birth:
            today = timezone.localdate()
            if self.date_of_birth > today:
                errors["date_of_birth"] = _("The date of birth is in the future.")
            elif self.age_on(today) > MAX_AGE_YEARS:
                errors["date_of_birth"] = _(
                    "That makes the patient older than %(years)d years; check the year."
                ) % {"years": MAX_AGE_YEARS}
        if not self.reminders_opt_out:
            if self.preferred_channel == ReminderChannel.SMS and not self.mobile_phone:
                errors["mobile_phone"] = _("SMS reminders need a mobile phone number.")
            if self.preferred_channel == ReminderChannel.EMAIL and not self.email:
                errors["email"] = _("Email reminders need an email address.")
        if errors:
            raise ValidationError(errors)


class Screening(models.Model):
    """One dated set of answers to the contraindication questions."""

    ANSWER_FIELDS = (
        "pregnant_or_breastfeeding",
        "anticoagulants",
        "nsaids_last_48h",
        "autoimmune_disease",
        "active_infection_at_site",
        "allergies",
        "allergy_hyaluronic_acid",
        "allergy_vitamins",
        "allergy_anaesthetic",
        "keloid_tendency",
        "bleeding_disorder",
        "anaemia",
        "cancer_under_treatment",
        "immunosuppression",
        "vaccination_last_7_days",
        "diabetes",
    )

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="screenings", verbose_name=_("patient")
    )
    taken_on = models.DateField(_("answered on"), default=timezone.localdate)
    pregnant_or_breastfeeding = models.BooleanField(_("pregnant or breastfeeding"), default=False)
    anticoagulants = models.BooleanField(
        _("takes anticoagulant or antiplatelet drugs"), default=False
    )
    nsaids_last_48h = models.BooleanField(
        _("aspirin or other NSAIDs in the last 48 hours"), default=False
    )
    autoimmune_disease = models.BooleanField(_("autoimmune disease"), default=False)
    active_infection_at_site = models.BooleanField(
        _("active infection or skin disease at the treatment site"), default=False
    )
    allergies = models.TextField(_("other allergies"), blank=True)
    allergy_hyaluronic_acid = models.BooleanField(_("allergy to hyaluronic acid"), default=False)
    allergy_vitamins = models.BooleanField(_("allergy to vitamin components"), default=False)
    allergy_anaesthetic = models.BooleanField(
        _("allergy to lidocaine or anaesthetic cream"), default=False
    )
    keloid_tendency = models.BooleanField(_("keloid tendency"), default=False)
    bleeding_disorder = models.BooleanField(_("bleeding or platelet disorder"), default=False)
    anaemia = models.BooleanField(_("anaemia"), default=False)
    cancer_under_treatment = models.BooleanField(_("cancer under treatment"), default=False)
    immunosuppression = models.BooleanField(_("immunosuppression"), default=False)
    vaccination_last_7_days = models.BooleanField(
        _("vaccination in the last 7 days"), default=False
    )
    diabetes = models.BooleanField(_("diabetes"), default=False)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-taken_on", "-recorded_at", "-id"]
        get_latest_by = ["taken_on", "recorded_at", "id"]
        verbose_name = _("screening")
        verbose_name_plural = _("screenings")
        indexes = [models.Index(fields=["patient", "-taken_on"], name="screening_latest_idx")]

    def __str__(self) -> str:
        return _("Screening of %(day)s") % {"day": self.taken_on.strftime("%d/%m/%Y")}

    def clean(self) -> None:
        if self.taken_on and self.taken_on > timezone.localdate():
            raise ValidationError({"taken_on": _("A screening cannot be dated in the future.")})


class ConsentKind(models.TextChoices):
    MESOTHERAPY = "mesotherapy", _("Mesotherapy treatment")
    PRP = "prp", _("PRP treatment")
    PHOTOGRAPHY = "photography", _("Clinical photography")
    MARKETING_PHOTOS = "marketing_photos", _("Use of photos for marketing")


class ConsentQuerySet(models.QuerySet):
    def in_force_on(self, moment):
        """Signed by then and not withdrawn by then."""
        return self.filter(signed_at__lte=moment).filter(
            Q(withdrawn_at__isnull=True) | Q(withdrawn_at__gt=moment)
        )


class Consent(models.Model):
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="consents", verbose_name=_("patient")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=ConsentKind.choices)
    form_version = models.CharField(
        _("form version"), max_length=20, help_text=_("As printed on the signed form.")
    )
    signed_at = models.DateTimeField(_("signed at"), default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawal_reason = models.CharField(_("reason for withdrawal"), max_length=200, blank=True)

    history = HistoricalRecords()
    objects = ConsentQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "-signed_at", "-id"]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=True) | Q(withdrawn_at__gte=models.F("signed_at")),
                name="consent_withdrawn_after_signed",
            ),
        ]
        indexes = [models.Index(fields=["patient", "kind"], name="consent_patient_kind_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.form_version})"

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def clean(self) -> None:
        if self.signed_at and self.signed_at > timezone.now():
            raise ValidationError({"signed_at": _("A consent cannot be signed in the future.")})
