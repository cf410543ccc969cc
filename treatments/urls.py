from django.urls import path

from . import views

app_name = "treatments"
urlpatterns = [
    path("", views.my_day, name="my_day"),
    path("sessions/<int:pk>/", views.session_page, name="session"),
    path("sessions/<int:pk>/amend/", views.session_amend, name="session_amend"),
    path("courses/<int:pk>/", views.course_page, name="course"),
]
