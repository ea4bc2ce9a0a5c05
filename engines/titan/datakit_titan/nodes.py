"""Where a training run's processes live: N nodes x nproc processes, started by torchrun (docs/scale-out.md).

    titan run phase.toml --nproc 8 --nnodes 2 --node-rank 0 --master-addr 10.0.0.1   # on node 0
    titan run phase.toml --nproc 8 --nnodes 2 --node-rank 1 --master-addr 10.0.0.1   # on node 1

Every node runs the same command with its own rank; torchrun's static rendezvous at master-addr:master-port
(node 0 listens there) joins them into one data-parallel job of nnodes x nproc ranks. Unset options fall back
to SkyPilot's environment (SKYPILOT_NUM_NODES, SKYPILOT_NODE_RANK, the first of SKYPILOT_NODE_IPS), so a
SkyPilot task's `run:` needs only `titan run phase.toml --nproc $SKYPILOT_NUM_GPUS_PER_NODE`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from dataclasses import dataclass

from datakit.errors import UserError

DEFAULT_PORT = 29500  # torchrun's


@dataclass(frozen=True)
class Nodes:
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int = DEFAULT_PORT

    def world(self, nproc: int) -> int:
        """Ranks in the job: processes per node x nodes (the data-parallel degree)."""
        return self.nnodes * nproc

    def launcher(self, nproc: int) -> list[str]:
        """The command prefix that starts this node's processes: plain python for one process on one node, else
        torchrun (standalone on one node, a static rendezvous at master_addr:master_port across nodes)."""
        if self.nnodes == 1:
            if nproc == 1:
                return [sys.executable]
            return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
        return [sys.executable, "-m", "torch.distributed.run", f"--nnodes={self.nnodes}", f"--node-rank={self.node_rank}",
                f"--master-addr={self.master_addr}", f"--master-port={self.master_port}", f"--nproc-per-node={nproc}"]


def resolve_nodes(nnodes: int | None = None, node_rank: int | None = None, master_addr: str | None = None,
                  master_port: int | None = None, env: dict | None = None) -> Nodes:
    """The options given, else SkyPilot's variables, else one node; every mistake is one UserError."""
    env = os.environ if env is None else env
    try:
        if nnodes is None and env.get("SKYPILOT_NUM_NODES"):
            nnodes = int(env["SKYPILOT_NUM_NODES"])
        if node_rank is None and env.get("SKYPILOT_NODE_RANK"):
            node_rank = int(env["SKYPILOT_NODE_RANK"])
    except ValueError as e:
        raise UserError(f"SkyPilot's node variables are not integers ({e})", field="SKYPILOT_NUM_NODES",
                        fix="pass --nnodes and --node-rank explicitly") from None
    if master_addr is None and env.get("SKYPILOT_NODE_IPS"):
        master_addr = env["SKYPILOT_NODE_IPS"].split()[0]
    nnodes = 1 if nnodes is None else nnodes
    node_rank = 0 if node_rank is None else node_rank
    master_port = DEFAULT_PORT if master_port is None else master_port
    if nnodes < 1:
        raise UserError(f"--nnodes {nnodes}: needs at least one node", field="--nnodes", fix="use 1 or the number of machines in the job")
    if not 0 <= node_rank < nnodes:
        raise UserError(f"--node-rank {node_rank} is out of range for --nnodes {nnodes} (ranks are 0..{nnodes - 1})",
                        field="--node-rank", fix=f"give each machine its own rank from 0 to {nnodes - 1}; node 0 hosts the rendezvous")
    if not 1 <= master_port <= 65535:
        raise UserError(f"--master-port {master_port} is not a TCP port", field="--master-port", fix="use a free port such as 29500 on node 0")
    if nnodes > 1:
        if not master_addr:
            raise UserError(f"--nnodes {nnodes} needs the address of node 0", field="--master-addr",
                            fix="pass --master-addr <node 0's IP or hostname> (the same on every node)")
        _check_addr(master_addr)
    return Nodes(nnodes, node_rank, master_addr, master_port)


def _check_addr(addr: str) -> None:
    try:
        ipaddress.ip_address(addr)
        return
    except ValueError:
        pass
    try:
        socket.getaddrinfo(addr, None)
    except OSError:
        raise UserError(f"--master-addr {addr!r} does not resolve", field="--master-addr",
                        fix="pass node 0's IP address or a hostname every node can resolve") from None
