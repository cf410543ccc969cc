from django.urls import path

from . import views

app_name = "patients"
urlpatterns = [
    path("", views.patient_search, name="search"),
    path("<int:pk>/", views.patient_safety, name="safety"),
    path("<int:pk>/screening/", views.screening_record, name="screening"),
]
