from datetime import date
from decimal import Decimal

from biip import ParseError
from biip.gtin import Gtin
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Replace, Upper
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from clinic.substances import SubstanceCategory

QUANTITY = {"max_digits": 12, "decimal_places": 3}
MONEY = {"max_digits": 10, "decimal_places": 2}


def lot_number_key(lot_number) -> Upper:
    """A lot number as printed on the box, whatever its capitals or spaces (`lot_number`: a
    field's name, or an expression)."""
    return Upper(Replace(lot_number, Value(" "), Value("")))


def lot_number_printed(lot_number: str) -> str:
    """lot_number_key in Python, for lot numbers not yet in the database (a file's rows). The
    database has the last word: its UPPER may differ for a few letters outside ASCII."""
    return lot_number.replace(" ", "").upper()


class StockUnit(models.TextChoices):
    VIAL = "vial", _("vial")
    AMPOULE = "ampoule", _("ampoule")
    SYRINGE = "syringe", _("syringe")
    KIT = "kit", _("kit")
    TUBE = "tube", _("tube")
    PIECE = "piece", _("piece")


class ContentMeasure(models.TextChoices):
    ML = "ml", _("ml")
    G = "g", _("g")
    MG = "mg", _("mg")
    PIECES = "pieces", _("pieces")


class Storage(models.TextChoices):
    ROOM = "room", _("Room temperature")
    FRIDGE = "fridge", _("Refrigerated, 2 to 8 °C")


