"""Every change of stock. The only code that writes StockMovement, Lot.quantity_on_hand and the
daily rollup. Each function is atomic, refuses bad input with a message a manager can act on,
and locks the lots it changes (several lots always in (expiry date, id) order).

The treatments app consumes stock with `stock_consume` (first expiry first out) or
`stock_consume_from_lot` (a lot the practitioner chose), and corrects an amended session with
`movement_reverse`. docs/inventory.md describes the interface."""

from collections.abc import Iterable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Value
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from .exceptions import InsufficientStock, LotNotUsable, _number

__all__ = ["InsufficientStock", "LotNotUsable"]
from .models import (
    MONEY,
    QUANTITY,
    Lot,
    LotStatus,
    MovementKind,
    Product,
    StockDay,
    StockMonth,
    StockMovement,
    Supplier,
    WasteReason,
    lot_number_key,
)

QUANTUM = Decimal("0.001")
CENT = Decimal("0.01")
# What the columns hold (models.QUANTITY and models.MONEY): larger is refused as input.
MAX_QUANTITY = Decimal(10) ** (QUANTITY["max_digits"] - QUANTITY["decimal_places"])
MAX_COST = Decimal(10) ** (MONEY["max_digits"] - MONEY["decimal_places"])
# A movement's value at cost: far below what a rollup's value column holds (10^11), which sums
# a day's or a month's movements of one kind.
MAX_VALUE = Decimal(10) ** 9


def _limit(limit: Decimal) -> str:
    return number_format(limit, 0, force_grouping=True)


def _decimal_input(
    value, field: str, message: str, limit: Decimal, *, signed=False, cents=False
) -> Decimal:
    """`value` as a Decimal, finite and smaller than `limit` (either way if `signed`; rounded
    to the cent first if `cents`), or a ValidationError on `field`: `message` if it is no
    number at all."""
    try:
        value = Decimal(value)
    except (ArithmeticError, ValueError, TypeError) as error:
        raise ValidationError({field: message}) from error
    if not value.is_finite():
        raise ValidationError({field: message})
    if cents and abs(value) < limit:
        value = value.quantize(CENT, ROUND_HALF_UP)
    if abs(value) >= limit:
        too_large = (
            _("Enter a number between -%(limit)s and %(limit)s.")
            if signed
            else _("Enter less than %(limit)s.")
        )
        raise ValidationError({field: too_large % {"limit": _limit(limit)}})
    return value


def _three_decimals(quantity: Decimal, field: str) -> Decimal:
    if quantity != quantity.quantize(QUANTUM):
        raise ValidationError({field: _("Use at most three decimals.")})
    return quantity


def _positive(quantity: Decimal | int | str, field: str = "quantity") -> Decimal:
    quantity = _decimal_input(quantity, field, _("Enter a number."), MAX_QUANTITY)
    if quantity <= 0:
        raise ValidationError({field: _("The quantity must be more than zero.")})
    return _three_decimals(quantity, field)


def _lock(lot: Lot) -> Lot:
    return Lot.objects.select_related("product").select_for_update(of=("self",)).get(pk=lot.pk)


def _post(
    lot: Lot,
    *,
    kind: str,
    quantity: Decimal,
    actor: AbstractBaseUser,
    occurred_at: datetime | None = None,
    reason: str = "",
    reference: str = "",
    waste_reason: str = "",
    reverses: StockMovement | None = None,
    unit_cost: Decimal | None = None,
) -> StockMovement:
    """Writes one movement on a lot the caller has locked, and keeps the lot's quantity and the
    daily rollup in step. Stock is valued at the lot's cost, except a receipt, valued at what
    that delivery cost, and a reversal, at what the consumption it reverses was (so the flows
    add up to the lot's value after its cost is averaged)."""
    unit_cost = lot.unit_cost if unit_cost is None else unit_cost
    if lot.quantity_on_hand + quantity < 0:
        raise InsufficientStock(
            what=str(lot), wanted=-quantity, available=lot.quantity_on_hand, usable=False
        )
    if lot.quantity_on_hand + quantity >= MAX_QUANTITY:
        raise ValidationError(
            {"quantity": _("A lot holds less than %(limit)s.") % {"limit": _limit(MAX_QUANTITY)}}
        )
    if abs(quantity * unit_cost) >= MAX_VALUE:
        raise ValidationError(
            {
                "quantity": _(
                    "A movement worth %(limit)s or more is refused: check the quantity and the "
                    "unit cost."
                )
                % {"limit": _limit(MAX_VALUE)}
            }
        )
    movement = StockMovement(
        lot=lot,
        kind=kind,
        quantity=quantity,
        unit_cost=unit_cost,
        actor=actor,
        occurred_at=occurred_at or timezone.now(),
        reason=reason,
        reference=reference,
        waste_reason=waste_reason,
        reverses=reverses,
    )
    # The CHECK constraints are the database's to enforce: validating them here would cost a
    # query each on the busiest write path, and the service has checked the quantity already.
    movement.full_clean(exclude=["lot", "actor", "reverses"], validate_constraints=False)
    movement.save()
    Lot.objects.filter(pk=lot.pk).update(quantity_on_hand=F("quantity_on_hand") + quantity)
    lot.quantity_on_hand += quantity
    day = timezone.localdate(movement.occurred_at)
    key = {"lot": lot, "day": day, "kind": kind, "actor": actor, "waste_reason": waste_reason}
    # The lot's row lock serialises every writer of these rollup rows.
    value = quantity * unit_cost
    if not StockDay.objects.filter(**key).update(
        quantity=F("quantity") + quantity, value=F("value") + value, movements=F("movements") + 1
    ):
        StockDay.objects.create(
            **key, product_id=lot.product_id, quantity=quantity, value=value, movements=1
        )
    _add_to_month(lot.product_id, day.replace(day=1), kind, actor.pk, waste_reason, quantity, value)
    return movement


