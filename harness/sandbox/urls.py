from django.urls import path, re_path

from harness.sandbox.jobs import views

# Exact paths, no redirects: a redirected POST would lose its body.
urlpatterns = [
    path("api/v2/health/", views.health),
    re_path(r"^api/v2/jobs/?$", views.jobs),
    path("api/v2/jobs/<int:job_id>/", views.job),
    path("api/v2/jobs/<int:job_id>/run/", views.run),
    path("api/v2/jobs/<int:job_id>/retry/", views.retry),
    path("api/v2/jobs/<int:job_id>/cancel/", views.cancel),
    path("api/v2/jobs/<int:job_id>/tasks/", views.tasks),
    path("api/v2/jobs/<int:job_id>/tasks/in_progress/", views.in_progress),
    path("api/v2/jobs/<int:job_id>/result/", views.result),
    path("media/images/<int:image_id>.gif", views.image),
]
