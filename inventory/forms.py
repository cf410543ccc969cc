from datetime import timedelta
from decimal import Decimal

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row, Submit
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.substances import SubstanceCategory

from .models import Product, Supplier, WasteReason


class ReportFilterForm(forms.Form):
    """The filters every stock report takes; each report uses the fields that apply to it."""

    date_from = forms.DateField(
        label=_("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        label=_("To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    category = forms.ChoiceField(
        label=_("Category"),
        required=False,
        choices=[("", _("All categories")), *SubstanceCategory.choices],
    )
    group = forms.ChoiceField(
        label=_("By"),
        required=False,
        initial="product",
        choices=[("product", _("Product")), ("category", _("Category")), ("user", _("User"))],
    )
    period = forms.ChoiceField(
        label=_("Per"),
        required=False,
        initial="month",
        choices=[("day", _("Day")), ("week", _("Week")), ("month", _("Month"))],
    )

    # Bootstrap's classes, as crispy-forms gives them; the report pages lay the form out
    # themselves (inventory/reports/_frame.html).
    WIDGET_CLASSES = {forms.DateInput: "dateinput form-control", forms.Select: "select form-select"}

    def __init__(
        self, *args, fields: list[str], default_days: int = 30, ahead: bool = False, **kwargs
    ):
        """A period left open is the `default_days` up to today, or (`ahead`: a report of what
        is to come) from today on. A start alone counts that many days from it; an end alone,
        back to the start (`ahead`: from today, or from that end if it is already past)."""
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name not in fields:
                del self.fields[name]
        for field in self.fields.values():
            field.widget.attrs["class"] = self.WIDGET_CLASSES[type(field.widget)]
        self.default_days, self.ahead = default_days, ahead

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["class"] += " is-invalid"

    def clean(self):
        cleaned = super().clean()
        today, days = timezone.localdate(), timedelta(days=self.default_days)
        if self.ahead:
            date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
            if date_from is None:
                date_from = today if date_to is None else min(today, date_to)
            date_to = date_to or date_from + days
        else:
            date_to = cleaned.get("date_to") or today
            date_from = cleaned.get("date_from") or date_to - days
        if date_from > date_to:
            raise forms.ValidationError(_("The start date is after the end date."))
        if (date_to - date_from).days > 3660:
            raise forms.ValidationError(_("Choose a period of at most ten years."))
        cleaned.update(date_from=date_from, date_to=date_to)
        cleaned["category"] = cleaned.get("category") or None
        cleaned["group"] = cleaned.get("group") or "product"
        cleaned["period"] = cleaned.get("period") or "month"
        return cleaned

    def show_applied(self) -> None:
        """Shows the filters the report used, defaults included, in the form's fields."""
        self.data = {
            name: value.isoformat() if hasattr(value, "isoformat") else (value or "")
            for name, value in self.cleaned_data.items()
            if name in self.fields
        }


class ScanForm(forms.Form):
    """Takes what a keyboard-wedge scanner types from the GS1 DataMatrix on a box; the scanner's
    Enter submits it and the receiving form comes back filled in."""

    scan = forms.CharField(
        label=_("Scan the box"),
        max_length=200,
        help_text=_("Scan the DataMatrix code: product, lot and expiry are filled in."),
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_method = "get"
        self.helper.add_input(Submit("", _("Fill in from the code"), css_class="btn-secondary"))


class ReceiveForm(forms.Form):
    """One delivery line, typed or filled in from a scan."""

    product = forms.ModelChoiceField(label=_("Product"), queryset=Product.objects.none())
    lot_number = forms.CharField(label=_("Lot number"), max_length=20)
    expiry_date = forms.DateField(
        label=_("Expiry date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    quantity = forms.DecimalField(
        label=_("Quantity (stock units)"),
        min_value=Decimal("0.001"),
        max_digits=12,
        decimal_places=3,
    )
    unit_cost = forms.DecimalField(
        label=_("Cost per unit"), min_value=Decimal(0), max_digits=10, decimal_places=2
    )
    supplier = forms.ModelChoiceField(
        label=_("Supplier"), queryset=Supplier.objects.all(), required=False
    )
    reference = forms.CharField(label=_("Delivery note"), max_length=100, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = Product.objects.filter(active=True)
        self.helper = FormHelper()
        self.helper.layout = Layout(
            Row(
                Column("product", css_class="col-md-6"),
                Column("lot_number", css_class="col-md-3"),
                Column("expiry_date", css_class="col-md-3"),
            ),
            Row(
                Column("quantity", css_class="col-md-3"),
                Column("unit_cost", css_class="col-md-3"),
                Column("supplier", css_class="col-md-3"),
                Column("reference", css_class="col-md-3"),
            ),
        )
        self.helper.add_input(Submit("receive", _("Receive")))


class DeliveryUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Delivery note (CSV)"),
        help_text=_(
            "Columns: product (GTIN or name), lot_number, expiry_date, "
            "quantity, unit_cost, supplier, reference."
        ),
    )

    MAX_BYTES = 2 * 1024 * 1024

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than 2 MB."))
        if not upload.name.lower().endswith((".csv", ".txt")):
            raise forms.ValidationError(_("Upload a .csv file."))
        return upload


class LotOperationForm(forms.Form):
    """One stock operation on one lot, from the admin; each calls its service."""

    OPERATIONS = [
        ("count", _("Record a stock count")),
        ("discard", _("Discard as waste")),
        ("adjust", _("Adjust (signed quantity)")),
        ("return", _("Return to supplier")),
        ("quarantine", _("Quarantine")),
        ("release", _("Release from quarantine")),
        ("recall", _("Recall")),
    ]
    operation = forms.ChoiceField(label=_("Operation"), choices=OPERATIONS)
    quantity = forms.DecimalField(
        label=_("Quantity"),
        required=False,
        max_digits=12,
        decimal_places=3,
        help_text=_("Units counted, discarded, returned, or the signed adjustment."),
    )
    waste_reason = forms.ChoiceField(
        label=_("Waste reason"), required=False, choices=[("", "---------"), *WasteReason.choices]
    )
    reason = forms.CharField(label=_("Reason or note"), required=False, max_length=200)
    reference = forms.CharField(label=_("Reference"), required=False, max_length=100)

    NEEDS_QUANTITY = {"count", "discard", "adjust", "return"}

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("operation") in self.NEEDS_QUANTITY and cleaned.get("quantity") is None:
            self.add_error("quantity", _("Enter the quantity for this operation."))
        if cleaned.get("operation") == "discard" and not cleaned.get("waste_reason"):
            self.add_error("waste_reason", _("Choose why the stock is discarded."))
        return cleaned


class StatusReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200)
