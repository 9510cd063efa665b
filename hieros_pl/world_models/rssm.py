"""RSSM: DreamerV3-style recurrent dynamics, the `world_model=rssm` ablation (ALGORITHM.md §3.8).

    input       x_t = SiLU(LN(W_in [z_{t-1}, a_prev(t)]))                   (z_init, 0 at starts)
    recurrence  h_t = GRU_LN(x_t, h_{t-1})           (update-gate bias −1)
    prior       logits_p = W_p SiLU(LN(W_h h_t))
    posterior   logits_q = W_q SiLU(LN(W_e [h_t, e_t]))
    initial     h_0 = tanh(W_0), W_0 = 0;  z_init = mode of the prior at h_0

The recurrent carry of the `LatentState` is h itself ([..., h] float32). `observe` is the
sequential fold of `obs_step`; a GRU has no parallel form.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hieros_pl.config import WorldModelConfig
from hieros_pl.nn.layers import NORM_EPS, init_hidden_
from hieros_pl.world_models.dynamics import rescale_action, sequence_starts
from hieros_pl.world_models.heads import LatentHead, latent_from_logits
from hieros_pl.world_models.latent import LatentState

# DreamerV3's GRU starts with the update gate mostly closed, so h changes slowly at first.
UPDATE_GATE_BIAS = -1.0


def layer_norm_gru(gates: Tensor, deter: Tensor) -> Tensor:
    """GRU update from layer-normed gate pre-activations [reset, candidate, update]."""
    # gates: [..., 3h] float32   deter: [..., h] float32 -> [..., h] float32
    reset, candidate, update = gates.chunk(3, dim=-1)
    reset = torch.sigmoid(reset)
    candidate = torch.tanh(reset * candidate)
    update = torch.sigmoid(update + UPDATE_GATE_BIAS)
    return update * candidate + (1.0 - update) * deter


class LayerNormGRUCell(nn.Module):
    """One Linear (no bias) over [x, h] to the three gates, LayerNorm, then `layer_norm_gru`."""

    def __init__(self, input_dim: int, deter: int) -> None:
        super().__init__()
        self.gates = nn.Linear(input_dim + deter, 3 * deter, bias=False)
        self.norm = nn.LayerNorm(3 * deter, eps=NORM_EPS)
        init_hidden_(self)

    def forward(self, x: Tensor, deter: Tensor) -> Tensor:
        # x: [..., X] float32   deter: [..., h] float32 -> [..., h] float32
        return layer_norm_gru(self.norm(self.gates(torch.cat([x, deter], dim=-1))), deter)


class RSSM(nn.Module):
    """GRU dynamics with a posterior on [h_t, e_t]; implements `Dynamics`.

    Widths: `cfg.rssm.hidden` for the input layer and the prior head (DreamerV3's image layers),
    `cfg.hidden` for the posterior head.
    """

    def __init__(self, cfg: WorldModelConfig, embed_dim: int, action_dim: int) -> None:
        super().__init__()
        S, Z, hidden = cfg.stoch, cfg.classes, cfg.rssm.hidden
        self.unimix = cfg.unimix
        self.stochastic = cfg.stochastic
        self.input_layer = nn.Sequential(
            nn.Linear(S * Z + action_dim, hidden, bias=False),
            nn.LayerNorm(hidden, eps=NORM_EPS),
            nn.SiLU(),
        )
        init_hidden_(self.input_layer)
        self.cell = LayerNormGRUCell(hidden, cfg.deter)
        self.prior_head = LatentHead(cfg.deter, hidden, S, Z)
        self.posterior_head = LatentHead(cfg.deter + embed_dim, cfg.hidden, S, Z)
        self.initial_weight = nn.Parameter(torch.zeros(1, cfg.deter))

    def _latent(self, head: LatentHead, x: Tensor, sample: bool) -> tuple[Tensor, Tensor]:
        """(z, logits) from one latent head."""
        # x: [..., in] -> stoch, logits: [..., S, Z]
        return latent_from_logits(head(x), self.unimix, self.stochastic, sample)

    def prior_mode(self, deter: Tensor) -> tuple[Tensor, Tensor]:
        """(z, logits) of the prior's mode at h through the prior MLP (decoded subgoals)."""
        # deter: [..., h] float32 -> stoch, logits: [..., S, Z] float32
        return latent_from_logits(self.prior_head(deter), self.unimix, self.stochastic, False)

    def initial(self, batch_size: int, device: torch.device | str) -> LatentState:
        """h_0 = tanh(W_0), z_init = prior mode at h_0 (straight-through)."""
        # -> LatentState [N]
        deter = torch.tanh(self.initial_weight.to(device))
        stoch, logits = self._latent(self.prior_head, deter, sample=False)
        deter = deter.expand(batch_size, -1)
        return LatentState(
            stoch.expand(batch_size, *stoch.shape[1:]),
            deter,
            logits.expand(batch_size, *logits.shape[1:]),
            deter,
        )

    def imagine_step(self, prev: LatentState, action: Tensor, sample: bool = True) -> LatentState:
        """One GRU step from (z_prev, a) and the prior at the new h."""
        # prev: LatentState [N]   action: [N, A] float32 -> prior: LatentState [N]
        x = self.input_layer(torch.cat([prev.stoch.flatten(-2), rescale_action(action)], dim=-1))
        deter = self.cell(x, prev.recurrent)
        stoch, logits = self._latent(self.prior_head, deter, sample)
        return LatentState(stoch, deter, logits, deter)

    def _step(
        self, prev: LatentState, prev_action: Tensor, embed: Tensor, start: Tensor, sample: bool
    ) -> tuple[LatentState, LatentState]:
        """(posterior, prior) of one step; where start, prev := initial and prev_action := 0."""
        # prev: LatentState [N]   prev_action: [N, A]   embed: [N, E]   start: [N] bool
        N = embed.shape[0]
        prev = self.initial(N, embed.device).where(start, prev)
        prev_action = torch.where(start[:, None], torch.zeros_like(prev_action), prev_action)
        prior = self.imagine_step(prev, prev_action, sample)
        stoch, logits = self._latent(
            self.posterior_head, torch.cat([prior.deter, embed], dim=-1), sample
        )
        return LatentState(stoch, prior.deter, logits, prior.recurrent), prior

    def obs_step(
        self,
        prev: LatentState,
        prev_action: Tensor,
        embed: Tensor,
        is_first: Tensor,
        sample: bool = True,
    ) -> LatentState:
        """One acting step: prior from the carried state, posterior from [h_t, e_t]."""
        # prev: LatentState [N]   prev_action: [N, A]   embed: [N, E]   is_first: [N] bool
        # -> posterior: LatentState [N]
        return self._step(prev, prev_action, embed, is_first, sample)[0]

    def observe(
        self, embed: Tensor, action: Tensor, is_first: Tensor, sample: bool = True
    ) -> tuple[LatentState, LatentState]:
        """Fold `_step` over T positions from the initial state (position 0 is always a start)."""
        # embed: [B, T, E] float32   action: [B, T, A] float32   is_first: [B, T] bool
        # -> posterior: LatentState [B, T], prior: LatentState [B, T]
        B, T, _ = embed.shape
        starts = sequence_starts(is_first)
        state = self.initial(B, embed.device)
        posteriors, priors = [], []
        for t in range(T):
            state, prior = self._step(state, action[:, t], embed[:, t], starts[:, t], sample)
            posteriors.append(state)
            priors.append(prior)
        return LatentState.stack(posteriors), LatentState.stack(priors)

    def metrics(self) -> dict[str, Tensor]:
        """No parameter diagnostics for the GRU."""
        return {}
