"""Reads about patients, above all the answer to "may this patient be treated on this day with
these substances?". The rules are listed, with their reasons, in docs/safety-rules.md."""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import phonenumbers
from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.substances import SubstanceCategory

from .models import Consent, ConsentKind, Patient, ReminderChannel, Screening, name_key

# Screenings are dated by day, not hour: an answer given on day D about "the last 48 hours"
# still counts on D + 2, so no dose taken within 48 hours of treatment goes unseen.
NSAID_WINDOW = timedelta(days=2)
VACCINATION_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Finding:
    code: str
    message: str


@dataclass
class Treatability:
    on: date
    categories: frozenset[str]
    hard_stops: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    screening: Screening | None = None

    @property
    def may_treat(self) -> bool:
        return not self.hard_stops


def _end_of_day(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.max))


def _required_consents(categories: frozenset[str]) -> list[str]:
    kinds = []
    if categories - {SubstanceCategory.PRP, SubstanceCategory.CONSUMABLE} or not categories:
        kinds.append(ConsentKind.MESOTHERAPY)
    if SubstanceCategory.PRP in categories:
        kinds.append(ConsentKind.PRP)
    return kinds


def treatability(*, patient: Patient, categories: Iterable[str], on: date) -> Treatability:
    """Hard stops (treatment must not go ahead) and warnings (the practitioner must acknowledge
    them) for treating `patient` on `on` with substances of `categories`.

    Consents count when signed by the end of that day and not withdrawn by then. The screening
    used is the latest one answered on or before that day; answers about the last 48 hours or
    7 days count only while that window covers the day of treatment.
    """
    in_force = {
        consent.kind
        for consent in Consent.objects.filter(patient=patient).in_force_on(_end_of_day(on))
    }
    screening = (
        Screening.objects.filter(patient=patient, taken_on__lte=on)
        .order_by("-taken_on", "-recorded_at", "-id")
        .first()
    )
    return _evaluate(in_force=in_force, screening=screening, categories=categories, on=on)


def treatability_many(
    *,
    patients: Iterable[Patient],
    categories: Iterable[str] = (),
    on: date,
    categories_of: dict[int, Iterable[str]] | None = None,
) -> dict[int, Treatability]:
    """`treatability` for many patients at once (a day's list), in two queries whatever their
    number. `categories_of` gives a patient's own planned substances where they differ."""
    ids = {patient.pk for patient in patients}
    in_force: dict[int, set[str]] = {pk: set() for pk in ids}
    for patient_id, kind in (
        Consent.objects.filter(patient_id__in=ids)
        .in_force_on(_end_of_day(on))
        .values_list("patient_id", "kind")
    ):
        in_force[patient_id].add(kind)
    latest: dict[int, Screening] = {}
    for screening in Screening.objects.filter(patient_id__in=ids, taken_on__lte=on).order_by(
        "patient_id", "-taken_on", "-recorded_at", "-id"
    ):
        latest.setdefault(screening.patient_id, screening)
    return {
        pk: _evaluate(
            in_force=in_force[pk],
            screening=latest.get(pk),
            categories=(categories_of or {}).get(pk, categories),
            on=on,
        )
        for pk in ids
    }


