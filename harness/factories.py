"""factory-boy factories for the sandbox models (need Django configured: use the `sandbox_db` fixture)."""

import factory
from factory.django import DjangoModelFactory

from harness.sandbox.jobs.models import DispatchMode, Job, JobState, Pipeline, Project, SourceImage


class ProjectFactory(DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"project-{n}")


class PipelineFactory(DjangoModelFactory):
    class Meta:
        model = Pipeline
        django_get_or_create = ("slug",)

    slug = "moth-detector"
    name = factory.LazyAttribute(lambda p: p.slug.replace("-", " ").title())


class SourceImageFactory(DjangoModelFactory):
    class Meta:
        model = SourceImage

    project = factory.SubFactory(ProjectFactory)
    path = factory.Sequence(lambda n: f"img_{n}.jpg")
    url = factory.Sequence(lambda n: f"http://127.0.0.1/media/images/{n}.gif")


class JobFactory(DjangoModelFactory):
    """`JobFactory(images=50)` creates a job with 50 fresh images of its project."""

    class Meta:
        model = Job
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"job-{n}")
    project = factory.SubFactory(ProjectFactory)
    pipeline = factory.SubFactory(PipelineFactory)
    status = JobState.CREATED
    dispatch_mode = DispatchMode.ASYNC_API

    @factory.post_generation
    def images(self, create, extracted, **kwargs):
        if not create or not extracted:
            return
        if isinstance(extracted, int):
            extracted = SourceImageFactory.create_batch(extracted, project=self.project)
        self.images.set(extracted)
