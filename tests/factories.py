from datetime import date, timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from patients.models import Consent, ConsentKind, Patient, Screening


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@clinic.example")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class PatientFactory(factory.django.DjangoModelFactory):
    """A patient as the database holds it; tests of the write rules go through the services."""

    class Meta:
        model = Patient

    given_name = factory.Sequence(lambda n: f"Ana{n}")
    family_name = "García López"
    date_of_birth = date(1985, 4, 12)
    sex = "female"
    email = factory.Sequence(lambda n: f"patient{n}@example.com")
    mobile_phone = factory.Sequence(lambda n: f"+3461{n:07d}")


class ScreeningFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Screening

    patient = factory.SubFactory(PatientFactory)
    taken_on = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=1))
    recorded_by = factory.SubFactory(UserFactory)


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consent

    patient = factory.SubFactory(PatientFactory)
    kind = ConsentKind.MESOTHERAPY
    form_version = "2025-01"
    signed_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))
    recorded_by = factory.SubFactory(UserFactory)