class Supplier(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    contact_name = models.CharField(_("contact"), max_length=200, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("supplier")
        verbose_name_plural = _("suppliers")

    def __str__(self) -> str:
        return self.name


def normalise_gtin(value: str) -> str:
    """The GTIN as the 14 digits a GS1 code carries, or the input unchanged if it is not one
    (the field's validator then says why)."""
    try:
        return Gtin.parse(value.strip()).as_gtin_14()
    except ParseError:
        return value


def validate_gtin(value: str) -> None:
    try:
        Gtin.parse(value)
    except ParseError as error:
        raise ValidationError(_("Not a valid GTIN: %(error)s") % {"error": error}) from error


class Product(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    manufacturer = models.CharField(_("manufacturer"), max_length=200, blank=True)
    category = models.CharField(_("category"), max_length=20, choices=SubstanceCategory.choices)
    stock_unit = models.CharField(_("stock unit"), max_length=10, choices=StockUnit.choices)
    content_per_unit = models.DecimalField(
        _("content per unit"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("For example 5 for a 5 ml vial."),
        **QUANTITY,
    )
    content_measure = models.CharField(
        _("measure"), max_length=8, choices=ContentMeasure.choices, blank=True
    )
    single_use = models.BooleanField(_("single use"), default=False)
    storage = models.CharField(
        _("storage"), max_length=8, choices=Storage.choices, default=Storage.ROOM
    )
    gtin = models.CharField(
        _("GTIN"),
        max_length=14,
        blank=True,
        validators=[validate_gtin],
        help_text=_("The barcode number on the box (GTIN-8, 12, 13 or 14)."),
    )
    reorder_level = models.DecimalField(
        _("reorder level"),
        default=Decimal(0),
        validators=[MinValueValidator(0)],
        help_text=_("Alert when the usable quantity falls to this many stock units."),
        **QUANTITY,
    )
    default_supplier = models.ForeignKey(
        Supplier,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("default supplier"),
    )
    active = models.BooleanField(_("active"), default=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [
            models.UniqueConstraint(
                fields=["gtin"], condition=~Q(gtin=""), name="product_gtin_unique"
            ),
            models.CheckConstraint(
                condition=Q(reorder_level__gte=0), name="product_reorder_level_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.content_per_unit is not None and not self.content_measure:
            raise ValidationError({"content_measure": _("Say what the content is measured in.")})
        if self.gtin:
            self.gtin = normalise_gtin(self.gtin)


class LotStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    QUARANTINED = "quarantined", _("Quarantined")
    RECALLED = "recalled", _("Recalled")


def usable(status: str, expiry_date: date, day: date) -> bool:
    """Whether a lot in stock may be given on `day`: available, and not expired that day."""
    return status == LotStatus.AVAILABLE and expiry_date >= day


def usable_condition(day: date, via: str = "") -> Q:
    """usable() as a filter, on lots or (`via`, say "shelf__") on lots joined by that name."""
    return Q(**{f"{via}status": LotStatus.AVAILABLE, f"{via}expiry_date__gte": day})


def on_shelf_condition(via: str = "") -> Q:
    """Lots with stock: the condition of the partial index lot_on_shelf_idx."""
    return Q(**{f"{via}quantity_on_hand__gt": 0})


class LotQuerySet(models.QuerySet):
    def usable_on(self, day: date):
        """Lots a patient may receive on `day`: available, not expired that day, in stock."""
        return self.filter(usable_condition(day), on_shelf_condition())

    def on_shelf(self):
        return self.filter(on_shelf_condition())


class Lot(models.Model):
    """A batch of one product. Usable up to and including its expiry date."""

    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="lots", verbose_name=_("product")
    )
    lot_number = models.CharField(_("lot number"), max_length=20)
    expiry_date = models.DateField(_("expiry date"))
    unit_cost = models.DecimalField(_("unit cost"), validators=[MinValueValidator(0)], **MONEY)
    supplier = models.ForeignKey(
        Supplier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="lots",
        verbose_name=_("supplier"),
    )
    received_on = models.DateField(_("received on"))
    status = models.CharField(
        _("status"), max_length=12, choices=LotStatus.choices, default=LotStatus.AVAILABLE
    )
    status_reason = models.CharField(_("reason for the status"), max_length=200, blank=True)
    quantity_on_hand = models.DecimalField(
        _("on hand"), default=Decimal(0), editable=False, **QUANTITY
    )

    history = HistoricalRecords(excluded_fields=["quantity_on_hand"])
    objects = LotQuerySet.as_manager()

    class Meta:
        ordering = ["product__name", "expiry_date", "id"]
        verbose_name = _("lot")
        verbose_name_plural = _("lots")
        constraints = [
            models.UniqueConstraint(
                fields=["product", "lot_number"], name="lot_number_per_product"
            ),
            # "ab 123" is lot AB123 typed another way, not another lot: a twin would split a
            # lot's stock and its patients in two, and a recall would miss half.
            models.UniqueConstraint(
                "product",
                lot_number_key("lot_number"),
                name="lot_number_per_product_as_printed",
                violation_error_message=_(
                    "This product has a lot with this number written another way (in other "
                    "capitals or spaces)."
                ),
            ),
            models.CheckConstraint(
                condition=Q(quantity_on_hand__gte=0), name="lot_quantity_not_negative"
            ),
            models.CheckConstraint(condition=Q(unit_cost__gte=0), name="lot_cost_not_negative"),
        ]
        indexes = [
            models.Index(fields=["product", "expiry_date", "id"], name="lot_fefo_idx"),
            models.Index(fields=["expiry_date"], name="lot_expiry_idx"),
            # The lots still on the shelf: a few hundred, where the table keeps every lot ever
            # received. The snapshot reports (on hand, low stock, expiring, valuation) and the
            # digest read these alone, so their cost follows the stock, not the years of lots.
            models.Index(
                fields=["product", "expiry_date", "id"],
                condition=on_shelf_condition(),
                name="lot_on_shelf_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} · {self.lot_number} ({self.expiry_date:%d/%m/%Y})"

    def is_usable_on(self, day: date) -> bool:
        return usable(self.status, self.expiry_date, day) and self.quantity_on_hand > 0


class MovementKind(models.TextChoices):
    RECEIPT = "receipt", _("Receipt")
    CONSUMPTION = "consumption", _("Consumption")
    WASTE = "waste", _("Waste")
    ADJUSTMENT = "adjustment", _("Adjustment")
    COUNT_CORRECTION = "count", _("Count correction")
    RETURN = "return", _("Return to supplier")


class WasteReason(models.TextChoices):
    EXPIRED = "expired", _("Expired")
    DAMAGED = "damaged", _("Damaged")
    OPENED_UNUSED = "opened_unused", _("Opened and not used")
    COLD_CHAIN = "cold_chain", _("Cold chain broken")
    RECALLED = "recalled", _("Recalled")


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("The stock ledger is append-only: post a correcting movement instead.")

    def delete(self):
        raise TypeError("The stock ledger is append-only: post a correcting movement instead.")


class StockMovement(models.Model):
    """One line of the ledger. Never edited or deleted: a correction is a new movement. The
    services keep `Lot.quantity_on_hand` equal to the sum of a lot's movements, in the same
    transaction, and keep the daily rollup in step."""

    lot = models.ForeignKey(
        Lot, on_delete=models.PROTECT, related_name="movements", verbose_name=_("lot")
    )
    kind = models.CharField(_("kind"), max_length=12, choices=MovementKind.choices)
    quantity = models.DecimalField(
        _("quantity"), help_text=_("Stock units; negative when stock leaves."), **QUANTITY
    )
    unit_cost = models.DecimalField(
        _("unit cost"),
        help_text=_("The lot's cost per unit when the movement was posted."),
        **MONEY,
    )
    occurred_at = models.DateTimeField(_("when"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("by"),
    )
    waste_reason = models.CharField(
        _("waste reason"), max_length=16, choices=WasteReason.choices, blank=True
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    reference = models.CharField(
        _("reference"),
        max_length=100,
        blank=True,
        help_text=_("Delivery note, session, count sheet…"),
    )
    reverses = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversed_by",
        verbose_name=_("reverses"),
    )

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        constraints = [
            models.CheckConstraint(condition=~Q(quantity=0), name="movement_not_zero"),
            models.CheckConstraint(
                condition=~Q(kind="receipt") | Q(quantity__gt=0), name="receipt_adds"
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["waste", "return"]) | Q(quantity__lt=0),
                name="waste_and_return_remove",
            ),
            models.CheckConstraint(
                condition=~Q(kind="consumption") | Q(quantity__lt=0) | Q(reverses__isnull=False),
                name="consumption_removes_unless_reversal",
            ),
            models.CheckConstraint(
                condition=Q(kind="waste", waste_reason__gt="")
                | (~Q(kind="waste") & Q(waste_reason="")),
                name="waste_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["lot", "occurred_at"], name="movement_lot_time_idx"),
            models.Index(fields=["occurred_at"], name="movement_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.quantity:+} · {self.lot.lot_number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("The stock ledger is append-only: post a correcting movement instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The stock ledger is append-only: post a correcting movement instead.")


class StockDay(models.Model):
    """The ledger summed per day, lot, kind, acting user and waste reason (quantity, and value at
    the cost of the day), kept by the services in the same transaction as each movement, under
    the lot's lock. Reports over years of movements read these rows instead of every movement;
    `verify_stock_ledger` checks them against the ledger."""

    day = models.DateField()
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    # The lot's product, copied so that reports group by product without joining the lots.
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=MovementKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    waste_reason = models.CharField(max_length=16, choices=WasteReason.choices, blank=True)
    quantity = models.DecimalField(**QUANTITY)
    value = models.DecimalField(max_digits=16, decimal_places=5)
    movements = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lot", "day", "kind", "actor", "waste_reason"], name="stock_day_unique"
            )
        ]
        indexes = [models.Index(fields=["day", "kind"], name="stock_day_day_kind_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.quantity}"


class StockMonth(models.Model):
    """The ledger summed per month (its first day), product, kind, acting user and waste
    reason. Reports over long periods read whole months here and only the partial months at
    the edges from StockDay: a year of consumption is a few thousand rows, not a million.
    Written by an atomic upsert in the same transaction as each movement."""

    month = models.DateField()
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=MovementKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    waste_reason = models.CharField(max_length=16, choices=WasteReason.choices, blank=True)
    quantity = models.DecimalField(**QUANTITY)
    value = models.DecimalField(max_digits=16, decimal_places=5)
    movements = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["month", "product", "kind", "actor", "waste_reason"],
                name="stock_month_unique",
            )
        ]
        indexes = [models.Index(fields=["kind", "month"], name="stock_month_kind_idx")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.kind} {self.quantity}"


class StockDigest(models.Model):
    """One row per day the managers' stock digest went out, so it goes out once a day."""

    day = models.DateField(unique=True)
    sent_at = models.DateTimeField(auto_now_add=True)
    recipients = models.PositiveIntegerField()

    class Meta:
        verbose_name = _("stock digest")

    def __str__(self) -> str:
        return str(self.day)
