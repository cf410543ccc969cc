"""The substance categories that patients (safety rules) and inventory (products) both speak of."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class SubstanceCategory(models.TextChoices):
    HYALURONIC_ACID = "hyaluronic_acid", _("Non-cross-linked hyaluronic acid")
    VITAMIN_COCKTAIL = "vitamin_cocktail", _("Vitamin cocktail")
    PRP = "prp", _("Platelet-rich plasma (PRP kit)")
    ANAESTHETIC = "anaesthetic", _("Anaesthetic cream")
    CONSUMABLE = "consumable", _("Consumable")


# What is injected or applied to the patient; consumables (needles, cartridges) carry no
# contraindication of their own.
TREATMENT_SUBSTANCES = [
    SubstanceCategory.HYALURONIC_ACID,
    SubstanceCategory.VITAMIN_COCKTAIL,
    SubstanceCategory.PRP,
    SubstanceCategory.ANAESTHETIC,
]
