from datetime import datetime, time, timedelta

from crispy_forms.bootstrap import InlineCheckboxes
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Fieldset, Layout, Row, Submit
from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from inventory.models import Lot, Product

from .models import Area, Room, Technique


class PractitionerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user):
        return user.get_full_name() or user.get_username()


class LotChoiceField(forms.ModelChoiceField):
    """The lot number first: on a narrow select it is what must not be cut off."""

    def label_from_instance(self, lot):
        return f"{lot.lot_number} · {lot.expiry_date:%d/%m/%Y} · {lot.product}"


def practitioners():
    return (
        get_user_model()
        .objects.filter(groups__permissions__codename="use_practice_pages", is_active=True)
        .distinct()
        .order_by("last_name", "first_name")
    )


class PlannedSessionForm(forms.Form):
    """One session of a course being booked: the proposed date, which staff may change."""

    number = forms.IntegerField(widget=forms.HiddenInput)
    day = forms.DateField(
        label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    start = forms.TimeField(
        label=_("Time"),
        initial=time(10, 0),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    minutes = forms.IntegerField(label=_("Minutes"), initial=45, min_value=10, max_value=240)
    practitioner = PractitionerChoiceField(label=_("Practitioner"), queryset=None)
    room = forms.ModelChoiceField(label=_("Room"), queryset=Room.objects.filter(active=True))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["practitioner"].queryset = practitioners()

    def times(self) -> tuple[datetime, datetime]:
        start = timezone.make_aware(
            datetime.combine(self.cleaned_data["day"], self.cleaned_data["start"])
        )
        return start, start + timedelta(minutes=self.cleaned_data["minutes"])


PlannedSessionFormSet = forms.formset_factory(PlannedSessionForm, extra=0)


class DayOfQuestionsForm(forms.Form):
    """The answers that change from one day to the next, asked before each session."""

    pregnant_or_breastfeeding = forms.BooleanField(
        label=_("Pregnant or breastfeeding"), required=False
    )
    nsaids_last_48h = forms.BooleanField(
        label=_("Aspirin or other NSAIDs in the last 48 hours"), required=False
    )
    anticoagulants = forms.BooleanField(
        label=_("Anticoagulant or antiplatelet drugs"), required=False
    )
    vaccination_last_7_days = forms.BooleanField(
        label=_("Vaccination in the last 7 days"), required=False
    )
    active_infection_at_site = forms.BooleanField(
        label=_("Infection or skin disease at the treatment site"), required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


PRP_FIELD_NAMES = (
    "prp_blood_ml",
    "prp_centrifuge_rpm",
    "prp_centrifuge_minutes",
    "prp_minutes_to_injection",
)


class SessionRecordForm(forms.Form):
    areas = forms.MultipleChoiceField(
        label=_("Areas"), choices=Area.choices, widget=forms.CheckboxSelectMultiple
    )
    technique = forms.ChoiceField(label=_("Technique"), choices=Technique.choices)
    needle_gauge = forms.IntegerField(label=_("Needle gauge (G)"), min_value=18, max_value=34)
    needle_length_mm = forms.DecimalField(
        label=_("Needle length (mm)"), max_digits=4, decimal_places=1, min_value=0
    )
    depth_mm = forms.DecimalField(
        label=_("Depth (mm)"), max_digits=4, decimal_places=1, min_value=0
    )
    anaesthetic_cream = forms.BooleanField(label=_("Anaesthetic cream"), required=False)
    anaesthetic_minutes = forms.IntegerField(
        label=_("Cream applied, minutes"), required=False, min_value=0, max_value=180
    )
    prp_blood_ml = forms.DecimalField(
        label=_("PRP: blood drawn (ml)"),
        required=False,
        max_digits=5,
        decimal_places=1,
        min_value=0,
    )
    prp_centrifuge_rpm = forms.IntegerField(
        label=_("PRP: centrifuge speed (rpm)"), required=False, min_value=0
    )
    prp_centrifuge_minutes = forms.IntegerField(
        label=_("PRP: centrifuge minutes"), required=False, min_value=0
    )
    prp_minutes_to_injection = forms.IntegerField(
        label=_("PRP: minutes from draw to injection"), required=False, min_value=0
    )
    erythema = forms.BooleanField(label=_("Erythema"), required=False)
    oedema = forms.BooleanField(label=_("Oedema"), required=False)
    bruising = forms.BooleanField(label=_("Bruising"), required=False)
    persistent_papules = forms.BooleanField(label=_("Persistent papules"), required=False)
    pain_score = forms.IntegerField(
        label=_("Pain (0 to 10)"), required=False, min_value=0, max_value=10
    )
    vasovagal_reaction = forms.BooleanField(label=_("Vasovagal reaction"), required=False)
    infection_signs = forms.BooleanField(label=_("Signs of infection"), required=False)
    adverse_other = forms.CharField(label=_("Other adverse event"), required=False, max_length=200)
    aftercare_given = forms.BooleanField(label=_("Aftercare given"), required=False)
    photos_taken = forms.BooleanField(label=_("Photos taken"), required=False)
    clinical_notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False

        def row(*names):
            return Row(*[Column(name, css_class="col-md") for name in names])

        self.helper.layout = Layout(
            InlineCheckboxes("areas"),
            row("technique", "needle_gauge", "needle_length_mm", "depth_mm"),
            row("anaesthetic_cream", "anaesthetic_minutes"),
            Fieldset(_("PRP (when a PRP kit is used)"), row(*PRP_FIELD_NAMES)),
            Fieldset(
                _("Adverse events"),
                row(
                    "erythema",
                    "oedema",
                    "bruising",
                    "persistent_papules",
                    "vasovagal_reaction",
                    "infection_signs",
                ),
                row("pain_score", "adverse_other"),
            ),
            row("aftercare_given", "photos_taken"),
            "clinical_notes",
        )


class ProductLineForm(forms.Form):
    product = forms.ModelChoiceField(
        label=_("Product"), queryset=Product.objects.filter(active=True)
    )
    lot = LotChoiceField(
        label=_("Lot"),
        required=False,
        queryset=Lot.objects.none(),
    )
    quantity = forms.DecimalField(
        label=_("Quantity (units)"), max_digits=12, decimal_places=3, min_value=0
    )
    volume_ml = forms.DecimalField(
        label=_("Volume injected (ml)"), required=False, max_digits=6, decimal_places=2, min_value=0
    )
    area = forms.ChoiceField(
        label=_("Area"), required=False, choices=[("", "---------"), *Area.choices]
    )

    def __init__(self, *args, usable_lots=None, choices=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lot"].queryset = usable_lots if usable_lots is not None else Lot.objects.none()
        if choices is not None:
            # Read once for the whole formset (see BaseProductLineFormSet), not once a line.
            self.fields["product"].choices, self.fields["lot"].choices = choices


class BaseProductLineFormSet(forms.BaseFormSet):
    def __init__(self, *args, usable_lots=None, **kwargs):
        self.usable_lots = usable_lots
        super().__init__(*args, **kwargs)

    @cached_property
    def shared_choices(self) -> tuple[list, list]:
        """The product and lot options, read once: every line offers the same ones."""
        blank = [("", "---------")]
        # .all(): a fresh query each time, not the class-level queryset and its cached rows.
        products = ProductLineForm.base_fields["product"].queryset.all()
        lots = self.usable_lots if self.usable_lots is not None else Lot.objects.none()
        lot_field = ProductLineForm.base_fields["lot"]
        return (
            blank + [(product.pk, str(product)) for product in products],
            blank + [(lot.pk, lot_field.label_from_instance(lot)) for lot in lots],
        )

    def get_form_kwargs(self, index):
        return {
            **super().get_form_kwargs(index),
            "usable_lots": self.usable_lots,
            "choices": self.shared_choices,
        }


ProductLineFormSet = forms.formset_factory(ProductLineForm, formset=BaseProductLineFormSet, extra=3)


class AmendForm(forms.Form):
    reason = forms.CharField(label=_("Reason for the amendment"), max_length=200)


class SubmitHelper(FormHelper):
    def __init__(self, label):
        super().__init__()
        self.add_input(Submit("submit", label))
