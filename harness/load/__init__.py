"""Load: a Locust swarm of Antenna-like workers (locustfile.py) and a runner that checks invariants (run.py)."""
