"""Spawned by test_adafactor: one rank of an FSDP2 (gloo, CPU) run of ShardedAdafactor vs
torch.optim.Adafactor. Imports torch only, so each spawned process starts fast."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist

from datakit_titan.sharded_adafactor import ShardedAdafactor


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(6, 7, bias=True)  # 7 rows: uneven 4/3 split over 2 ranks
        self.norm = torch.nn.LayerNorm(7)
        self.b = torch.nn.Linear(7, 3, bias=False)

    def forward(self, x):
        return self.b(self.norm(torch.tanh(self.a(x))))


def _worker(rank: int, world: int, port: int, errfile: str) -> None:
    try:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        torch.manual_seed(0)
        ref = _Net()
        model = _Net()
        model.load_state_dict(ref.state_dict())
        mesh = init_device_mesh("cpu", (world,))
        fully_shard(model, mesh=mesh)
        opt = ShardedAdafactor(model.parameters(), lr=0.02, weight_decay=0.05)
        opt_ref = torch.optim.Adafactor(ref.parameters(), lr=0.02, weight_decay=0.05, foreach=False)
        g = torch.Generator().manual_seed(2)
        for _ in range(4):
            x = torch.randn(8, 6, generator=g)
            y = torch.randn(8, 3, generator=g)
            # every rank sees the same batch, so FSDP's averaged gradient equals the reference's
            for net, o in ((model, opt), (ref, opt_ref)):
                o.zero_grad()
                torch.nn.functional.mse_loss(net(x), y).backward()
                o.step()
        for (name, p), q in zip(model.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p.full_tensor(), q.detach(), rtol=1e-5, atol=1e-6, msg=name)
        st = opt.state[model.a.weight]
        assert st["row_var"].placements == model.a.weight.placements and st["row_var"].shape == (7, 1)
        torch.testing.assert_close(st["col_var"].full_tensor(), opt_ref.state[ref.a.weight]["col_var"], rtol=1e-5, atol=1e-7)
        dist.destroy_process_group()
    except BaseException as e:  # report to the parent, which asserts
        with open(f"{errfile}.{rank}", "w") as f:
            f.write(repr(e))
        raise


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
