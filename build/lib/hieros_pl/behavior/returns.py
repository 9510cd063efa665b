"""λ-returns and the discount weights of imagined rollouts (ALGORITHM.md §4.5, §12 D2).

A rollout has states s_0..s_H. The recursion over the H transitions is always

    R_H = v(s_H),   R_n = r_n + γ c_n [ (1 − λ) v(s_{n+1}) + λ R_{n+1} ],   n = H−1, …, 0

and the two indexings differ only in which state's reward and continue probability a transition
uses: the default (DreamerV3) takes those of the state it arrives in, r(s_{n+1}) and ĉ(s_{n+1});
``compat.lambda_return_original`` takes those of the state it leaves, r(s_n) and ĉ(s_n).
:func:`transition_slices` picks the slices, :func:`lambda_return` runs the recursion and
:func:`discount_weights` gives the per-step loss weights w_n.
"""

from __future__ import annotations

import torch
from torch import Tensor


def transition_slices(rewards: Tensor, continues: Tensor, original: bool) -> tuple[Tensor, Tensor]:
    """Per-state rewards and continue probabilities → per-transition r_n and c_n.

    Default: the transition s_n → s_{n+1} gets r(s_{n+1}) and ĉ(s_{n+1});
    original (D2): r(s_n) and ĉ(s_n).
    """
    # rewards: [N, H+1] float32   continues: [N, H+1] float32 in [0, 1]
    # -> rewards: [N, H] float32, continues: [N, H] float32
    if original:
        return rewards[:, :-1], continues[:, :-1]
    return rewards[:, 1:], continues[:, 1:]


def discount_weights(
    continues: Tensor, discount: float, start_is_terminal: Tensor, original: bool
) -> Tensor:
    """Loss weights w_n of the H transitions, treated as constants (returned detached).

    Default: w_0 = 1 − is_terminal(s_0), w_n = w_{n−1} γ ĉ(s_n).
    Original (D2): w_0 = 1, w_n = Π_{m<n} γ ĉ(s_m).
    """
    # continues: [N, H+1] float32   start_is_terminal: [N] bool -> weights: [N, H] float32
    N, H_plus_1 = continues.shape
    H = H_plus_1 - 1
    continues = continues.detach()
    if original:
        factors = discount * continues[:, : H - 1]
        first = torch.ones(N, 1, dtype=continues.dtype, device=continues.device)
    else:
        factors = discount * continues[:, 1:H]
        first = (1.0 - start_is_terminal.to(continues.dtype))[:, None]
    return torch.cumprod(torch.cat([first, factors], dim=1), dim=1)


def lambda_return(
    rewards: Tensor, continues: Tensor, values: Tensor, discount: float, lam: float
) -> Tensor:
    """λ-returns R_0..R_{H−1}, vectorised over time (no Python loop over H).

    The recursion R_n = a_n + b_n R_{n+1} with a_n = r_n + γ c_n (1 − λ) v_{n+1} and
    b_n = γ c_n λ unrolls to R_n = Σ_{k≥n} (Π_{n≤m<k} b_m) a_k + (Π_{n≤m<H} b_m) v_H. The products
    come from one cumprod over an [H, H] upper-triangular mask, not from ratios of a cumprod,
    so zero continue probabilities are exact. Costs O(N·H²) memory, which is small for H ≈ 15.
    Differentiable in all inputs. Equal to :func:`lambda_return_reference`.
    """
    # rewards: [N, H] float32   continues: [N, H] float32   values: [N, H+1] float32
    # -> returns: [N, H] float32
    _, H = rewards.shape
    factors = discount * continues * lam  # b_n
    inputs = rewards + discount * continues * (1.0 - lam) * values[:, 1:]  # a_n
    row = torch.arange(H, device=rewards.device)
    active = row[None, :] >= row[:, None]  # [H(n), H(m)]: factor m belongs to the product from n
    masked = torch.where(active, factors[:, None, :], torch.ones_like(factors[:, None, :]))
    inclusive = torch.cumprod(masked, dim=2)  # [N, H(n), H(k)]: Π_{n≤m≤k} b_m for k ≥ n
    exclusive = torch.cat([torch.ones_like(inclusive[..., :1]), inclusive[..., :-1]], dim=2)
    exclusive = exclusive * active  # Π_{n≤m<k} b_m, zero for k < n
    bootstrap = inclusive[..., -1] * values[:, -1:]  # [N, H]
    return (exclusive * inputs[:, None, :]).sum(dim=2) + bootstrap


def lambda_return_reference(
    rewards: Tensor, continues: Tensor, values: Tensor, discount: float, lam: float
) -> Tensor:
    """λ-returns by the explicit backward loop; the reference for :func:`lambda_return`."""
    # rewards: [N, H] float32   continues: [N, H] float32   values: [N, H+1] float32
    # -> returns: [N, H] float32
    _, H = rewards.shape
    next_return = values[:, H]
    returns = []
    for n in reversed(range(H)):
        blend = (1.0 - lam) * values[:, n + 1] + lam * next_return
        next_return = rewards[:, n] + discount * continues[:, n] * blend
        returns.append(next_return)
    return torch.stack(returns[::-1], dim=1)