def _add_to_month(product_id, month, kind, actor_id, waste_reason, quantity, value) -> None:
    """One atomic upsert: several lots of a product share a month's row, so two writers may
    create it at once; ON CONFLICT lets the second add to it instead of failing."""
    table = StockMonth._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (month, product_id, kind, actor_id, waste_reason, quantity,"
            " value, movements) VALUES (%s, %s, %s, %s, %s, %s, %s, 1)"
            " ON CONFLICT (month, product_id, kind, actor_id, waste_reason) DO UPDATE SET"
            f" quantity = {table}.quantity + EXCLUDED.quantity,"
            f" value = {table}.value + EXCLUDED.value, movements = {table}.movements + 1",
            [month, product_id, kind, actor_id, waste_reason, quantity, value],
        )


def _save_lot(lot: Lot, actor: AbstractBaseUser, reason: str, fields: list[str] | None = None):
    lot._history_user = actor
    lot._change_reason = reason
    lot.full_clean(exclude=["product", "supplier"], validate_constraints=False)
    lot.save(update_fields=fields)


def _take_in_at_cost(
    lot: Lot,
    quantity: Decimal,
    unit_cost: Decimal,
    actor: AbstractBaseUser,
    *,
    averaged: str,
    replaced: str,
) -> None:
    """Units coming onto a locked lot at `unit_cost`: on an empty lot that becomes its cost,
    otherwise its cost becomes the average of what is on the shelf and what comes, to the
    cent. `averaged` and `replaced` are the reasons the lot's history gives for each."""
    if lot.unit_cost == unit_cost:
        return
    if lot.quantity_on_hand > 0:
        total = lot.quantity_on_hand + quantity
        lot.unit_cost = (
            (lot.quantity_on_hand * lot.unit_cost + quantity * unit_cost) / total
        ).quantize(CENT, ROUND_HALF_UP)
        _save_lot(lot, actor, averaged, ["unit_cost"])
    else:
        lot.unit_cost = unit_cost
        _save_lot(lot, actor, replaced, ["unit_cost"])


def _refuse_lot_written_another_way(product: Product, lot_number: str) -> None:
    """A new lot number that only capitals or spaces tell from one on file is that lot
    mistyped: the database would refuse it too (lot_number_per_product_as_printed)."""
    on_file = (
        Lot.objects.filter(product=product)
        .annotate(printed=lot_number_key("lot_number"))
        .filter(printed=lot_number_key(Value(lot_number)))
        .exclude(lot_number=lot_number)
        .order_by()
        .values_list("lot_number", flat=True)
        .first()
    )
    if on_file is not None:
        raise ValidationError(
            {
                "lot_number": _(
                    "%(product)s has lot %(on_file)s on file: if %(given)s is that lot, type it "
                    "as on file."
                )
                % {"product": product, "on_file": on_file, "given": lot_number}
            }
        )


