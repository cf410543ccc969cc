from django.urls import path

from . import views

urlpatterns = [
    path("records/", views.records_report, name="patient_records"),
]
