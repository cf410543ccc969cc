"""The admin site: with CLINIC_ADMIN_REQUIRES_2FA on (the production default), a staff member
who logged in with a password still needs a code from their authenticator app (TOTP) before
any admin page opens. The first time, the code confirms the app they have just enrolled."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse


def needs_second_factor(request) -> bool:
    return settings.CLINIC_ADMIN_REQUIRES_2FA and not request.user.is_verified()


class ClinicAdminSite(admin.AdminSite):
    def has_permission(self, request):
        return super().has_permission(request) and not needs_second_factor(request)

    def login(self, request, extra_context=None):
        user = request.user
        if (
            user.is_authenticated
            and user.is_active
            and user.is_staff
            and needs_second_factor(request)
        ):
            next_url = request.GET.get("next") or reverse("admin:index")
            return redirect(f"{reverse('two_factor')}?{urlencode({'next': next_url})}")
        return super().login(request, extra_context)
