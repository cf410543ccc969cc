from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .exceptions import LikelyDuplicatePatient
from .models import Patient, Screening


class PatientAdminForm(forms.ModelForm):
    confirm_duplicate = forms.BooleanField(
        label=_("This is a different person"),
        required=False,
        help_text=_(
            "Tick only when warned that a patient with the same names and date of birth "
            "exists and you have checked it is someone else."
        ),
    )

    class Meta:
        model = Patient
        fields = [
            "given_name",
            "family_name",
            "date_of_birth",
            "sex",
            "email",
            "mobile_phone",
            "preferred_channel",
            "preferred_language",
            "reminders_opt_out",
            "address_line",
            "postal_code",
            "city",
            "fitzpatrick_type",
            "glogau_type",
            "notes",
        ]

    def clean(self):
        cleaned = super().clean()
        names = (
            cleaned.get("given_name"),
            cleaned.get("family_name"),
            cleaned.get("date_of_birth"),
        )
        identity_changed = self.instance.pk is None or {
            "given_name",
            "family_name",
            "date_of_birth",
        } & set(self.changed_data)
        if all(names) and identity_changed and not cleaned.get("confirm_duplicate"):
            duplicates = Patient.objects.likely_duplicates_of(
                given_name=names[0], family_name=names[1], date_of_birth=names[2]
            ).exclude(pk=self.instance.pk)
            if duplicates:
                self.add_error(None, LikelyDuplicatePatient(duplicates))
        return cleaned


class ScreeningInlineForm(forms.ModelForm):
    reviewed_with_patient = forms.BooleanField(
        label=_("Answers reviewed with the patient"),
        required=True,
        help_text=_("Tick to record this screening; leave the form untouched to record none."),
    )

    class Meta:
        model = Screening
        fields = ["taken_on", *Screening.ANSWER_FIELDS]


class ScreeningForm(forms.ModelForm):
    """The contraindication questions, as a practitioner asks them before a session."""

    class Meta:
        model = Screening
        fields = list(Screening.ANSWER_FIELDS)
        widgets = {"allergies": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("record", _("Record these answers")))


class ConsentWithdrawForm(forms.Form):
    withdrawn_at = forms.DateTimeField(
        label=_("Withdrawn at"), initial=timezone.now, widget=forms.DateTimeInput()
    )
    reason = forms.CharField(label=_("Reason"), max_length=200)


class PatientSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Find a patient"),
        required=False,
        help_text=_("Name, mobile phone, email or date of birth (31/12/1980)."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_method = "get"
        self.helper.add_input(Submit("", _("Search")))
