from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class InsufficientStock(ValidationError):
    """`available` is what the usable lots hold (`usable`), or what one lot holds, whatever its
    state (a discard or a return from a quarantined lot)."""

    def __init__(self, *, what: str, wanted: Decimal, available: Decimal, usable: bool = True):
        self.wanted, self.available = wanted, available
        message = (
            _("Not enough %(what)s in stock: %(wanted)s wanted, %(available)s usable.")
            if usable
            else _("Not enough %(what)s in stock: %(wanted)s wanted, %(available)s on hand.")
        )
        super().__init__(
            message % {"what": what, "wanted": _number(wanted), "available": _number(available)},
            code="insufficient_stock",
        )


class LotNotUsable(ValidationError):
    def __init__(self, message: str):
        super().__init__(message, code="lot_not_usable")


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"