def _evaluate(
    *, in_force: set[str], screening: Screening | None, categories: Iterable[str], on: date
) -> Treatability:
    categories = frozenset(categories)
    unknown = categories - set(SubstanceCategory.values)
    if unknown:
        raise ValueError(f"Unknown substance categories: {', '.join(sorted(unknown))}")
    result = Treatability(on=on, categories=categories)
    stop, warn = result.hard_stops.append, result.warnings.append
    for kind in _required_consents(categories):
        if kind not in in_force:
            stop(
                Finding(
                    f"consent_{kind}",
                    _("No consent in force for “%(kind)s”: record the signed form before treating.")
                    % {"kind": ConsentKind(kind).label},
                )
            )

    result.screening = screening
    if screening is None:
        stop(
            Finding(
                "no_screening", _("No screening on file: ask the contraindication questions first.")
            )
        )
        return result
    max_age = settings.PATIENTS_SCREENING_MAX_AGE_DAYS
    age = (on - screening.taken_on).days
    if age > max_age:
        stop(
            Finding(
                "stale_screening",
                _(
                    "The last screening is %(age)d days old (the limit is %(max)d): "
                    "ask the questions again."
                )
                % {"age": age, "max": max_age},
            )
        )

    uses_prp = SubstanceCategory.PRP in categories
    if screening.pregnant_or_breastfeeding:
        stop(Finding("pregnancy", _("Pregnant or breastfeeding: mesotherapy must not be done.")))
    if screening.active_infection_at_site:
        stop(
            Finding(
                "active_infection",
                _(
                    "Active infection or skin disease at the treatment site: postpone until "
                    "it has healed."
                ),
            )
        )
    if screening.bleeding_disorder:
        if uses_prp:
            stop(
                Finding(
                    "prp_bleeding_disorder",
                    _("Bleeding or platelet disorder: PRP must not be used."),
                )
            )
        else:
            warn(
                Finding(
                    "bleeding_disorder",
                    _(
                        "Bleeding or platelet disorder: expect bruising; use the finest "
                        "needle and compress."
                    ),
                )
            )
    if screening.anaemia:
        if uses_prp:
            stop(Finding("prp_anaemia", _("Anaemia: PRP must not be used.")))
        else:
            warn(Finding("anaemia", _("Anaemia: check the patient is fit for treatment today.")))

    allergy_stops = [
        (
            screening.allergy_hyaluronic_acid,
            {SubstanceCategory.HYALURONIC_ACID, SubstanceCategory.VITAMIN_COCKTAIL},
            "allergy_hyaluronic_acid",
            _("Known allergy to hyaluronic acid, which is in the planned products."),
        ),
        (
            screening.allergy_vitamins,
            {SubstanceCategory.VITAMIN_COCKTAIL},
            "allergy_vitamins",
            _("Known allergy to vitamin components, which are in the planned cocktail."),
        ),
        (
            screening.allergy_anaesthetic,
            {SubstanceCategory.ANAESTHETIC},
            "allergy_anaesthetic",
            _("Known allergy to lidocaine or anaesthetic cream, which is planned."),
        ),
    ]
    other_allergies = []
    for allergic, substances, code, message in allergy_stops:
        if allergic and categories & substances:
            stop(Finding(code, message))
        elif allergic:
            other_allergies.append(code)
    if screening.allergies.strip() or other_allergies:
        warn(
            Finding(
                "allergy",
                _("Allergies on file: %(allergies)s. Check them against today's products.")
                % {"allergies": _allergy_summary(screening)},
            )
        )

    recent = on - screening.taken_on
    if recent > NSAID_WINDOW:
        warn(
            Finding(
                "ask_day_of_questions",
                _(
                    "NSAIDs in the last 48 hours and vaccination in the last 7 days were last "
                    "asked on %(day)s: ask again before treating."
                )
                % {"day": screening.taken_on.strftime("%d/%m/%Y")},
            )
        )
    if screening.anticoagulants:
        warn(
            Finding(
                "anticoagulants",
                _(
                    "Takes anticoagulant or antiplatelet drugs: higher risk of bruising and "
                    "bleeding."
                ),
            )
        )
    if screening.nsaids_last_48h and recent <= NSAID_WINDOW:
        warn(
            Finding(
                "nsaids",
                _("Aspirin or other NSAIDs in the last 48 hours: higher risk of bruising."),
            )
        )
    if screening.vaccination_last_7_days and recent <= VACCINATION_WINDOW:
        warn(
            Finding("recent_vaccination", _("Vaccinated in the last 7 days: consider postponing."))
        )
    if screening.autoimmune_disease:
        warn(Finding("autoimmune", _("Autoimmune disease: check it is stable and not flaring.")))
    if screening.keloid_tendency:
        warn(Finding("keloid", _("Keloid tendency: risk of scarring at puncture sites.")))
    if screening.cancer_under_treatment:
        warn(
            Finding(
                "cancer", _("Cancer under treatment: treat only with the oncologist's clearance.")
            )
        )
    if screening.immunosuppression:
        warn(
            Finding(
                "immunosuppression",
                _("Immunosuppressed: higher risk of infection; strict asepsis."),
            )
        )
    if screening.diabetes:
        warn(Finding("diabetes", _("Diabetes: slower healing and higher risk of infection.")))
    return result


