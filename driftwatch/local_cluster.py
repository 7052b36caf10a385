"""A local Redis Cluster: 3 masters and 3 replicas of redis-server, for the tests and benchmarks.

Six ``redis-server`` processes on free ports with ``cluster-enabled``, joined by
``redis-cli --cluster create --cluster-replicas 1``, as an operator would make
one. ``failover`` promotes a master's replica (``CLUSTER FAILOVER`` run on the
replica) and then kills the old master, the fault the cluster tests inject.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis

NODE_TIMEOUT_MS = 2000
# A node also listens on its port + 10000 (the cluster bus), so its port is at most 55535.
BUS_OFFSET = 10_000


def free_cluster_port(taken: set[int]) -> int:
    """A port whose cluster-bus port is free too (both checked by binding them)."""
    for port in random.sample(range(20_000, 55_535), 2_000):
        if port in taken or port + BUS_OFFSET in taken:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + BUS_OFFSET))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait(what: str, check: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"redis cluster: timed out waiting for {what}")


@dataclass
class ClusterNode:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, executable: str) -> None:
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class LocalRedisCluster:
    """``with LocalRedisCluster() as cluster: cluster.url`` is ``redis+cluster://127.0.0.1:<port>``."""

    masters: int = 3
    replicas_per_master: int = 1
    nodes: list[ClusterNode] = field(default_factory=list)
    _root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="driftwatch-cluster-")))

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:1])

    def client(self) -> redis.RedisCluster:
        live = next(n for n in self.nodes if n.running)
        return redis.RedisCluster(host="127.0.0.1", port=live.port, socket_timeout=5)

    def start(self) -> None:
        executable = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if executable is None or cli is None:
            raise RuntimeError("redis-server and redis-cli are needed (apt-get install redis-server)")
        taken: set[int] = set()
        for _ in range(self.masters * (1 + self.replicas_per_master)):
            port = free_cluster_port(taken)
            taken |= {port, port + BUS_OFFSET}
            node = ClusterNode(port, self._root / str(port))
            node.data_dir.mkdir()
            node.start(executable)
            self.nodes.append(node)
        for node in self.nodes:
            _wait(f"node {node.port}", lambda node=node: self._pings(node), 15)
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        _wait("every node to see the cluster ok", lambda: all(self._state_ok(n) for n in self.nodes), 60)
        _wait("replicas to attach", lambda: len(self.replica_ports()) == self.masters * self.replicas_per_master, 60)

    @staticmethod
    def _pings(node: ClusterNode) -> bool:
        try:
            return bool(node.client().ping())
        except redis.RedisError:
            return False

    @staticmethod
    def _state_ok(node: ClusterNode) -> bool:
        try:
            return b"cluster_state:ok" in node.client().execute_command("CLUSTER", "INFO")
        except redis.RedisError:
            return False

    def _roles(self) -> dict[int, tuple[str, int | None]]:
        """port -> (role, master port for replicas), as the first live node sees it."""
        live = next(n for n in self.nodes if n.running)
        text = live.client().execute_command("CLUSTER", "NODES").decode()
        by_id: dict[str, int] = {}
        rows = []
        for line in text.strip().splitlines():
            node_id, address, flags, master_id, *_ = line.split()
            port = int(address.split("@")[0].rsplit(":", 1)[1])
            by_id[node_id] = port
            rows.append((port, flags, master_id))
        roles: dict[int, tuple[str, int | None]] = {}
        for port, flags, master_id in rows:
            if "fail" in flags:
                continue
            if "master" in flags:
                roles[port] = ("master", None)
            else:
                roles[port] = ("replica", by_id.get(master_id))
        return roles

    def master_ports(self) -> list[int]:
        return sorted(p for p, (role, _) in self._roles().items() if role == "master")

    def replica_ports(self) -> list[int]:
        return sorted(p for p, (role, _) in self._roles().items() if role == "replica")

    def master_of_slot(self, slot: int) -> int:
        live = next(n for n in self.nodes if n.running)
        for start, end, master, *_ in live.client().execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        raise LookupError(slot)

    def failover(self, master_port: int) -> int:
        """Promote ``master_port``'s replica, then kill the old master; returns the new master's port."""
        replica = next(p for p, (role, master) in self._roles().items() if role == "replica" and master == master_port)
        node = next(n for n in self.nodes if n.port == replica)
        node.client().execute_command("CLUSTER", "FAILOVER")
        _wait(f"replica {replica} to become master", lambda: replica in self.master_ports(), 30)
        next(n for n in self.nodes if n.port == master_port).kill()
        _wait(f"the cluster to mark {master_port} failed", lambda: master_port not in self.master_ports(), 60)
        _wait("the cluster to be ok after the kill",
              lambda: all(self._state_ok(n) for n in self.nodes if n.running), 60)  # fmt: skip
        return replica

    def close(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> LocalRedisCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
