"""ShardedAdafactor against torch.optim.Adafactor: plain tensors, then FSDP2 on 1- and 2-rank gloo meshes."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from datakit_titan.sharded_adafactor import ShardedAdafactor
from titan_fsdp_worker import _port, _worker

SHAPES = [(7, 5), (5,), (16, 3), (3, 9)]


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g) for s in SHAPES]


def test_same_updates_as_torch_adafactor_on_plain_tensors():
    ours = [torch.nn.Parameter(t.clone()) for t in _params()]
    ref = [torch.nn.Parameter(t.clone()) for t in _params()]
    opt_ours = ShardedAdafactor(ours, lr=0.01, weight_decay=0.1)
    opt_ref = torch.optim.Adafactor(ref, lr=0.01, weight_decay=0.1, foreach=False)
    g = torch.Generator().manual_seed(1)
    for _ in range(6):
        grads = [torch.randn(*s, generator=g) for s in SHAPES]
        for p, q, gr in zip(ours, ref, grads):
            p.grad, q.grad = gr.clone(), gr.clone()
        opt_ours.step()
        opt_ref.step()
    for p, q, start in zip(ours, ref, _params()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
        assert not torch.equal(p.detach(), start)  # it moved
    for p, q in zip(ours, ref):
        for key in opt_ref.state[q]:
            torch.testing.assert_close(opt_ours.state[p][key], opt_ref.state[q][key], rtol=1e-5, atol=1e-7)


def test_a_step_reads_nothing_back_from_the_device(monkeypatch):
    """The only value read to the host is the CPU step counter: no device sync per parameter."""
    params = [torch.nn.Parameter(t.clone()) for t in _params()]
    opt = ShardedAdafactor(params, lr=0.01, weight_decay=0.1)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()  # creates the state
    steps = {id(opt.state[p]["step"]) for p in params}
    read = []
    original = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda self: read.append(id(self)) or original(self))
    opt.step()
    assert read and set(read) <= steps  # one read per parameter, of its step counter only
    assert all(opt.state[p]["step"].device.type == "cpu" for p in params)


@pytest.mark.slow  # spawns processes: ~20-30 s each on 2 shared cores
@pytest.mark.parametrize("world", [1, 2])
def test_same_updates_as_torch_adafactor_under_fsdp2(world, tmp_path):
    errfile = str(tmp_path / "err")
    mp.spawn(_worker, args=(world, _port(), errfile), nprocs=world, join=True)
    assert not list(tmp_path.glob("err.*"))


def test_registered_in_torchtitan_optimizer_container():
    from torchtitan.components.optimizer import ParamGroupConfig

    from datakit_titan.adafactor import DatakitOptimizers

    model = torch.nn.Linear(4, 3)
    cfg = DatakitOptimizers.Config(
        param_groups=[ParamGroupConfig(pattern=".*", optimizer_name="Adafactor", optimizer_kwargs={"lr": 0.01})],
        implementation="for-loop",
    )
    container = cfg.build(model_parts=[model])
    assert any(isinstance(o, ShardedAdafactor) for o in container.optimizers)
    before = model.weight.detach().clone()
    model(torch.randn(2, 4)).sum().backward()
    container.step()
    assert not torch.equal(before, model.weight)
