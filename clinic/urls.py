from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from treatments import views as treatment_views

from . import two_factor, views

admin.site.site_header = _("Clinic administration")
admin.site.site_title = _("Clinic")
admin.site.index_title = _("Reception and stock")
# The changelists need the width more than the app list beside them.
admin.site.enable_nav_sidebar = False

reports_patterns = (
    [
        path("", views.reports_index, name="index"),
        path("patients/", include("patients.urls_reports")),
        path("stock/", include("inventory.urls_reports")),
        path("stock/lots/<int:pk>/recall/", treatment_views.lot_recall, name="stock_lot_recall"),
    ],
    "reports",
)

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/two-factor/", two_factor.two_factor, name="two_factor"),
    path("health/", views.health, name="health"),
    path(
        "appointments/confirm/<str:token>/",
        treatment_views.appointment,
        {"action": "confirm"},
        name="appointment_confirm",
    ),
    path(
        "appointments/cancel/<str:token>/",
        treatment_views.appointment,
        {"action": "cancel"},
        name="appointment_cancel",
    ),
    path("i18n/", include("django.conf.urls.i18n")),
    path(
        "records/patients/<int:pk>/export.json",
        treatment_views.patient_export,
        name="patient_export",
    ),
    path(
        "records/patients/<int:pk>/export/",
        treatment_views.patient_export_print,
        name="patient_export_print",
    ),
    path("practice/", include("treatments.urls")),
    path("practice/patients/", include("patients.urls")),
    path("reports/", include(reports_patterns)),
    path("stock/", include("inventory.urls")),
    path("admin/", admin.site.urls),
]
