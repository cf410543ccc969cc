from django.urls import path

from . import views

app_name = "patients"
urlpatterns = [
    path("", views.patient_search, name="search"),
    path("patients/<int:pk>/", views.patient_safety, name="safety"),
    path("patients/<int:pk>/screening/", views.screening_record, name="screening"),
]
