import json
import resource
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the reaper's sweep --passes times in this process; print one JSON line per pass."

    def add_arguments(self, parser):
        parser.add_argument("--passes", type=int, default=1)

    def handle(self, *args, passes, **options):
        from fixes.django import reaper

        for _ in range(passes):
            began = time.perf_counter()
            result = reaper.sweep()
            self.stdout.write(json.dumps({"seconds": time.perf_counter() - began, "looked_at": result.looked_at,
                                          "failed": len(result.failed), "skipped": len(result.skipped),
                                          "unreachable": result.unreachable,
                                          "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
