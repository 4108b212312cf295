"""The harness's Django app inside Antenna: Job timing overrides (apps.py), control endpoints (views.py) and the
seed the bootstrap writes (seed.py). It has no models, so it adds nothing to Antenna's schema."""
