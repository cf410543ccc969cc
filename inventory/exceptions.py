from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class InsufficientStock(ValidationError):
    def __init__(self, *, what: str, wanted: Decimal, available: Decimal):
        self.wanted, self.available = wanted, available
        super().__init__(
            _("Not enough %(what)s in stock: %(wanted)s wanted, %(available)s usable.")
            % {"what": what, "wanted": _number(wanted), "available": _number(available)},
            code="insufficient_stock",
        )


class LotNotUsable(ValidationError):
    def __init__(self, message: str):
        super().__init__(message, code="lot_not_usable")


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"
