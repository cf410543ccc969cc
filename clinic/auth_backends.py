"""Django's ModelBackend with each user's permission set kept in the cache between requests.

Every page checks a permission, and ModelBackend reads a user's permissions with two queries
(their own, their roles') on every request: on a stock report that was the largest cost after
the report's own query. Here the set is read once and kept in the cache under a generation
number; any change that can alter anyone's permissions (a role given or taken, a role's
permissions changed, a role or permission deleted, a superuser or active flag changed) starts a
new generation, so the next request reads afresh. A change made behind the ORM's back (raw SQL)
is seen at the latest after PERMISSION_CACHE_SECONDS. Without Redis the cache is each process's
own, which would not hear of a change made in another: there PERMISSION_CACHE_SECONDS is 0 by
default and permissions are read as ModelBackend reads them.
"""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save
from django.dispatch import receiver

GENERATION_KEY = "clinic:permissions:generation"


def _user_key(user) -> str:
    # The joining time as well as the id: a row created again with the same id (a restored
    # database, a test run) is another user.
    return f"clinic:permissions:{user.pk}:{user.date_joined.timestamp()}"


class CachedPermissionsBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if settings.PERMISSION_CACHE_SECONDS > 0:
                user_obj._perm_cache = self._cached_permissions(user_obj)
            else:
                user_obj._perm_cache = super().get_all_permissions(user_obj)
        return user_obj._perm_cache

    def _cached_permissions(self, user_obj) -> set[str]:
        key = _user_key(user_obj)
        found = cache.get_many([key, GENERATION_KEY])
        generation = found.get(GENERATION_KEY)
        if generation is None:
            generation = new_generation()
        kept = found.get(key)
        if kept is not None and kept[0] == generation:
            return kept[1]
        permissions = super().get_all_permissions(user_obj)
        cache.set(key, (generation, permissions), settings.PERMISSION_CACHE_SECONDS)
        return permissions


def new_generation() -> str:
    generation = secrets.token_hex(8)
    cache.set(GENERATION_KEY, generation, None)
    return generation


def _changed(**kwargs) -> None:
    # At once, for this transaction's own reads, and again after the commit: a request that
    # read the old set between the change and its commit would otherwise keep it under the
    # first new generation.
    new_generation()
    transaction.on_commit(new_generation)


@receiver(m2m_changed, sender=get_user_model().groups.through)
@receiver(m2m_changed, sender=get_user_model().user_permissions.through)
@receiver(m2m_changed, sender=Group.permissions.through)
def _memberships_changed(action, **kwargs):
    if action in ("post_add", "post_remove", "post_clear"):
        _changed()


# Migrations set the roles' permissions through historical models, which send no signal of
# the real ones: any migration run starts a new generation.
receiver(post_migrate)(_changed)
receiver(post_delete, sender=Group)(_changed)
receiver(post_delete, sender=Permission)(_changed)


@receiver(post_save, sender=get_user_model())
def _user_saved(update_fields=None, created=False, **kwargs):
    # A login saves last_login alone: that changes no one's permissions.
    if not created and (
        update_fields is None or {"is_active", "is_superuser"} & set(update_fields)
    ):
        _changed()
