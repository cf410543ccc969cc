"""Reading the GS1 DataMatrix on a box, as a keyboard-wedge scanner types it (with the group
separator between variable-length fields), or as printed under the code: (01)…(17)…(10)…"""

from dataclasses import dataclass
from datetime import date

import biip
from biip.gs1_messages import GS1Message
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .models import Product

GTIN, EXPIRY, LOT = "01", "17", "10"


@dataclass(frozen=True)
class ScannedBox:
    gtin: str
    product: Product
    lot_number: str
    expiry_date: date | None

    @property
    def missing(self) -> list[str]:
        return [
            name
            for name, value in (
                (_("lot number"), self.lot_number),
                (_("expiry date"), self.expiry_date),
            )
            if not value
        ]


def _message(text: str) -> GS1Message:
    try:
        if text.startswith("("):
            return GS1Message.parse_hri(text)
        result = biip.parse(text)
    except biip.ParseError as error:
        raise ValidationError(_("This is not a GS1 code: %(error)s") % {"error": error}) from error
    if result.gs1_message is None:
        raise ValidationError(
            _("This is not a GS1 code with product, lot and expiry (%(error)s).")
            % {"error": result.gs1_message_error}
        )
    return result.gs1_message


def scan_parse(text: str) -> ScannedBox:
    """The product, lot and expiry a box's code carries. Refuses, with a message that says
    what to do, a code that is not GS1, that names no product, or whose product is unknown."""
    text = text.strip()
    if not text:
        raise ValidationError(_("Nothing was scanned."))
    elements = {element.ai.ai: element for element in _message(text).element_strings}
    if GTIN not in elements:
        raise ValidationError(_("The code carries no product number (GTIN)."))
    gtin = elements[GTIN].value
    product = Product.objects.filter(gtin=gtin).first()
    if product is None:
        raise ValidationError(
            _("No product has GTIN %(gtin)s. Add the GTIN to the product, then scan again.")
            % {"gtin": gtin}
        )
    return ScannedBox(
        gtin=gtin,
        product=product,
        lot_number=elements[LOT].value if LOT in elements else "",
        expiry_date=elements[EXPIRY].date if EXPIRY in elements else None,
    )
