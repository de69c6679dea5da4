"""A keyspace's replication: parsed from `--replication`, read back from Cassandra, and judged.

`--replication 3` is SimpleStrategy with 3 replicas; `--replication dc1:3,dc2:3` is
NetworkTopologyStrategy with 3 replicas in each named datacenter (what production wants: the driver's
LOCAL_QUORUM then survives one node down per datacenter). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

SIMPLE = "SimpleStrategy"
NETWORK = "NetworkTopologyStrategy"
PRODUCTION_FACTOR = 3
_DATACENTER = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)


@dataclass(frozen=True)
class Replication:
    """SimpleStrategy with one factor for the whole cluster, or a factor per datacenter."""

    strategy: str
    factors: tuple[tuple[str, int], ...]  # (datacenter, factor), sorted; ("", factor) for SimpleStrategy

    @classmethod
    def simple(cls, factor: int) -> Replication:
        return cls(SIMPLE, (("", factor),))

    @classmethod
    def per_datacenter(cls, factors: Mapping[str, int]) -> Replication:
        return cls(NETWORK, tuple(sorted(factors.items())))

    @classmethod
    def parse(cls, text: str) -> Replication:
        """`3` or `dc1:3,dc2:3`; ValueError naming the rule otherwise."""
        text = text.strip()
        if text.isdigit():
            return cls.simple(_factor(text))
        factors: dict[str, int] = {}
        for part in text.split(","):
            name, sep, value = part.strip().partition(":")
            if not sep or _DATACENTER.fullmatch(name) is None or not value.strip().isdigit():
                raise ValueError(
                    f"{text!r}: expected a replication factor (`3`, SimpleStrategy) or "
                    "datacenter:factor pairs (`dc1:3,dc2:3`, NetworkTopologyStrategy)"
                )
            if name in factors:
                raise ValueError(f"{text!r}: datacenter {name!r} named twice")
            factors[name] = _factor(value.strip())
        return cls.per_datacenter(factors)

    @classmethod
    def from_cassandra(cls, options: Mapping[str, str]) -> Replication:
        """From system_schema.keyspaces' `replication` map, e.g. {'class': '...SimpleStrategy',
        'replication_factor': '1'}. A transient factor `3/1` counts its full replicas."""
        strategy = options.get("class", "").rsplit(".", 1)[-1]
        factors = {k: int(v.split("/")[0]) for k, v in options.items() if k != "class"}
        if strategy == SIMPLE:
            return cls.simple(factors.get("replication_factor", 1))
        return cls(strategy, tuple(sorted(factors.items())))

    def cql(self) -> str:
        if self.strategy == SIMPLE:
            return f"{{'class': '{SIMPLE}', 'replication_factor': {self.factors[0][1]}}}"
        pairs = ", ".join(f"'{dc}': {factor}" for dc, factor in self.factors)
        return f"{{'class': '{self.strategy}', {pairs}}}"

    def describe(self) -> str:
        if self.strategy == SIMPLE:
            return f"{SIMPLE}, replication factor {self.factors[0][1]}"
        return f"{self.strategy}, " + ", ".join(f"{dc}: {factor}" for dc, factor in self.factors)

    def lowered_from(self, before: Replication) -> bool:
        """True if some datacenter keeps fewer replicas than `before` gave it (needs a cleanup)."""
        old = dict(before.factors)
        return any(factor < old.get(dc, 0) for dc, factor in self.factors)

    def advice(self, nodes_per_datacenter: Mapping[str, int]) -> list[str]:
        """Warnings about this replication on a cluster with these nodes (empty when it is sound)."""
        if self.strategy == SIMPLE:
            nodes = sum(nodes_per_datacenter.values())
            factor = self.factors[0][1]
            where = [("the cluster", factor, nodes)]
        else:
            where = [(dc, factor, nodes_per_datacenter.get(dc, 0)) for dc, factor in self.factors]
        lines: list[str] = []
        for name, factor, nodes in where:
            if factor < PRODUCTION_FACTOR:
                lines.append(
                    f"replication factor {factor} in {name} ({_nodes(nodes)}): one "
                    f"lost node loses data and LOCAL_QUORUM stops when one replica is down; production wants "
                    f"{PRODUCTION_FACTOR} per datacenter (--replication "
                    f"{_example(nodes_per_datacenter)})"
                )
            if factor > nodes:
                lines.append(
                    f"replication factor {factor} in {name} but {_nodes(nodes)} there: writes "
                    f"at LOCAL_QUORUM fail until it has {factor}"
                )
        if self.strategy == SIMPLE and len(nodes_per_datacenter) > 1:
            lines.append(
                "SimpleStrategy ignores datacenters: with several, give a factor per datacenter "
                f"(--replication {_example(nodes_per_datacenter)})"
            )
        return lines


def _factor(text: str) -> int:
    factor = int(text)
    if not 1 <= factor <= 10:
        raise ValueError(f"replication factor {factor}: expected 1 to 10")
    return factor


def _example(nodes_per_datacenter: Mapping[str, int]) -> str:
    names = sorted(nodes_per_datacenter) or ["dc1"]
    return ",".join(f"{dc}:{PRODUCTION_FACTOR}" for dc in names)


def _nodes(count: int) -> str:
    return f"{count} node{'s' if count != 1 else ''}"
