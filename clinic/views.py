from django.conf import settings
from django.contrib.auth.decorators import login_not_required, permission_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def home(request: HttpRequest) -> HttpResponse:
    """Sends each user to where their role works: practitioners to their pages, managers to
    the reports, reception (and superusers) to the admin. A user in several roles lands on the
    first of those that applies."""
    user = request.user
    if user.is_superuser:
        return redirect("admin:index")
    if user.has_perm("clinic.use_practice_pages"):
        return redirect("treatments:my_day")
    if user.has_perm("clinic.view_reports"):
        return redirect("reports:index")
    if user.is_staff:
        return redirect("admin:index")
    return render(request, "clinic/no_role.html", status=403)


STOCK_REPORTS = [
    (
        "reports:stock_on_hand",
        _("Stock on hand"),
        _("Each product with its lots, expiry and value."),
    ),
    ("reports:stock_low", _("Low stock"), _("Usable quantity at or below the reorder level.")),
    (
        "reports:stock_expiring",
        _("Expiring and expired lots"),
        _("Lots expiring within 30, 60 or 90 days, and expired lots still on the shelf."),
    ),
    (
        "reports:stock_consumption",
        _("Consumption"),
        _("By product, category or user, per day, week or month, with a chart."),
    ),
    ("reports:stock_waste", _("Waste"), _("By reason, and as a share of consumption.")),
    ("reports:stock_valuation", _("Stock valuation"), _("Stock at cost per category.")),
]


@permission_required("clinic.view_reports", raise_exception=True)
def reports_index(request: HttpRequest) -> HttpResponse:
    return render(request, "clinic/reports_index.html", {"stock_reports": STOCK_REPORTS})


@login_not_required
@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """For the load balancer: 200 when the database (and Redis, where configured) answer."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure means unhealthy
        checks["database"] = f"error: {type(error).__name__}"
    if settings.REDIS_URL:
        try:
            cache.set("health-check", "ok", 5)
            checks["redis"] = "ok" if cache.get("health-check") == "ok" else "error: no echo"
        except Exception as error:  # noqa: BLE001
            checks["redis"] = f"error: {type(error).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )
