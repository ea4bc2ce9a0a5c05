"""The phase-3 Trainer: TorchTitan's training loop with the SFT + DPO (or ORPO) loss.

Extension at TorchTitan's documented seam (docs/extension.md: subclass `Trainer` and its `Config`),
overriding two methods only:

- `train_step`: before any forward, count the step's SFT target tokens and pairs over all micro-batches
  (gradient accumulation) and data-parallel ranks, so that every micro-batch's loss is its share of
  the step's mean (FSDP2 in TorchTitan sums gradients over ranks: gradient_divide_factor = 1);
  then forward/backward each micro-batch, clip, step, and log sft, dpo, rewards and accuracy
  (TensorBoard / wandb through TorchTitan's metrics processor).
- `forward_backward_step`: the decoder runs with `_skip_lm_head` (as under TorchTitan's chunked loss),
  and only completion positions go through the LM head (`sequence_logps_from_hidden`); the loss
  couples a pair's two rows, so it is one backward over the whole micro-batch, never chunk by chunk.

Not supported in phase 3 (refused at start): pipeline parallelism, context parallelism.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torchtitan.distributed import utils as dist_utils
from torchtitan.tools.logging import logger

from datakit.adapters.losses import IGNORE_INDEX, ROLE_CHOSEN, ROLE_SFT, LossConfig, preference_loss, sequence_logps_from_hidden, summarize
from datakit_titan.trainer import DatakitTrainer

_NOT_MODEL_INPUTS = ("role", "pair_id", "ref_logps")


class PrefsTrainer(DatakitTrainer):
    @dataclass(kw_only=True, slots=True)
    class Config(DatakitTrainer.Config):
        prefs: LossConfig = field(default_factory=LossConfig)
        """Which loss (sft_dpo | sft | dpo | orpo) and its beta / weights."""

    def __init__(self, config: Config):
        super().__init__(config)
        if self.parallel_dims.pp_enabled or self.parallel_dims.cp_enabled:
            raise ValueError("phase 3 (SFT + DPO) supports data parallelism (FSDP2) only, not pipeline or context parallelism")
        model = self.model_parts[0]
        model._skip_lm_head = True  # the loss projects completion positions only
        self.lm_head = model.lm_head
        self.prefs = config.prefs
        self.counts = None  # this step's global (sft tokens, pairs)

    # -- one micro-batch ----------------------------------------------------------------------
    def forward_backward_step(self, *, input_dict, labels, global_valid_tokens):
        extras = {k: input_dict.pop(k) for k in _NOT_MODEL_INPUTS}
        inputs, labels, extra_kwargs = self.post_dataloading_process(input_dict, labels)
        with self.train_context():
            hidden = self.model_parts[0](inputs, **extra_kwargs)
            sums, n_tokens = sequence_logps_from_hidden(hidden, self.lm_head, labels)
            del hidden
            loss, metric_sums = preference_loss(
                sums, n_tokens, extras["role"], extras["ref_logps"], self.prefs,
                sft_tokens=self.counts[0].clamp(min=1), n_pairs=self.counts[1].clamp(min=1),
            )
            loss.backward()
        self._metric_sums = {k: self._metric_sums.get(k, 0) + v.detach().double() for k, v in metric_sums.items()}
        return loss.detach()

    # -- one optimizer step -------------------------------------------------------------------
    def train_step(self, data_iterator):
        self.optimizers.zero_grad(set_to_none=self.config.training.disable_cuda_graphs)
        lr_metrics = self.lr_schedulers.get_metrics()
        should_log = self.metrics_processor.should_log(self.step)
        micro = [next(data_iterator) for _ in range(self.gradient_accumulation_steps)]

        local = torch.zeros(2, dtype=torch.float64)
        for input_dict, labels in micro:
            role = input_dict["role"]
            sft_rows = (role == ROLE_SFT) | (role == ROLE_CHOSEN)
            local[0] += ((labels != IGNORE_INDEX) & sft_rows[:, None]).sum()
            local[1] += (role == ROLE_CHOSEN).sum()
        counts = local.to(self.device)
        if self.parallel_dims.dp_enabled:
            counts = dist_utils.dist_sum_tensor(counts, self.parallel_dims.get_mesh("batch"))
        self.counts = counts.float()

        self._metric_sums: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=self.device)
        for input_dict, labels in micro:
            input_dict = {k: v.to(self.device) for k, v in input_dict.items()}
            total += self.forward_backward_step(input_dict=input_dict, labels=labels.to(self.device), global_valid_tokens=None)

        grad_norm = dist_utils.clip_grad_norm_(
            [p for m in self.model_parts for p in m.parameters()], self.config.training.max_norm, foreach=True,
            pp_mesh=None, ep_enabled=self.parallel_dims.ep_enabled,
        )
        self.checkpointer.maybe_wait_for_staging()
        self.optimizers.step()
        self.lr_schedulers.step()
        if not should_log:
            return

        keys = sorted(self._metric_sums)
        ntokens = torch.tensor(float(self.ntokens_seen), dtype=torch.float64, device=total.device)
        vec = torch.stack([self._metric_sums[k] for k in keys] + [ntokens, total.double()]).to(self.device)
        if self.parallel_dims.dp_enabled:
            vec = dist_utils.dist_sum_tensor(vec, self.parallel_dims.get_mesh("batch"))
        vec = vec.cpu()
        loss = float(vec[-1])
        global_ntokens_seen = int(vec[-2])  # all data-parallel ranks, as TorchTitan's own train_step logs it (cost.json)
        if not math.isfinite(loss):
            raise RuntimeError(f"Loss is not finite ({loss}) at step {self.step}. Stopping training.")
        metrics = {f"prefs/{k}": v for k, v in summarize(dict(zip(keys, vec[:-2])), self.prefs).items()}
        self.metrics_processor.log(self.step, loss, loss, float(grad_norm.item()),
                                   extra_metrics={"n_tokens_seen": global_ntokens_seen, **lr_metrics, **metrics})
        logger.info("  ".join(f"{k.removeprefix('prefs/')}: {v:.4f}" for k, v in metrics.items()))
