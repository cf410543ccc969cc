"""Reading the GS1 DataMatrix on a box, as a keyboard-wedge scanner types it (with the group
separator between variable-length fields), or as printed under the code: (01)…(17)…(10)…; or
the box's ordinary barcode, which carries the GTIN alone."""

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


# What a box's ordinary barcode (EAN-8, UPC-A, EAN-13, ITF-14) types: the GTIN alone.
PLAIN_GTIN_LENGTHS = (8, 12, 13, 14)


@dataclass(frozen=True)
class PlainGtin:
    """A linear barcode's GTIN, in the place of a (01) element string."""

    value: str


def _elements(text: str) -> dict[str, object]:
    """The code's element strings by application identifier; a plain barcode's GTIN as (01)."""
    try:
        if text.startswith("("):
            return {e.ai.ai: e for e in GS1Message.parse_hri(text).element_strings}
        result = biip.parse(text)
    except biip.ParseError as error:
        raise ValidationError(_("This is not a GS1 code: %(error)s") % {"error": error}) from error
    # Digits alone with a valid check digit are the GTIN of a linear barcode, though some
    # EAN-13s also read as an element string (4006381333931 as order number 400…). Fourteen
    # digits that make an element string (10 and a lot number) are that.
    plain = text.isdigit() and len(text) in PLAIN_GTIN_LENGTHS and result.gtin is not None
    if plain and (len(text) < 14 or result.gs1_message is None):
        return {GTIN: PlainGtin(result.gtin.as_gtin_14())}
    if result.gs1_message is None:
        raise ValidationError(
            _("This is not a GS1 code with product, lot and expiry (%(error)s).")
            % {"error": result.gs1_message_error}
        )
    return {e.ai.ai: e for e in result.gs1_message.element_strings}


def scan_parse(text: str) -> ScannedBox:
    """The product, lot and expiry a box's code carries. Refuses, with a message that says
    what to do, a code that is not GS1, that names no product, or whose product is unknown or
    no longer active."""
    text = text.strip()
    if not text:
        raise ValidationError(_("Nothing was scanned."))
    elements = _elements(text)
    if GTIN not in elements:
        raise ValidationError(_("The code carries no product number (GTIN)."))
    gtin = elements[GTIN].value
    product = Product.objects.filter(gtin=gtin).first()
    if product is None:
        raise ValidationError(
            _("No product has GTIN %(gtin)s. Add the GTIN to the product, then scan again.")
            % {"gtin": gtin}
        )
    if not product.active:
        raise ValidationError(
            _("%(product)s (GTIN %(gtin)s) is no longer active: it cannot be received.")
            % {"product": product, "gtin": gtin}
        )
    return ScannedBox(
        gtin=gtin,
        product=product,
        lot_number=elements[LOT].value if LOT in elements else "",
        expiry_date=elements[EXPIRY].date if EXPIRY in elements else None,
    )
