"""Stops NATS JetStream-backed async jobs from dying silently or running twice.

Core (nats-py only): model (data), assess (the judge), plan (the sweep's decisions), intake (which results
may be stored and acked), layout (names, reply subjects), jetstream/ (streams, consumers, pulls, snapshots,
dead letters, the sync bridge). Django adapter: fixes.django; a host implements fixes.django.binding.JobBinding
and calls start.begin / start.publish, intake.accept / admit / acknowledge, reaper.hand_out, and schedules
the fixes.sweep task. docs/fixes.md is the adoption guide.
"""