def _allergy_summary(screening: Screening) -> str:
    named = [
        str(Screening._meta.get_field(name).verbose_name)
        for name in ("allergy_hyaluronic_acid", "allergy_vitamins", "allergy_anaesthetic")
        if getattr(screening, name)
    ]
    if screening.allergies.strip():
        named.append(screening.allergies.strip())
    return "; ".join(named)


def last_answers(patient: Patient) -> dict:
    """The answers of the patient's latest screening, to start a new one from."""
    latest = (
        Screening.objects.filter(patient=patient)
        .order_by("-taken_on", "-recorded_at", "-id")
        .values(*Screening.ANSWER_FIELDS)
        .first()
    )
    return latest or {}


_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y")


def _as_date(term: str) -> date | None:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(term, fmt).date()
        except ValueError:
            continue
    return None


def _as_phone(term: str) -> str | None:
    if not re.fullmatch(r"[+\d][\d\s().-]{5,}", term):
        return None
    try:
        number = phonenumbers.parse(term, settings.PHONENUMBER_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def patient_search_filter(query: str) -> Q:
    """Understands a date of birth (31/12/1980 or 1980-12-31), a phone number in any usual
    format, an email address, or names (every word must be part of the name, ignoring case
    and accents)."""
    query = query.strip()
    if not query:
        return Q()
    if (born := _as_date(query)) is not None:
        return Q(date_of_birth=born)
    if (phone := _as_phone(query)) is not None:
        return Q(mobile_phone=phone)
    if "@" in query:
        return Q(email__iexact=query)
    condition = Q()
    for word in name_key(query).split():
        condition &= Q(name_key__contains=word)
    return condition


# A name search with at most this many matches is answered ids first (the trigram index finds
# them, then only they are sorted by name: a few milliseconds for a few thousand); with more,
# the list's name order finds its page soonest. One plan for both went wrong on a million
# patients: walking the name-order index and filtering, a late name took seconds.
NAME_MATCHES_SORTED_APART = 5000


def patients_matching(query: str, queryset: QuerySet[Patient] | None = None) -> QuerySet[Patient]:
    """`queryset` (all patients by default) narrowed to what `query` finds (see
    patient_search_filter), in a way the database answers fast at any size."""
    queryset = Patient.objects.all() if queryset is None else queryset
    condition = patient_search_filter(query)
    if not query.strip() or _as_date(query.strip()) or _as_phone(query.strip()) or "@" in query:
        return queryset.filter(condition)
    ids = list(
        Patient.objects.filter(condition)
        .order_by()
        .values_list("pk", flat=True)[: NAME_MATCHES_SORTED_APART + 1]
    )
    if len(ids) <= NAME_MATCHES_SORTED_APART:
        return queryset.filter(pk__in=ids)
    return queryset.filter(condition)


def patients_with_safety_flags(queryset: QuerySet[Patient] | None = None) -> QuerySet[Patient]:
    """Patients with what a list needs to flag them: the date of the last screening and the
    consents, fetched in one query for the whole page."""
    queryset = Patient.objects.all() if queryset is None else queryset
    # A subquery per row, not an aggregate over a join: the list reads one page of patients
    # in name order from its index, where a GROUP BY would first aggregate every patient.
    last_screening = Subquery(
        Screening.objects.filter(patient=OuterRef("pk"))
        .order_by("-taken_on")
        .values("taken_on")[:1]
    )
    return queryset.annotate(last_screening_on=last_screening).prefetch_related(
        Prefetch("consents", queryset=Consent.objects.order_by("kind", "-signed_at"))
    )


CONSENT_SHORT_LABELS = {
    ConsentKind.MESOTHERAPY: gettext_lazy("Meso"),
    ConsentKind.PRP: gettext_lazy("PRP"),
    ConsentKind.PHOTOGRAPHY: gettext_lazy("Photos"),
    ConsentKind.MARKETING_PHOTOS: gettext_lazy("Marketing"),
}


@dataclass(frozen=True)
class ConsentState:
    kind: str
    label: str
    state: str  # "in_force", "withdrawn" or "missing"

    @property
    def short_label(self) -> str:
        return CONSENT_SHORT_LABELS[self.kind]

    @property
    def mark(self) -> str:
        return {"in_force": "✔", "withdrawn": "✖"}.get(self.state, "○")

    @property
    def state_label(self) -> str:
        return {"in_force": _("In force"), "withdrawn": _("Withdrawn")}.get(
            self.state, _("Not signed")
        )


def consent_states(patient: Patient, *, at: datetime | None = None) -> list[ConsentState]:
    """The state of each consent kind, from the patient's (prefetched) consents."""
    at = at or timezone.now()
    states = []
    consents = list(patient.consents.all())
    for kind in ConsentKind:
        of_kind = [c for c in consents if c.kind == kind and c.signed_at <= at]
        if any(c.withdrawn_at is None or c.withdrawn_at > at for c in of_kind):
            state = "in_force"
        elif of_kind:
            state = "withdrawn"
        else:
            state = "missing"
        states.append(ConsentState(kind=kind.value, label=kind.label, state=state))
    return states


@dataclass(frozen=True)
class RecordReadiness:
    patients: int
    without_treatment_consent: int
    with_withdrawn_consent: int
    without_current_screening: int
    opted_out_of_reminders: int
    missing_reminder_contact: int


def has_consent_in_force(*, kind: str, on: date) -> Exists:
    """For filtering patients: a consent of `kind` is in force at the end of `on`."""
    return Exists(
        Consent.objects.filter(patient=OuterRef("pk"), kind=kind).in_force_on(_end_of_day(on))
    )


def has_current_screening(*, on: date) -> Exists:
    """For filtering patients: a screening young enough to clear treatment on `on`."""
    oldest = on - timedelta(days=settings.PATIENTS_SCREENING_MAX_AGE_DAYS)
    return Exists(
        Screening.objects.filter(patient=OuterRef("pk"), taken_on__gte=oldest, taken_on__lte=on)
    )


def record_readiness(*, on: date) -> RecordReadiness:
    """How many patient records are not ready for treatment or reminders, in one query."""
    consent_in_force = has_consent_in_force(kind=ConsentKind.MESOTHERAPY, on=on)
    withdrawn = Exists(
        Consent.objects.filter(patient=OuterRef("pk"), withdrawn_at__lte=_end_of_day(on))
    )
    current_screening = has_current_screening(on=on)
    missing_contact = Q(reminders_opt_out=False) & (
        Q(preferred_channel=ReminderChannel.EMAIL, email="")
        | Q(preferred_channel=ReminderChannel.SMS, mobile_phone="")
    )
    counts = Patient.objects.aggregate(
        patients=Count("pk"),
        without_treatment_consent=Count("pk", filter=~consent_in_force),
        with_withdrawn_consent=Count("pk", filter=withdrawn),
        without_current_screening=Count("pk", filter=~current_screening),
        opted_out_of_reminders=Count("pk", filter=Q(reminders_opt_out=True)),
        missing_reminder_contact=Count("pk", filter=missing_contact),
    )
    return RecordReadiness(**counts)


MESOTHERAPY_SUBSTANCES = frozenset(
    {
        SubstanceCategory.HYALURONIC_ACID,
        SubstanceCategory.VITAMIN_COCKTAIL,
        SubstanceCategory.ANAESTHETIC,
    }
)


def safety_overview(*, patient: Patient, on: date) -> list[tuple[str, Treatability]]:
    """The two questions a patient's page answers before a course is planned: may they have
    mesotherapy with the usual substances, and may they have PRP?"""
    return [
        (
            _("Mesotherapy (HA, vitamins, anaesthetic cream)"),
            treatability(patient=patient, categories=MESOTHERAPY_SUBSTANCES, on=on),
        ),
        (_("PRP"), treatability(patient=patient, categories=[SubstanceCategory.PRP], on=on)),
    ]
