from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from patients.models import ReminderChannel


class Indication(models.TextChoices):
    FACIAL_REJUVENATION = "facial_rejuvenation", _("Facial rejuvenation")
    HYDRATION = "hydration", _("Hydration")
    ACNE_SCARS = "acne_scars", _("Acne scars")
    HAIR_LOSS = "hair_loss", _("Hair loss")
    BODY_CONTOURING = "body_contouring", _("Body contouring and cellulite")
    NECK_DECOLLETE = "neck_decollete", _("Neck and décolleté")
    HANDS = "hands", _("Hands")


class Area(models.TextChoices):
    FOREHEAD = "forehead", _("Forehead")
    PERIORBITAL = "periorbital", _("Periorbital")
    CHEEKS = "cheeks", _("Cheeks")
    PERIORAL = "perioral", _("Perioral")
    FULL_FACE = "full_face", _("Full face")
    NECK = "neck", _("Neck")
    DECOLLETE = "decollete", _("Décolleté")
    HANDS = "hands", _("Hands")
    SCALP = "scalp", _("Scalp")
    ABDOMEN = "abdomen", _("Abdomen")
    FLANKS = "flanks", _("Flanks")
    THIGHS = "thighs", _("Thighs")
    BUTTOCKS = "buttocks", _("Buttocks")
    ARMS = "arms", _("Arms")


class Technique(models.TextChoices):
    NAPPAGE = "nappage", _("Nappage")
    PAPULES = "papules", _("Papules")
    POINT_BY_POINT = "point_by_point", _("Point by point")
    LINEAR_RETROGRADE = "linear_retrograde", _("Linear retrograde")
    INJECTOR = "injector", _("Injector (mesogun)")


