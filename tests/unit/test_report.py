"""The timeline's labels: short, and never drawn on top of each other."""

from scenarios.report import fault_label, stagger


def test_fault_labels_name_the_job_the_duration_and_the_flags_that_are_set():
    assert fault_label("nats-restart", {"fault": "nats-restart", "wipe": True}) == "nats-restart --wipe"
    assert fault_label("nats-restart", {"fault": "nats-restart", "wipe": False}) == "nats-restart"
    assert fault_label("nats-pause", {"seconds": 2.5}) == "nats-pause 2.5s"
    assert fault_label("reserve-and-vanish", {"job": 2, "repeat": True, "tasks": 8}) == "reserve-and-vanish job 2 --repeat"


def test_labels_that_would_overlap_go_to_the_next_row():
    span = 10.0  # seconds on the axis: one character is 0.072 s wide
    labels = [(0.0, "redis-restart"), (0.5, "beat-down 1.8s"), (5.0, "web-kill"), (5.2, "revoke job 1")]
    assert stagger(labels, span) == [0, 1, 0, 1]
    assert stagger([(0.0, "a"), (9.0, "b")], span) == [0, 0]
