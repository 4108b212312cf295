"""Faults of a 3-node NATS cluster (`--nats cluster3`): one node dies, comes back empty, or is cut off.

A node is chosen by its role when the fault strikes: the JetStream meta leader, the leader of a job's stream,
or a follower of both. Each fault says which node it hit.
"""

from __future__ import annotations

from typing import ClassVar

from harness.chaos.base import Fault, FaultTarget


def _stream(job: int | None) -> str | None:
    from harness.checks.subjects import stream_name

    return stream_name(job) if job is not None else None


class NodeKill(Fault):
    """kill -9 one node (its store kept); heal: start every node that is down."""

    role: ClassVar[str] = ""

    def inject(self, target: FaultTarget, job: int | None = None, **args) -> dict:
        return target.service("nats", "kill_node", role=self.role, stream=_stream(job)) or {}

    def heal(self, target: FaultTarget) -> dict:
        return target.service("nats", "start_nodes") or {}


class NatsKillFollower(NodeKill):
    verb, help = "nats-kill-follower", "cluster: kill -9 a node leading neither the meta group nor JOB's stream"
    positional, positional_optional, role = "job", True, "follower"


class NatsKillStreamLeader(NodeKill):
    verb, help = "nats-kill-stream-leader", "cluster: kill -9 the node leading JOB's stream (an election follows)"
    positional, role = "job", "stream-leader"


class NatsKillMetaLeader(NodeKill):
    verb, help = "nats-kill-meta-leader", "cluster: kill -9 the JetStream meta leader (an election follows)"
    role = "meta-leader"


class NatsLoseQuorum(Fault):
    verb, help = ("nats-lose-quorum", "cluster: kill -9 two of the three nodes (JOB's stream leader among them): "
                  "no quorum left for the meta group or any stream; heal: start them")
    positional, positional_optional = "job", True

    def inject(self, target: FaultTarget, job: int | None = None, **args) -> dict:
        return target.service("nats", "lose_quorum", stream=_stream(job)) or {}

    def heal(self, target: FaultTarget) -> dict:
        return target.service("nats", "start_nodes") or {}


class NatsNodeWipe(Fault):
    verb, help = "nats-node-wipe", "cluster: restart a follower node with its JetStream store deleted"
    one_shot = True

    def inject(self, target: FaultTarget, **args) -> dict:
        return target.service("nats", "wipe_node", role="follower") or {}


class NatsPartition(Fault):
    verb, help = ("nats-partition", "cluster: cut a node's routes to the others (--leader: the meta leader, else "
                  "a follower); clients still reach it; heal: mend the routes")
    role: ClassVar[str] = "follower"

    def inject(self, target: FaultTarget, leader: bool = False, **args) -> dict:
        return target.service("nats", "partition", role="meta-leader" if leader else self.role) or {}

    def heal(self, target: FaultTarget) -> dict:
        return target.service("nats", "heal_partition") or {}


CLUSTER_FAULTS = (NatsKillFollower, NatsKillStreamLeader, NatsKillMetaLeader, NatsLoseQuorum, NatsNodeWipe,
                  NatsPartition)
