"""Names and subnets of the run's isolated network (harness/infra/netns.py): no I/O."""

import ipaddress

import pytest

from harness.infra import netns

net = ipaddress.ip_network


def test_the_first_free_subnet_from_the_start_is_picked_and_overlaps_nothing_taken():
    taken = [net("10.200.0.0/24"), net("10.200.1.0/25"), net("192.168.0.0/16")]
    assert netns.pick_subnet(taken) == net("10.200.2.0/24")
    assert netns.pick_subnet(taken, start=5) == net("10.200.5.0/24")


def test_a_route_covering_part_of_the_pool_is_stepped_over_and_the_search_wraps_around():
    last = list(netns.POOL.subnets(new_prefix=24))[-1]
    assert netns.pick_subnet([net("10.200.0.0/14")], start=0) == net("10.204.0.0/24")
    assert netns.pick_subnet([last], start=2047) == net("10.200.0.0/24")


def test_a_machine_route_over_the_whole_pool_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no free /24"):
        netns.pick_subnet([net("10.0.0.0/8")])


def test_names_fit_the_kernel_limit_and_carry_their_owner_pid():
    network = netns.IsolatedNetwork(["n1", "n2", "n3"])
    network.tag = "4194304-99"  # the largest pid Linux hands out, a 99th network of one process
    for name in (network.bridge, *(network.veth(m) for m in network.members), network.veth("n3") + "p"):
        assert len(name) <= 15, name  # IFNAMSIZ - 1
        assert name == network.bridge or netns.owner_pid(name.removesuffix("p")) == 4194304
    assert netns.owner_pid(network.namespace("n2")) == 4194304


@pytest.mark.parametrize("foreign", ["eth0", "ifb0", "cx-1b", "cxab-1b", "chaos-x-1-n1", "docker0", "cx12b"])
def test_names_that_are_not_ours_have_no_owner(foreign):
    assert netns.owner_pid(foreign) is None


def test_without_root_namespaces_are_unavailable_with_the_reason(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    ok, reason = netns._probe()
    assert not ok and "root" in reason


def test_the_netns_cluster_refuses_to_build_where_namespaces_are_unavailable(monkeypatch):
    from harness.infra import nats_netns

    monkeypatch.setattr(netns, "available", lambda: (False, "network namespaces need root"))
    with pytest.raises(nats_netns.NetnsUnavailable, match="cluster3-netns: network namespaces need root"):
        nats_netns.NetnsNatsCluster()


def test_cluster3_netns_is_a_cluster_everywhere_a_cluster_is_asked_for(monkeypatch):
    from harness.infra.stack import is_cluster, nats_topology
    from scenarios.soak import CLUSTER_SOAK_FAULTS, soak_faults

    assert nats_topology("cluster3-netns") == "cluster3-netns"
    assert is_cluster("cluster3-netns") and is_cluster("cluster3") and not is_cluster("single")
    monkeypatch.setenv("CHAOS_NATS", "cluster3-netns")
    assert soak_faults() == CLUSTER_SOAK_FAULTS
