"""S5WM: the S5 world-model dynamics of Hieros (ALGORITHM.md §3.2-§3.7).

    posterior   q(z_t | e_t)          logits_q = W_q SiLU(LN(W_e e_t))          (embedding only)
    input       u_t = SiLU(LN(W_in [z_{t-1}, a_prev(t)]))                     (z_init, 0 at starts)
    sequence    s5out_t, x_t = S5Stack(u_{≤t}, resets at is_first)
    output      o_t = W_out s5out_t + b_out
    prior       logits_p = W_p SiLU(LN(W_h o_t))
    deter       h_t = symlog(W_s Re[x_t] + b_s)   (state_as_deter)   or   symlog(o_t)
    initial     h_0 = GELU(W_0), W_0 = 0;  z_init = mode of the prior at h_0 (straight-through)

Dropout inside the S5 blocks follows the module's training flag: callers put the world model in
eval mode while acting and imagining (§3.4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hieros_pl.config import WorldModelConfig
from hieros_pl.nn.layers import NORM_EPS, init_hidden_
from hieros_pl.nn.s5 import S5SSM, S5Stack
from hieros_pl.nn.symlog import symlog
from hieros_pl.world_models.dynamics import dynamics_action, rescale_action, sequence_starts
from hieros_pl.world_models.heads import LatentHead, latent_from_logits
from hieros_pl.world_models.latent import LatentState


class S5WM(nn.Module):
    """S5 sequence model with an embedding-only posterior; implements `Dynamics`."""

    def __init__(self, cfg: WorldModelConfig, embed_dim: int, action_dim: int) -> None:
        super().__init__()
        S, Z, D = cfg.stoch, cfg.classes, cfg.s5.model_dim
        self.unimix = cfg.unimix
        self.stochastic = cfg.stochastic
        self.state_as_deter = cfg.s5.state_as_deter
        self.posterior_head = LatentHead(embed_dim, cfg.hidden, S, Z)
        self.input_layer = nn.Sequential(
            nn.Linear(S * Z + action_dim, D, bias=False), nn.LayerNorm(D, eps=NORM_EPS), nn.SiLU()
        )
        self.sequence = S5Stack(
            D,
            cfg.s5.state_dim,
            cfg.s5.init_blocks,
            cfg.s5.num_blocks,
            cfg.s5.dropout,
            cfg.s5.activation,
            cfg.s5.scan,
        )
        self.output_layer = nn.Linear(D, cfg.deter)
        self.prior_head = LatentHead(cfg.deter, cfg.hidden, S, Z)
        self.state_layer = (
            nn.Linear(self.sequence.state_dim_total, cfg.deter) if self.state_as_deter else None
        )
        init_hidden_(self.input_layer)
        init_hidden_(self.output_layer)
        if self.state_layer is not None:
            init_hidden_(self.state_layer)
        self.initial_weight = nn.Parameter(torch.zeros(1, cfg.deter))

    def _posterior(self, embed: Tensor, sample: bool) -> tuple[Tensor, Tensor]:
        """(z, logits) of q(z | e) for every position."""
        # embed: [..., E] -> stoch, logits: [..., S, Z]
        return latent_from_logits(self.posterior_head(embed), self.unimix, self.stochastic, sample)

    def _input(self, prev_stoch: Tensor, action: Tensor) -> Tensor:
        """u = SiLU(LN(W_in [flatten(z_prev), a])); `action` is already zeroed and rescaled."""
        # prev_stoch: [..., S, Z]   action: [..., A] -> u: [..., D]
        return self.input_layer(torch.cat([prev_stoch.flatten(-2), action], dim=-1))

    def _prior(self, s5_out: Tensor, states: Tensor, sample: bool) -> LatentState:
        """Prior latent and deter from the sequence outputs and the S5 states of each position."""
        # s5_out: [..., D] float32   states: [..., Nb, 2P] complex64 -> LatentState [...]
        output = self.output_layer(s5_out)
        stoch, logits = latent_from_logits(
            self.prior_head(output), self.unimix, self.stochastic, sample
        )
        return LatentState(stoch, self._deter(output, states), logits, states)

    def _deter(self, output: Tensor, states: Tensor) -> Tensor:
        """h from the output path o or, with state_as_deter, from Re of the S5 states."""
        # output: [..., deter] float32   states: [..., Nb, 2P] complex64 -> [..., deter]
        if self.state_layer is None:
            return symlog(output)
        return symlog(self.state_layer(states.real.flatten(-2)))

    def prior_mode(self, deter: Tensor) -> tuple[Tensor, Tensor]:
        """(z, logits) of the prior's mode at h through the prior MLP (decoded subgoals)."""
        # deter: [..., h] float32 -> stoch, logits: [..., S, Z] float32
        return latent_from_logits(self.prior_head(deter), self.unimix, self.stochastic, False)

    def initial(self, batch_size: int, device: torch.device | str) -> LatentState:
        """h_0 = GELU(W_0), z_init = prior mode at h_0 (straight-through), S5 states 0."""
        # -> LatentState [N]
        deter = F.gelu(self.initial_weight.to(device))
        stoch, logits = latent_from_logits(
            self.prior_head(deter), self.unimix, self.stochastic, sample=False
        )
        recurrent = self.sequence.initial_state(batch_size, device)
        return LatentState(
            stoch.expand(batch_size, *stoch.shape[1:]),
            deter.expand(batch_size, -1),
            logits.expand(batch_size, *logits.shape[1:]),
            recurrent,
        )

    def observe(
        self, embed: Tensor, action: Tensor, is_first: Tensor, sample: bool = True
    ) -> tuple[LatentState, LatentState]:
        """All T steps in parallel from zero S5 state; z_{t-1} := z_init and a := 0 at starts.

        The posterior and the prior of a step share its h and S5 states (§3.7).
        """
        # embed: [B, T, E] float32   action: [B, T, A] float32   is_first: [B, T] bool
        # -> posterior: LatentState [B, T], prior: LatentState [B, T]
        B = embed.shape[0]
        starts = sequence_starts(is_first)
        post_stoch, post_logits = self._posterior(embed, sample)
        initial_stoch = self.initial(B, embed.device).stoch[:, None]
        shifted = torch.cat([initial_stoch, post_stoch[:, :-1]], dim=1)
        prev_stoch = torch.where(starts[..., None, None], initial_stoch, shifted)
        u = self._input(prev_stoch, dynamics_action(action, starts))
        s5_out, states = self.sequence(u, starts)
        prior = self._prior(s5_out, states, sample)
        posterior = LatentState(post_stoch, prior.deter, post_logits, states)
        return posterior, prior

    def imagine_step(self, prev: LatentState, action: Tensor, sample: bool = True) -> LatentState:
        """One prior step from (z_prev, a) with the carried S5 states; the carry is detached."""
        # prev: LatentState [N]   action: [N, A] float32 -> prior: LatentState [N]
        N = action.shape[0]
        no_reset = torch.zeros(N, dtype=torch.bool, device=action.device)
        u = self._input(prev.stoch, rescale_action(action))
        s5_out, state = self.sequence.step(u, no_reset, prev.recurrent)
        prior = self._prior(s5_out, state, sample)
        return LatentState(prior.stoch, prior.deter, prior.logits, state.detach())

    def obs_step(
        self,
        prev: LatentState,
        prev_action: Tensor,
        embed: Tensor,
        is_first: Tensor,
        sample: bool = True,
    ) -> LatentState:
        """Sequence step from the carried state (initial state and zero action where is_first),
        then the posterior z from e_t with that step's h and S5 states (§3.7 acting)."""
        # prev: LatentState [N]   prev_action: [N, A]   embed: [N, E]   is_first: [N] bool
        # -> posterior: LatentState [N]
        N = embed.shape[0]
        # The learned initial state costs a prior-head pass: built only on steps that start one.
        if bool(is_first.any()):
            prev = self.initial(N, embed.device).where(is_first, prev)
            prev_action = torch.where(is_first[:, None], torch.zeros_like(prev_action), prev_action)
        # The prior's own latent is not needed here (the posterior replaces it): only h and the
        # S5 states of the step are computed, without the prior head.
        no_reset = torch.zeros(N, dtype=torch.bool, device=embed.device)
        u = self._input(prev.stoch, rescale_action(prev_action))
        s5_out, state = self.sequence.step(u, no_reset, prev.recurrent)
        deter = self._deter(self.output_layer(s5_out), state)
        stoch, logits = self._posterior(embed, sample)
        return LatentState(stoch, deter, logits, state.detach())

    def metrics(self) -> dict[str, Tensor]:
        """max Re Λ over every SSM (nothing keeps it negative, §3.5)."""
        ssms = [module for module in self.sequence.modules() if isinstance(module, S5SSM)]
        return {"max_real_lambda": torch.stack([ssm.max_real_lambda() for ssm in ssms]).max()}