class Protocol(models.Model):
    """A course template staff can edit: how many sessions, how far apart, with what."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    indication = models.CharField(_("indication"), max_length=24, choices=Indication.choices)
    sessions = models.PositiveSmallIntegerField(
        _("sessions"), validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    interval_min_days = models.PositiveSmallIntegerField(_("at least, days apart"))
    interval_max_days = models.PositiveSmallIntegerField(_("at most, days apart"))
    maintenance_interval_days = models.PositiveSmallIntegerField(
        _("maintenance every, days"), null=True, blank=True
    )
    product_categories = models.JSONField(_("planned product categories"), default=list, blank=True)
    areas = models.JSONField(_("planned areas"), default=list, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    active = models.BooleanField(_("active"), default=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        verbose_name = _("protocol")
        verbose_name_plural = _("protocols")
        constraints = [
            models.CheckConstraint(condition=Q(sessions__gte=1), name="protocol_sessions"),
            models.CheckConstraint(
                condition=Q(interval_min_days__gte=1)
                & Q(interval_max_days__gte=F("interval_min_days")),
                name="protocol_interval_window",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Room(models.Model):
    name = models.CharField(_("name"), max_length=60, unique=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("room")
        verbose_name_plural = _("rooms")

    def __str__(self) -> str:
        return self.name


class CourseStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    ACTIVE = "active", _("Active")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


class Course(models.Model):
    """One patient's series of sessions, planned from a protocol and then their own."""

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="courses",
        verbose_name=_("patient"),
    )
    protocol = models.ForeignKey(
        Protocol, on_delete=models.PROTECT, related_name="courses", verbose_name=_("protocol")
    )
    lead_practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("lead practitioner"),
    )
    indication = models.CharField(_("indication"), max_length=24, choices=Indication.choices)
    planned_sessions = models.PositiveSmallIntegerField(_("planned sessions"))
    interval_min_days = models.PositiveSmallIntegerField(_("at least, days apart"))
    interval_max_days = models.PositiveSmallIntegerField(_("at most, days apart"))
    start_date = models.DateField(_("start date"))
    status = models.CharField(
        _("status"), max_length=12, choices=CourseStatus.choices, default=CourseStatus.PLANNED
    )
    status_reason = models.CharField(_("reason"), max_length=200, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-start_date", "-id"]
        verbose_name = _("course")
        verbose_name_plural = _("courses")
        constraints = [
            models.CheckConstraint(
                condition=Q(interval_max_days__gte=F("interval_min_days")),
                name="course_interval_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_indication_display()} · {self.patient}"


class SessionStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    CONFIRMED = "confirmed", _("Confirmed")
    CHECKED_IN = "checked_in", _("Checked in")
    COMPLETED = "completed", _("Completed")
    CANCELLED_BY_PATIENT = "cancelled_patient", _("Cancelled by the patient")
    CANCELLED_BY_CLINIC = "cancelled_clinic", _("Cancelled by the clinic")
    NO_SHOW = "no_show", _("No-show")


# The statuses a session may move to from each status; anything else is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    SessionStatus.SCHEDULED: frozenset(
        {
            SessionStatus.CONFIRMED,
            SessionStatus.CHECKED_IN,
            SessionStatus.CANCELLED_BY_PATIENT,
            SessionStatus.CANCELLED_BY_CLINIC,
            SessionStatus.NO_SHOW,
        }
    ),
    SessionStatus.CONFIRMED: frozenset(
        {
            SessionStatus.CHECKED_IN,
            SessionStatus.CANCELLED_BY_PATIENT,
            SessionStatus.CANCELLED_BY_CLINIC,
            SessionStatus.NO_SHOW,
        }
    ),
    SessionStatus.CHECKED_IN: frozenset(
        {
            SessionStatus.COMPLETED,
            SessionStatus.CANCELLED_BY_PATIENT,
            SessionStatus.CANCELLED_BY_CLINIC,
        }
    ),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.CANCELLED_BY_PATIENT: frozenset(),
    SessionStatus.CANCELLED_BY_CLINIC: frozenset(),
    SessionStatus.NO_SHOW: frozenset(),
}
# A session in one of these holds its practitioner's and room's time.
OCCUPYING = frozenset(
    {
        SessionStatus.SCHEDULED,
        SessionStatus.CONFIRMED,
        SessionStatus.CHECKED_IN,
        SessionStatus.COMPLETED,
    }
)


class SessionQuerySet(models.QuerySet):
    def occupying(self):
        return self.filter(status__in=OCCUPYING)

    def overlapping(self, start, end):
        return self.filter(scheduled_start__lt=end, scheduled_end__gt=start)

    def for_practitioner(self, user):
        return self.filter(practitioner=user)


class Session(models.Model):
    course = models.ForeignKey(
        Course, on_delete=models.PROTECT, related_name="sessions", verbose_name=_("course")
    )
    number = models.PositiveSmallIntegerField(_("number in the course"))
    scheduled_start = models.DateTimeField(_("starts"))
    scheduled_end = models.DateTimeField(_("ends"))
    practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="sessions",
        verbose_name=_("practitioner"),
    )
    room = models.ForeignKey(
        Room, on_delete=models.PROTECT, related_name="sessions", verbose_name=_("room")
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=SessionStatus.choices,
        default=SessionStatus.SCHEDULED,
    )
    status_reason = models.CharField(_("reason"), max_length=200, blank=True)

    # The clinical record, written when the session is completed.
    screening = models.ForeignKey(
        "patients.Screening",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("day-of screening"),
    )
    areas = models.JSONField(_("areas"), default=list, blank=True)
    technique = models.CharField(
        _("technique"), max_length=20, choices=Technique.choices, blank=True
    )
    needle_gauge = models.PositiveSmallIntegerField(
        _("needle gauge (G)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(18), MaxValueValidator(34)],
    )
    needle_length_mm = models.DecimalField(
        _("needle length (mm)"), max_digits=4, decimal_places=1, null=True, blank=True
    )
    depth_mm = models.DecimalField(
        _("depth (mm)"), max_digits=4, decimal_places=1, null=True, blank=True
    )
    anaesthetic_cream = models.BooleanField(_("anaesthetic cream"), default=False)
    anaesthetic_minutes = models.PositiveSmallIntegerField(
        _("cream applied, minutes"), null=True, blank=True
    )
    prp_blood_ml = models.DecimalField(
        _("blood drawn (ml)"), max_digits=5, decimal_places=1, null=True, blank=True
    )
    prp_centrifuge_rpm = models.PositiveIntegerField(
        _("centrifuge speed (rpm)"), null=True, blank=True
    )
    prp_centrifuge_minutes = models.PositiveSmallIntegerField(
        _("centrifuge, minutes"), null=True, blank=True
    )
    prp_minutes_to_injection = models.PositiveSmallIntegerField(
        _("minutes from draw to injection"), null=True, blank=True
    )
    erythema = models.BooleanField(_("erythema"), default=False)
    oedema = models.BooleanField(_("oedema"), default=False)
    bruising = models.BooleanField(_("bruising"), default=False)
    persistent_papules = models.BooleanField(_("persistent papules"), default=False)
    pain_score = models.PositiveSmallIntegerField(
        _("pain (0 to 10)"), null=True, blank=True, validators=[MaxValueValidator(10)]
    )
    vasovagal_reaction = models.BooleanField(_("vasovagal reaction"), default=False)
    infection_signs = models.BooleanField(_("signs of infection"), default=False)
    adverse_other = models.CharField(_("other adverse event"), max_length=200, blank=True)
    aftercare_given = models.BooleanField(_("aftercare given"), default=False)
    photos_taken = models.BooleanField(_("photos taken"), default=False)
    clinical_notes = models.TextField(_("notes"), blank=True)
    acknowledged_warnings = models.JSONField(_("warnings acknowledged"), default=list, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("signed by"),
    )
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)

    history = HistoricalRecords()
    objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ["scheduled_start", "id"]
        verbose_name = _("session")
        verbose_name_plural = _("sessions")
        constraints = [
            models.CheckConstraint(
                condition=Q(scheduled_end__gt=F("scheduled_start")), name="session_ends_after_start"
            ),
            models.UniqueConstraint(
                fields=["course", "number"],
                condition=Q(status__in=sorted(OCCUPYING)),
                name="session_number_in_course",
            ),
            models.CheckConstraint(
                condition=Q(pain_score__isnull=True) | Q(pain_score__lte=10),
                name="session_pain_score_range",
            ),
            models.CheckConstraint(
                condition=~Q(status="completed")
                | (Q(signed_by__isnull=False) & Q(signed_at__isnull=False)),
                name="session_completed_is_signed",
            ),
        ]
        indexes = [
            models.Index(fields=["practitioner", "scheduled_start"], name="session_day_idx"),
            models.Index(fields=["room", "scheduled_start"], name="session_room_idx"),
        ]

    def __str__(self) -> str:
        return _("Session %(number)d of %(total)d") % {
            "number": self.number,
            "total": self.course.planned_sessions,
        }

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None


