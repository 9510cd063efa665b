"""The world model of one level: encoder, dynamics, decoder, reward and continue heads, losses.

ALGORITHM.md §3. `loss` returns the UNWEIGHTED mean of every term, keyed like
`WorldModelConfig.loss_scales`; the caller weights them with `weighted_total`:

    decoder   image: Σ_pixels (x̂ − (x/255 − 0.5))²;  vector: Σ_dims (x̂ − symlog(x))²
    reward    −log p(r_t) under the two-hot symlog head
    continue  −log p(1 − is_terminal_t) under the Bernoulli head
    dyn       max(free, Σ_S KL(sg(q_t) ‖ p_t))     no_stoch: mean_SZ max(free, (sg(q) − p)²)
    rep       max(free, Σ_S KL(q_t ‖ sg(p_t)))     no_stoch: mean_SZ max(free, (q − sg(p))²)

Action alignment (§12 D1): the dynamics input at position t is row t−1's action by default
(zero at t = 0 and at is_first); `action_alignment_original=True` feeds row t's own action.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hieros_pl.config import WorldModelConfig
from hieros_pl.data.batch import Batch
from hieros_pl.nn.distributions import (
    TWO_HOT_BINS,
    TwoHot,
    bernoulli_log_prob,
    categorical_entropy,
    categorical_kl,
)
from hieros_pl.nn.layers import MLP, ConvDecoder, ConvEncoder
from hieros_pl.nn.symlog import symexp, symlog, symlog_squared_error
from hieros_pl.world_models.dynamics import Dynamics
from hieros_pl.world_models.latent import LatentState
from hieros_pl.world_models.rssm import RSSM
from hieros_pl.world_models.s5wm import S5WM

DYNAMICS: dict[str, type[S5WM] | type[RSSM]] = {"s5wm": S5WM, "rssm": RSSM}


def previous_actions(action: Tensor, original: bool) -> Tensor:
    """The action input of each position: row t−1's action (row t's when `original`, D1).

    Position 0 gets zeros; the dynamics also zero the input wherever is_first.
    """
    # action: [B, T, A] float32 -> [B, T, A] float32
    if original:
        return action
    return torch.cat([torch.zeros_like(action[:, :1]), action[:, :-1]], dim=1)


def kl_balance(
    posterior_logits: Tensor, prior_logits: Tensor, free_nats: float
) -> tuple[Tensor, Tensor]:
    """(dyn, rep) per (b, t): KL summed over the S latents, then clipped below at `free_nats`."""
    # posterior_logits, prior_logits: [B, T, S, Z] float32 -> dyn, rep: [B, T] float32
    dyn = categorical_kl(posterior_logits.detach(), prior_logits).sum(-1)
    rep = categorical_kl(posterior_logits, prior_logits.detach()).sum(-1)
    return dyn.clamp_min(free_nats), rep.clamp_min(free_nats)


def logit_balance(
    posterior_logits: Tensor, prior_logits: Tensor, free_nats: float
) -> tuple[Tensor, Tensor]:
    """no_stoch (dyn, rep) per (b, t): each squared logit error clipped at `free_nats`, then
    averaged over the S·Z elements (so the mean over (b, t) is the mean over all elements)."""
    # posterior_logits, prior_logits: [B, T, S, Z] float32 -> dyn, rep: [B, T] float32
    dyn = (posterior_logits.detach() - prior_logits) ** 2
    rep = (posterior_logits - prior_logits.detach()) ** 2
    return dyn.clamp_min(free_nats).mean((-2, -1)), rep.clamp_min(free_nats).mean((-2, -1))


def image_targets(obs: Tensor) -> Tensor:
    """uint8 images to the decoder's target range x/255 − 0.5."""
    # obs: [..., Himg, Wimg, C] uint8 -> [..., Himg, Wimg, C] float32
    return obs.float() / 255.0 - 0.5


