"""Antenna's URLs (config.urls) plus the harness's control endpoints under /api/v2/chaos/."""

from chaos_antenna_app import views
from config.urls import urlpatterns as antenna_urlpatterns
from django.urls import path

chaos_urlpatterns = [
    path("api/v2/chaos/health/", views.Health.as_view()),
    path("api/v2/chaos/jobs/", views.Jobs.as_view()),
    path("api/v2/chaos/jobs/<int:job_id>/revoke/", views.RevokeJob.as_view()),
    path("api/v2/chaos/jobs/<int:job_id>/hold-progress-save/", views.HoldProgressSave.as_view()),
    path("api/v2/chaos/periodic/<str:name>/", views.Periodic.as_view()),
]
urlpatterns = [*chaos_urlpatterns, *antenna_urlpatterns]
