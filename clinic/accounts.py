"""Accounts the application itself acts as, and role membership."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction

from .roles import ADMIN_ROLES, ROLE_PERMISSIONS


def system_user() -> AbstractBaseUser:
    """The user that tasks and management commands act as, so history names who changed what.
    It cannot log in."""
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=settings.CLINIC_SYSTEM_USERNAME,
        defaults={"first_name": "System", "is_active": False},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


@transaction.atomic
def user_set_roles(*, user: AbstractBaseUser, roles: list[str]) -> AbstractBaseUser:
    """Puts the user in exactly these roles; admin roles (reception, manager) need is_staff."""
    unknown = set(roles) - set(ROLE_PERMISSIONS)
    if unknown:
        raise ValueError(f"Unknown roles: {', '.join(sorted(unknown))}")
    groups = list(Group.objects.filter(name__in=roles))
    if len(groups) != len(set(roles)):
        raise ValueError("The role groups are missing from the database: run `migrate`.")
    user.groups.set(groups)
    user.is_staff = user.is_superuser or bool(ADMIN_ROLES & set(roles))
    user.save(update_fields=["is_staff"])
    return user


def users_with_permission(permission: str):
    """Active users holding `app_label.codename` through a group or directly (not superusers
    by default: they administer the system, they are not the clinic's managers)."""
    from django.db.models import Q

    app_label, codename = permission.split(".", 1)
    via_group = Q(
        groups__permissions__codename=codename,
        groups__permissions__content_type__app_label=app_label,
    )
    direct = Q(
        user_permissions__codename=codename, user_permissions__content_type__app_label=app_label
    )
    return get_user_model().objects.filter(via_group | direct, is_active=True).distinct()
