from datetime import date, timedelta
from decimal import Decimal

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


class SupplierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "inventory.Supplier"

    name = factory.Sequence(lambda n: f"Supplier {n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "inventory.Product"

    name = factory.Sequence(lambda n: f"Hyaluronic acid 1% {n}")
    manufacturer = "Meso Labs"
    category = "hyaluronic_acid"
    stock_unit = "vial"
    content_per_unit = Decimal("5")
    content_measure = "ml"
    reorder_level = Decimal("5")


def receive(
    product, *, quantity="10", lot_number=None, expiry=None, cost="12.50", actor=None, **extra
):
    """A delivery through the service, as stock always arrives."""
    from inventory import services

    return services.lot_receive(
        product=product,
        lot_number=lot_number or f"L{product.pk}-{Decimal(quantity)}-{expiry or 'x'}",
        expiry_date=expiry or timezone.localdate() + timedelta(days=365),
        quantity=Decimal(quantity),
        unit_cost=Decimal(cost),
        actor=actor or UserFactory(username="storekeeper"),
        **extra,
    ).lot


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "treatments.Room"
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"Room {n}")


class ProtocolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "treatments.Protocol"

    name = factory.Sequence(lambda n: f"Facial rejuvenation {n}")
    indication = "facial_rejuvenation"
    sessions = 4
    interval_min_days = 14
    interval_max_days = 21
    product_categories = ["hyaluronic_acid", "vitamin_cocktail"]
    areas = ["full_face"]