@transaction.atomic
def lot_receive(
    *,
    product: Product,
    lot_number: str,
    expiry_date: date,
    quantity: Decimal,
    unit_cost: Decimal,
    actor: AbstractBaseUser,
    supplier: Supplier | None = None,
    received_on: date | None = None,
    reference: str = "",
    occurred_at: datetime | None = None,
) -> StockMovement:
    """Receives a delivery into a new lot, or into the existing lot of that product and number.
    The cost of a lot received twice becomes the average of what is on hand and what came.
    `occurred_at` records a delivery that arrived earlier than it is entered."""
    quantity = _positive(quantity)
    lot_number = (lot_number or "").strip()
    today = timezone.localdate()
    if occurred_at is not None and occurred_at > timezone.now():
        raise ValidationError({"received_on": _("A delivery cannot be received in the future.")})
    received_on = received_on or (timezone.localdate(occurred_at) if occurred_at else today)
    errors = {}
    if not lot_number:
        errors["lot_number"] = _("Enter the lot number printed on the box.")
    if expiry_date < today:
        errors["expiry_date"] = _("This lot expired on %(day)s; it cannot be received.") % {
            "day": expiry_date.strftime("%d/%m/%Y")
        }
    if received_on > today:
        errors["received_on"] = _("A delivery cannot be received in the future.")
    cost_refused = _("Enter the cost of one stock unit (0 or more).")
    try:
        unit_cost = _decimal_input(unit_cost, "unit_cost", cost_refused, MAX_COST, cents=True)
    except ValidationError as error:
        errors.update(error.message_dict)
    else:
        if unit_cost < 0:
            errors["unit_cost"] = cost_refused
    if not product.active:
        errors["product"] = _("%(product)s is no longer active.") % {"product": product}
    if errors:
        raise ValidationError(errors)

    # The lot's row alone: the model's ordering would join the product and lock it too, and
    # a new lot or rollup row of that product waits for the product's row, so two deliveries
    # of the same products in another order would deadlock.
    lot = (
        Lot.objects.select_for_update(of=("self",))
        .filter(product=product, lot_number=lot_number)
        .order_by()
        .first()
    )
    if lot is None:
        _refuse_lot_written_another_way(product, lot_number)
        try:
            with transaction.atomic():
                lot = Lot(
                    product=product,
                    lot_number=lot_number,
                    expiry_date=expiry_date,
                    unit_cost=unit_cost,
                    supplier=supplier or product.default_supplier,
                    received_on=received_on,
                )
                _save_lot(lot, actor, _("Received"))
        except IntegrityError:
            # Another delivery of the same lot was written at the same moment (as typed here,
            # or another way).
            _refuse_lot_written_another_way(product, lot_number)
            lot = Lot.objects.select_for_update(of=("self",)).get(
                product=product, lot_number=lot_number
            )
        else:
            lot = _lock(lot)
    if lot.expiry_date != expiry_date:
        raise ValidationError(
            {
                "expiry_date": _(
                    "Lot %(lot)s of %(product)s is on file with expiry %(on_file)s, not %(given)s: "
                    "check the box."
                )
                % {
                    "lot": lot_number,
                    "product": product,
                    "on_file": lot.expiry_date.strftime("%d/%m/%Y"),
                    "given": expiry_date.strftime("%d/%m/%Y"),
                }
            }
        )
    if lot.status == LotStatus.RECALLED:
        raise LotNotUsable(
            _("Lot %(lot)s was recalled; it cannot be received.") % {"lot": lot_number}
        )
    _take_in_at_cost(
        lot,
        quantity,
        unit_cost,
        actor,
        averaged=_("Average cost after a new delivery"),
        replaced=_("Cost of a new delivery"),
    )
    return _post(
        lot,
        kind=MovementKind.RECEIPT,
        quantity=quantity,
        actor=actor,
        reference=reference,
        occurred_at=occurred_at,
        unit_cost=unit_cost,
    )


@transaction.atomic
def stock_consume(
    *,
    product: Product,
    quantity: Decimal,
    on: date,
    actor: AbstractBaseUser,
    reference: str = "",
    occurred_at: datetime | None = None,
) -> list[StockMovement]:
    """Takes `quantity` of a product from its usable lots on `on`, earliest expiry first.

    Locks the usable lots in (expiry date, id) order, so two sessions drawing on the same
    product wait for each other instead of deadlocking or overselling. All or nothing: if the
    usable lots hold less than asked, nothing is taken."""
    quantity = _positive(quantity)
    lots = list(
        Lot.objects.usable_on(on)
        .filter(product=product)
        .select_for_update(of=("self",))
        .select_related("product")
        .order_by("expiry_date", "id")
    )
    available = sum((lot.quantity_on_hand for lot in lots), Decimal(0))
    if available < quantity:
        raise InsufficientStock(what=str(product), wanted=quantity, available=available)
    movements, remaining = [], quantity
    for lot in lots:
        if remaining <= 0:
            break
        taken = min(lot.quantity_on_hand, remaining)
        movements.append(
            _post(
                lot,
                kind=MovementKind.CONSUMPTION,
                quantity=-taken,
                actor=actor,
                reference=reference,
                occurred_at=occurred_at,
            )
        )
        remaining -= taken
    return movements