class SessionProduct(models.Model):
    """What was injected or applied, from which lot, paid for by one stock movement. A line is
    never deleted: an amendment voids it (its movement reversed) and adds the corrected one."""

    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, related_name="products", verbose_name=_("session")
    )
    product = models.ForeignKey(
        "inventory.Product",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("product"),
    )
    lot = models.ForeignKey(
        "inventory.Lot",
        on_delete=models.PROTECT,
        related_name="session_lines",
        verbose_name=_("lot"),
    )
    quantity = models.DecimalField(_("quantity (stock units)"), max_digits=12, decimal_places=3)
    volume_ml = models.DecimalField(
        _("volume injected (ml)"), max_digits=6, decimal_places=2, null=True, blank=True
    )
    area = models.CharField(_("area"), max_length=20, choices=Area.choices, blank=True)
    movement = models.OneToOneField(
        "inventory.StockMovement",
        on_delete=models.PROTECT,
        related_name="session_line",
        verbose_name=_("stock movement"),
    )
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    void_reason = models.CharField(_("reason voided"), max_length=200, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]
        verbose_name = _("product used")
        verbose_name_plural = _("products used")
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=Decimal(0)), name="session_product_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} · {self.lot.lot_number}: {self.quantity.normalize():f}"


class ReminderStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    SKIPPED = "skipped", _("Skipped")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


class ReminderQuerySet(models.QuerySet):
    def live(self):
        """Reminders that may still go out."""
        return self.filter(status__in=[ReminderStatus.PENDING, ReminderStatus.SENDING])


class Reminder(models.Model):
    """One message to a patient before a session. The row is the truth: the dispatcher hands due
    rows to the workers, a worker claims one (pending to sending) before it sends, and the
    reminder's id is the idempotency key the email or SMS provider sees."""

    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, related_name="reminders", verbose_name=_("session")
    )
    channel = models.CharField(_("channel"), max_length=8, choices=ReminderChannel.choices)
    before = models.DurationField(_("before the session"))
    session_start = models.DateTimeField(
        _("for the session at"), help_text=_("When the session started as this was planned.")
    )
    due_at = models.DateTimeField(_("due at"))
    status = models.CharField(
        _("status"), max_length=10, choices=ReminderStatus.choices, default=ReminderStatus.PENDING
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    enqueued_at = models.DateTimeField(_("handed to a worker at"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    recipient = models.CharField(_("sent to"), max_length=254, blank=True)
    provider_id = models.CharField(_("provider's id"), max_length=200, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("planned at"), auto_now_add=True)

    objects = ReminderQuerySet.as_manager()

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ReminderStatus.values), name="reminder_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="reminder_sent_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(claimed_at__isnull=False),
                name="reminder_sending_is_claimed",
            ),
        ]
        indexes = [
            # The dispatcher's scan and the sweeper's: small partial indexes over the live rows.
            models.Index(fields=["due_at"], condition=Q(status="pending"), name="reminder_due_idx"),
            models.Index(
                fields=["claimed_at"], condition=Q(status="sending"), name="reminder_claim_idx"
            ),
        ]

    def __str__(self) -> str:
        return _("%(channel)s reminder %(id)s") % {
            "channel": self.get_channel_display(),
            "id": self.pk,
        }

    @property
    def message_id(self) -> str:
        """The email Message-ID: the same for every attempt, so a resend is recognisable."""
        return f"<reminder-{self.pk}@{settings.CLINIC_MAIL_DOMAIN}>"

    @property
    def reference(self) -> str:
        return f"reminder-{self.pk}"
