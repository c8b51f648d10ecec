"""redis-py's asyncio ``RedisCluster`` with one redirect it cannot follow made followable.

An ``ASK`` redirect names the node importing a slot. When that node serves no slot yet (a slot
moved to a primary just added: a scale-out reshard), the client's node cache does not know it and
redis-py 8.1's ``_execute_command`` calls ``execute_command`` on ``None``: an ``AttributeError``
that is not a Redis error at all (a 500 on the hot path; the end of any loop that catches only
Redis errors). ``MOVED`` to an unknown node is handled (``NodesManager.move_slot`` adds it); here
``get_node`` by name adds an unknown node the same way, as a primary (only primaries import slots).
Found and kept by tests/integration/sharedstate/test_heartbeat_cluster.py (the hot-path test).
"""

from __future__ import annotations

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.cluster import PRIMARY


class FollowingCluster(RedisCluster):
    """``get_node(node_name=…)`` never returns None for a node a redirect named."""

    def get_node(self, host: str | None = None, port: int | None = None,
                 node_name: str | None = None) -> ClusterNode | None:
        found = super().get_node(host, port, node_name)
        if found is not None or not node_name or host or port:
            return found
        name_host, _, name_port = node_name.rpartition(":")
        if not name_host or not name_port.isdigit():
            return None
        manager = self.nodes_manager
        node = ClusterNode(name_host, int(name_port), PRIMARY, **manager.connection_kwargs)
        manager.set_nodes(manager.nodes_cache, {node.name: node})
        return node