def _refuse_unusable(lot: Lot, on: date) -> None:
    if lot.status == LotStatus.RECALLED:
        raise LotNotUsable(
            _("Lot %(lot)s has been recalled and must not be used.") % {"lot": lot.lot_number}
        )
    if lot.status == LotStatus.QUARANTINED:
        raise LotNotUsable(
            _("Lot %(lot)s is in quarantine and must not be used.") % {"lot": lot.lot_number}
        )
    if lot.expiry_date < on:
        raise LotNotUsable(
            _("Lot %(lot)s expired on %(day)s.")
            % {"lot": lot.lot_number, "day": lot.expiry_date.strftime("%d/%m/%Y")}
        )


@transaction.atomic
def stock_consume_from_lot(
    *,
    lot: Lot,
    quantity: Decimal,
    on: date,
    actor: AbstractBaseUser,
    reference: str = "",
    occurred_at: datetime | None = None,
) -> StockMovement:
    """Takes `quantity` from one named lot; refused if it is expired on `on`, quarantined,
    recalled or short."""
    quantity = _positive(quantity)
    lot = _lock(lot)
    _refuse_unusable(lot, on)
    return _post(
        lot,
        kind=MovementKind.CONSUMPTION,
        quantity=-quantity,
        actor=actor,
        reference=reference,
        occurred_at=occurred_at,
    )


@transaction.atomic
def movement_reverse(
    *, movement: StockMovement, actor: AbstractBaseUser, reason: str
) -> StockMovement:
    """Puts back what a consumption took, as a new consumption line with the opposite sign that
    names the one it reverses (a session's record was corrected; the stock never left). It is
    valued at the cost the consumption was, so the two cancel out in every report; if the lot's
    cost has changed since (a delivery averaged it), the units come back as a delivery at that
    cost would, averaging it again."""
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the consumption is reversed.")})
    if movement.kind != MovementKind.CONSUMPTION or movement.quantity > 0:
        raise ValidationError(_("Only a consumption can be reversed."))
    lot = _lock(movement.lot)
    if StockMovement.objects.filter(reverses=movement).exists():
        raise ValidationError(_("This consumption was already reversed."))
    _take_in_at_cost(
        lot,
        -movement.quantity,
        movement.unit_cost,
        actor,
        averaged=_("Average cost after a consumption was reversed"),
        replaced=_("Cost of the units a reversal put back"),
    )
    return _post(
        lot,
        kind=MovementKind.CONSUMPTION,
        quantity=-movement.quantity,
        actor=actor,
        reason=reason.strip(),
        reference=movement.reference,
        reverses=movement,
        unit_cost=movement.unit_cost,
    )


@transaction.atomic
def stock_discard(
    *, lot: Lot, quantity: Decimal, reason: str, actor: AbstractBaseUser, note: str = ""
) -> StockMovement:
    """Writes stock off as waste. Allowed from any lot, expired, quarantined or recalled."""
    quantity = _positive(quantity)
    if reason not in WasteReason.values:
        raise ValidationError({"reason": _("Choose why the stock is discarded.")})
    lot = _lock(lot)
    return _post(
        lot,
        kind=MovementKind.WASTE,
        quantity=-quantity,
        actor=actor,
        waste_reason=reason,
        reason=note.strip(),
    )


@transaction.atomic
def stock_adjust(
    *, lot: Lot, quantity: Decimal, reason: str, actor: AbstractBaseUser
) -> StockMovement:
    """A signed correction with a reason (a unit found, a unit broken in transit)."""
    quantity = _decimal_input(quantity, "quantity", _("Enter a number."), MAX_QUANTITY, signed=True)
    if quantity == 0:
        raise ValidationError(
            {"quantity": _("Enter a quantity other than zero: more to add, less to take away.")}
        )
    _three_decimals(quantity, "quantity")
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the stock is adjusted.")})
    lot = _lock(lot)
    return _post(
        lot, kind=MovementKind.ADJUSTMENT, quantity=quantity, actor=actor, reason=reason.strip()
    )


