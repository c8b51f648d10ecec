"""NetworkPolicy semantics (networking.k8s.io/v1) over rendered objects: may this connection open?

What a CNI enforces, written out so the chart's policies can be tested by what they allow rather
than by their text: a pod is isolated in a direction when a policy of its namespace selects it with
that direction in ``policyTypes``; an isolated pod's connection opens when some selecting policy has
a rule whose peers and ports both match (an absent or empty ``to``/``from`` or ``ports`` matches
all). A peer is an ``ipBlock`` (the address in ``cidr`` and in no ``except``), or pod and/or
namespace selectors (``podSelector`` alone: pods of the policy's namespace). Named ports resolve on
the destination pod. Policies add up; nothing here is specific to one CNI.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it: labels, namespace (with its labels), address, named ports."""

    labels: Mapping[str, str]
    namespace: str = "mes-edge"
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    ip: str = "10.244.1.10"
    named_ports: Mapping[str, int] = field(default_factory=dict)

    def ns_labels(self) -> Mapping[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}


Peer = Pod | str  # a pod, or an address outside the cluster


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions); the empty selector matches everything."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if not {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]:
            return False
    return True


def _ip_in_block(ip: str, block: Mapping[str, Any]) -> bool:
    address = ipaddress.ip_address(ip)
    cidr = ipaddress.ip_network(block["cidr"])
    if address.version != cidr.version or address not in cidr:
        return False
    return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))


def _peer_matches(peer: Mapping[str, Any], other: Peer, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return _ip_in_block(other.ip if isinstance(other, Pod) else other, peer["ipBlock"])
    if not isinstance(other, Pod):
        return False  # selectors select pods, never outside addresses
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], other.ns_labels()):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], other.labels)


def _port_matches(rule_ports: Iterable[Mapping[str, Any]] | None, port: int, protocol: str,
                  destination: Peer) -> bool:
    ports = list(rule_ports or [])
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        wanted = p["port"]
        if isinstance(wanted, str):  # a named port: the destination pod's
            if isinstance(destination, Pod) and destination.named_ports.get(wanted) == port:
                return True
        elif wanted <= port <= p.get("endPort", wanted):
            return True
    return False


def _selecting(policies: Iterable[Obj], pod: Pod, direction: str) -> list[Obj]:
    return [p for p in policies
            if p.get("metadata", {}).get("namespace", pod.namespace) == pod.namespace
            and direction in p["spec"].get("policyTypes", ["Ingress"])
            and selector_matches(p["spec"]["podSelector"], pod.labels)]


def isolated(policies: Iterable[Obj], pod: Pod, direction: str) -> bool:
    """Some policy selects ``pod`` for ``direction`` ("Ingress" or "Egress")."""
    return bool(_selecting(policies, pod, direction))


def _allowed(policies: Iterable[Obj], pod: Pod, direction: str, other: Peer, port: int, protocol: str,
             destination: Peer) -> bool:
    """``pod``'s side of a connection with ``other``: ``direction`` "Egress" (pod → other) or "Ingress"."""
    selecting = _selecting(policies, pod, direction)
    if not selecting:
        return True
    section, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    return any(
        (not rule.get(peers_key)
         or any(_peer_matches(peer, other, pod.namespace) for peer in rule[peers_key]))
        and _port_matches(rule.get("ports"), port, protocol, destination)
        for policy in selecting for rule in policy["spec"].get(section) or [])


def egress_allowed(policies: Iterable[Obj], source: Pod, destination: Peer, port: int,
                   protocol: str = "TCP") -> bool:
    """May ``source`` open a connection to ``destination``:``port`` (its egress side only)?"""
    return _allowed(policies, source, "Egress", destination, port, protocol, destination)


def ingress_allowed(policies: Iterable[Obj], destination: Pod, source: Peer, port: int,
                    protocol: str = "TCP") -> bool:
    """May ``source`` reach ``destination``:``port`` (the destination's ingress side only)?"""
    return _allowed(policies, destination, "Ingress", source, port, protocol, destination)


def connection_allowed(policies: Iterable[Obj], source: Pod, destination: Pod, port: int,
                       protocol: str = "TCP") -> bool:
    """Both sides: the source's egress and the destination's ingress."""
    policies = list(policies)
    return (egress_allowed(policies, source, destination, port, protocol)
            and ingress_allowed(policies, destination, source, port, protocol))