def correlation(prediction: Tensor, target: Tensor) -> Tensor:
    """Pearson correlation over all elements; 0 where either side is constant (a batch without
    rewards), so that the logged metric stays finite."""
    # prediction, target: [...] float32 -> scalar
    x = prediction.flatten() - prediction.mean()
    y = target.flatten() - target.mean()
    scale = torch.sqrt((x * x).sum() * (y * y).sum())
    return torch.where(
        scale > 1e-12, (x * y).sum() / scale.clamp_min(1e-12), torch.zeros_like(scale)
    )


def weighted_total(losses: dict[str, Tensor], scales: dict[str, float]) -> Tensor:
    """Σ scale·loss; the loss keys must equal the scale keys (STYLE rule 10)."""
    # losses: {term: scalar float32} -> scalar float32
    assert losses.keys() == scales.keys(), f"{sorted(losses)} != {sorted(scales)}"
    return torch.stack([scales[name] * value for name, value in losses.items()]).sum()


class WorldModel(nn.Module):
    """Encoder, `DYNAMICS[cfg.dynamics]`, decoder and heads of one level (ALGORITHM.md §3)."""

    def __init__(
        self,
        cfg: WorldModelConfig,
        obs_shape: tuple[int, ...],
        obs_is_image: bool,
        action_dim: int,
        action_alignment_original: bool = False,
    ) -> None:
        super().__init__()
        if cfg.dynamics not in DYNAMICS:
            raise ValueError(
                f"world_model.dynamics {cfg.dynamics!r} unknown; valid: {', '.join(DYNAMICS)}"
            )
        self.cfg = cfg
        self.obs_shape = tuple(obs_shape)
        self.obs_is_image = obs_is_image
        self.action_dim = action_dim
        self.action_alignment_original = action_alignment_original
        self.feature_dim = cfg.stoch * cfg.classes + cfg.deter
        self.actor_feature_dim = self.feature_dim + (3 if cfg.stochastic else 2)
        self.encoder, self.decoder = self._build_obs_networks(cfg, self.feature_dim)
        self.dynamics: Dynamics = DYNAMICS[cfg.dynamics](cfg, self.encoder.out_dim, action_dim)
        head = (self.feature_dim, cfg.head_units, cfg.head_layers)
        self.reward_head = MLP(*head, TWO_HOT_BINS, output_scale=cfg.reward_output_scale)
        self.continue_head = MLP(*head, 1, output_scale=1.0)

    def _build_obs_networks(
        self, cfg: WorldModelConfig, feature_dim: int
    ) -> tuple[ConvEncoder | MLP, ConvDecoder | MLP]:
        """Conv encoder/decoder for images [Himg, Wimg, C]; symlog-input MLPs for vectors [O]."""
        if self.obs_is_image:
            size, _, channels = self.obs_shape
            encoder = ConvEncoder(size, channels, cfg.cnn_depth, cfg.cnn_minres)
            decoder = ConvDecoder(feature_dim, size, channels, cfg.cnn_depth, cfg.cnn_minres)
            return encoder, decoder
        (obs_dim,) = self.obs_shape
        vector_encoder = MLP(obs_dim, cfg.mlp_units, cfg.mlp_layers, None, symlog_inputs=True)
        vector_decoder = MLP(feature_dim, cfg.mlp_units, cfg.mlp_layers, obs_dim, output_scale=1.0)
        return vector_encoder, vector_decoder

    def _check_obs(self, obs: Tensor, batch_ndim: int) -> None:
        """Assert obs trailing dims and dtype (uint8 images, float32 vectors)."""
        # obs: [*batch, Himg, Wimg, C] uint8 | [*batch, O] float32, batch_ndim leading dims
        assert tuple(obs.shape[batch_ndim:]) == self.obs_shape, f"obs {tuple(obs.shape)}"
        dtype = torch.uint8 if self.obs_is_image else torch.float32
        assert obs.dtype == dtype, f"obs {obs.dtype}, want {dtype}"

    def initial(self, batch_size: int, device: torch.device | str) -> LatentState:
        """The learned initial latent."""
        # -> LatentState [N]
        return self.dynamics.initial(batch_size, device)

    def observe(
        self, obs: Tensor, action: Tensor, is_first: Tensor, sample: bool = True
    ) -> tuple[LatentState, LatentState]:
        """(posterior, prior) over a replayed sequence; `action` is the raw replay column
        (row t = action chosen at o_t), aligned here according to D1."""
        # obs: [B, T, ...]   action: [B, T, A] float32   is_first: [B, T] bool
        # -> posterior, prior: LatentState [B, T]
        B, T = is_first.shape
        self._check_obs(obs, 2)
        assert action.shape == (B, T, self.action_dim), f"action {tuple(action.shape)}"
        assert is_first.dtype == torch.bool, f"is_first {is_first.dtype}"
        embed = self.encoder(obs)
        aligned = previous_actions(action, self.action_alignment_original)
        return self.dynamics.observe(embed, aligned, is_first, sample)

    def obs_step(
        self,
        prev: LatentState,
        prev_action: Tensor,
        obs: Tensor,
        is_first: Tensor,
        sample: bool = True,
    ) -> LatentState:
        """One acting step: prev state and the action taken at the previous obs, then obs_t.

        Where is_first the carried state and action are replaced by the initial state and zeros.
        Put the module in eval mode while acting (S5 dropout follows the training flag).
        """
        # prev: LatentState [E]   prev_action: [E, A] float32   obs: [E, ...]   is_first: [E] bool
        # -> posterior: LatentState [E]
        (E,) = is_first.shape
        self._check_obs(obs, 1)
        assert prev_action.shape == (E, self.action_dim), f"prev_action {tuple(prev_action.shape)}"
        return self.dynamics.obs_step(prev, prev_action, self.encoder(obs), is_first, sample)

    def imagine_step(self, prev: LatentState, action: Tensor, sample: bool = True) -> LatentState:
        """One prior step; eval mode expected (no dropout in imagination, §3.4)."""
        # prev: LatentState [N]   action: [N, A] float32 -> prior: LatentState [N]
        assert action.shape == (*prev.batch_shape, self.action_dim), f"action {tuple(action.shape)}"
        return self.dynamics.imagine_step(prev, action, sample)

    def reward(self, feature: Tensor) -> Tensor:
        """Predicted reward, the two-hot head's mean over ``world_model.reward_bins``."""
        # feature: [..., F] float32 -> [...] float32
        return TwoHot(self.reward_head(feature), self.cfg.reward_bins).mean()

    def continue_prob(self, feature: Tensor) -> Tensor:
        """Predicted probability that the episode continues, in [0, 1]."""
        # feature: [..., F] float32 -> [...] float32
        return torch.sigmoid(self.continue_head(feature)[..., 0])

    def decode(self, feature: Tensor) -> Tensor:
        """Predicted observation in obs units: images in [0, 1] channels-last, raw vectors."""
        # feature: [..., F] float32 -> [..., Himg, Wimg, C] | [..., O] float32
        prediction = self.decoder(feature)
        return (prediction + 0.5).clamp(0.0, 1.0) if self.obs_is_image else symexp(prediction)

    def actor_features(self, state: LatentState) -> Tensor:
        """feat⁺ = [feat, symlog(r̂), symlog(ĉ), symlog(H_z)] (§3.11); no H_z when not stochastic."""
        # state: LatentState [...] -> [..., actor_feature_dim] float32
        return self.actor_features_and_heads(state)[0]

    def actor_features_and_heads(self, state: LatentState) -> tuple[Tensor, Tensor, Tensor]:
        """(feat⁺, r̂, ĉ): imagination keeps the head predictions feat⁺ is built from."""
        # state: LatentState [...] -> feat⁺: [..., actor_feature_dim], r̂: [...], ĉ: [...] float32
        feature = state.feature()
        reward, continues = self.reward(feature), self.continue_prob(feature)
        extras = [reward, continues]
        if self.cfg.stochastic:
            extras.append(categorical_entropy(state.logits).sum(-1))
        actor_features = torch.cat([feature, symlog(torch.stack(extras, dim=-1))], dim=-1)
        return actor_features, reward, continues

    def _decoder_loss(self, feature: Tensor, obs: Tensor) -> tuple[Tensor, Tensor]:
        """(per-(b, t) decoder NLL, mean squared error per element) for images or vectors."""
        # feature: [B, T, F]   obs: [B, T, ...] -> loss: [B, T], mse: scalar
        prediction = self.decoder(feature)
        if self.obs_is_image:
            squared = (prediction - image_targets(obs)) ** 2
            return squared.sum((-3, -2, -1)), squared.detach().mean()
        mse = ((prediction - symlog(obs)) ** 2).detach().mean()
        return symlog_squared_error(prediction, obs), mse

    def loss(self, batch: Batch) -> tuple[dict[str, Tensor], LatentState, dict[str, Tensor]]:
        """Unweighted loss means keyed like cfg.loss_scales, the posterior [B, T], and metrics."""
        # batch: Batch [B, T] -> losses: {term: scalar}, posterior: LatentState [B, T],
        # metrics: {name: detached scalar}
        B, T = batch.reward.shape
        assert batch.is_terminal.shape == (B, T), f"is_terminal {tuple(batch.is_terminal.shape)}"
        posterior, prior = self.observe(batch.obs, batch.action, batch.is_first)
        feature = posterior.feature()
        decoder, obs_mse = self._decoder_loss(feature, batch.obs)
        reward_logits = self.reward_head(feature)
        continue_target = 1.0 - batch.is_terminal.float()
        balance = kl_balance if self.cfg.stochastic else logit_balance
        dyn, rep = balance(posterior.logits, prior.logits, self.cfg.free_nats)
        per_step = {
            "decoder": decoder,
            "reward": -TwoHot(reward_logits, self.cfg.reward_bins).log_prob(batch.reward),
            "continue": -bernoulli_log_prob(self.continue_head(feature)[..., 0], continue_target),
            "dyn": dyn,
            "rep": rep,
        }
        losses = {name: value.mean() for name, value in per_step.items()}
        scales = self.cfg.loss_scales
        assert losses.keys() == scales.keys(), f"{sorted(losses)} != {sorted(scales)}"
        metrics = self._metrics(losses, posterior, prior, reward_logits, batch.reward)
        metrics["obs_mse"] = obs_mse
        return losses, posterior, metrics

    def _metrics(
        self,
        losses: dict[str, Tensor],
        posterior: LatentState,
        prior: LatentState,
        reward_logits: Tensor,
        reward: Tensor,
    ) -> dict[str, Tensor]:
        """Detached scalars: the terms, latent entropies, KL(q ‖ p), reward error, dynamics'."""
        # reward_logits: [B, T, 255]   reward: [B, T] float32
        with torch.no_grad():
            posterior_logits = torch.log_softmax(posterior.logits, -1)
            prior_logits = torch.log_softmax(prior.logits, -1)
            metrics = {name: value.detach() for name, value in losses.items()}
            metrics["posterior_entropy"] = categorical_entropy(posterior_logits).sum(-1).mean()
            metrics["prior_entropy"] = categorical_entropy(prior_logits).sum(-1).mean()
            metrics["kl"] = categorical_kl(posterior_logits, prior_logits).sum(-1).mean()
            predicted = TwoHot(reward_logits, self.cfg.reward_bins).mean()
            metrics["reward_error"] = (predicted - reward).abs().mean()
            metrics["reward_abs"] = reward.abs().mean()
            metrics["reward_corr"] = correlation(predicted, reward)
            metrics.update(self.dynamics.metrics())
        return metrics