@transaction.atomic
def stock_count(
    *, lot: Lot, counted: Decimal, actor: AbstractBaseUser, note: str = ""
) -> StockMovement | None:
    """Records a physical count: posts the difference from the books as a count correction.
    Returns None when the count agrees with the books."""
    counted = _decimal_input(
        counted, "counted", _("Enter the number of units counted."), MAX_QUANTITY
    )
    if counted < 0 or counted != counted.quantize(QUANTUM):
        raise ValidationError({"counted": _("Enter the number of units counted (0 or more).")})
    lot = _lock(lot)
    difference = counted - lot.quantity_on_hand
    if difference == 0:
        return None
    return _post(
        lot,
        kind=MovementKind.COUNT_CORRECTION,
        quantity=difference,
        actor=actor,
        reason=note.strip()
        or _("Stock count: %(counted)s counted, %(books)s on the books")
        % {"counted": _number(counted), "books": _number(lot.quantity_on_hand)},
    )


@transaction.atomic
def lot_return(
    *, lot: Lot, quantity: Decimal, actor: AbstractBaseUser, reason: str, reference: str = ""
) -> StockMovement:
    """Sends stock back to the supplier. Allowed from any lot."""
    quantity = _positive(quantity)
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the stock goes back to the supplier.")})
    lot = _lock(lot)
    return _post(
        lot,
        kind=MovementKind.RETURN,
        quantity=-quantity,
        actor=actor,
        reason=reason.strip(),
        reference=reference,
    )


def _set_status(
    lot: Lot,
    *,
    status: str,
    allowed_from: set[str],
    actor: AbstractBaseUser,
    reason: str,
    refusal: str,
) -> Lot:
    lot = _lock(lot)
    if lot.status not in allowed_from:
        raise ValidationError(
            refusal % {"lot": lot.lot_number, "status": lot.get_status_display().lower()}
        )
    lot.status = status
    lot.status_reason = reason.strip()
    _save_lot(lot, actor, reason.strip(), ["status", "status_reason"])
    return lot


@transaction.atomic
def lot_quarantine(*, lot: Lot, actor: AbstractBaseUser, reason: str) -> Lot:
    """Takes a lot out of use until it is released (a cold chain in doubt, a damaged box)."""
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the lot is quarantined.")})
    return _set_status(
        lot,
        status=LotStatus.QUARANTINED,
        allowed_from={LotStatus.AVAILABLE},
        actor=actor,
        reason=reason,
        refusal=_("Lot %(lot)s is %(status)s; only an available lot can be quarantined."),
    )


@transaction.atomic
def lot_release(*, lot: Lot, actor: AbstractBaseUser, reason: str = "") -> Lot:
    """Puts a quarantined lot back into use."""
    return _set_status(
        lot,
        status=LotStatus.AVAILABLE,
        allowed_from={LotStatus.QUARANTINED},
        actor=actor,
        reason=reason or _("Released from quarantine"),
        refusal=_("Lot %(lot)s is %(status)s; only a quarantined lot can be released."),
    )


@transaction.atomic
def lot_recall(*, lot: Lot, actor: AbstractBaseUser, reason: str) -> Lot:
    """Marks a lot recalled by its manufacturer or the authorities. Final: what is left can
    only be discarded or returned."""
    if not reason.strip():
        raise ValidationError({"reason": _("Say who recalled the lot and why.")})
    return _set_status(
        lot,
        status=LotStatus.RECALLED,
        allowed_from={LotStatus.AVAILABLE, LotStatus.QUARANTINED},
        actor=actor,
        reason=reason,
        refusal=_("Lot %(lot)s is already %(status)s."),
    )


@transaction.atomic
def lot_update(*, lot: Lot, actor: AbstractBaseUser, supplier: Supplier | None) -> Lot:
    """Corrects who supplied a lot, the one detail of a lot edited by hand. Writes that column
    only, under the lot's lock, so a movement posted meanwhile is not overwritten."""
    locked = _lock(lot)
    locked.supplier = supplier
    _save_lot(locked, actor, _("Supplier corrected"), ["supplier"])
    return locked


def stock_lock(
    *, lots: Iterable[Lot] = (), products: Iterable[Product] = (), on: date | None = None
) -> list[Lot]:
    """Locks, in the app's one lock order (expiry date, id), the given lots and every lot of the
    given products usable on `on`. A transaction that will touch several lots or products (a
    session with several lines, a delivery note, an amendment) calls this first, so that it can
    never hold one lot while waiting for another that a concurrent writer took in the other
    order. The services lock again what they change; a row already held costs nothing."""
    condition = Q(pk__in=[lot.pk for lot in lots])
    products = list(products)
    if products:
        usable = Lot.objects.usable_on(on or timezone.localdate()).filter(product__in=products)
        condition |= Q(pk__in=usable.values("pk"))
    return list(
        Lot.objects.filter(condition).select_for_update(of=("self",)).order_by("expiry_date", "id")
    )
