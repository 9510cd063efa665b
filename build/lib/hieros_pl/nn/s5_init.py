"""Initialisation of one S5 SSM: block-diagonal DPLR HiPPO-N eigenbasis (ALGORITHM.md §3.5).

Complex parameters come back as real [..., 2] tensors of (real, imaginary) parts, the layout in
which `S5SSM` stores them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from hieros_pl.nn.layers import TRUNCATED_NORMAL_STD

STEP_MIN = 0.001
"""Smallest initial Δ (original dt_min)."""
STEP_MAX = 0.1
"""Largest initial Δ (original dt_max)."""


@dataclass(frozen=True)
class S5InitialValues:
    """Initial values of the S5SSM parameters, as real tensors in float32."""

    eigenvalues: Tensor
    """Λ as [P, 2] (Re, Im)."""
    input_matrix: Tensor
    """B̃ = V⁻¹_blk B as [P, D, 2]."""
    output_matrix: Tensor
    """C̃ = C V_blk as [D, P, 2]."""
    skip_weight: Tensor
    """D_skip as [D], U[0, 1)."""
    log_step: Tensor
    """log Δ as [P], U[ln 0.001, ln 0.1]."""


def hippo_legs(N: int) -> Tensor:
    """HiPPO-LegS matrix: A_nk = -√(2n+1)√(2k+1) for n > k, A_nn = -(n+1), 0 above the diagonal."""
    # -> A: [N, N] float64
    index = torch.arange(N, dtype=torch.float64)
    root = torch.sqrt(2 * index + 1)
    return -torch.outer(root, root).tril(-1) - torch.diag(index + 1)


def hippo_legs_normal(N: int) -> Tensor:
    """Normal part S = A + p pᵀ of HiPPO-LegS, p_n = √(n + ½); diag S = -½ and S + ½I is skew."""
    # -> S: [N, N] float64
    low_rank = torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)
    return hippo_legs(N) + torch.outer(low_rank, low_rank)


def dplr_hippo_blocks(P: int, J: int) -> tuple[Tensor, Tensor, Tensor]:
    """Eigenvalues and eigenvectors of block_diag(S, …, S) with J blocks of size N = P/J.

    Returns (Λ, V_blk, V_blk⁻¹) with block_diag(S) = V_blk diag(Λ) V_blk⁻¹, Re Λ = -½, Im Λ
    repeating with period N, V_blk unitary and V_blk⁻¹ = V_blkᴴ.
    """
    # -> Lambda: [P] complex64, V_blk: [P, P] complex64, V_blk_inverse: [P, P] complex64
    if J <= 0 or P % J:
        raise ValueError(f"state_dim P={P} must be a positive multiple of init_blocks J={J}")
    N = P // J
    normal = hippo_legs_normal(N)
    skew = normal + 0.5 * torch.eye(N, dtype=torch.float64)
    # -i·K is Hermitian for skew-symmetric K, so eigh gives a unitary V and real μ with K = V iμ Vᴴ.
    imaginary, eigenvectors = torch.linalg.eigh(-1j * skew.to(torch.complex128))
    real = normal.diagonal().mean().expand(N)
    block_eigenvalues = torch.complex(real, imaginary)
    eigenvalues = block_eigenvalues.repeat(J).to(torch.complex64)
    V_blk = torch.block_diag(*[eigenvectors] * J).to(torch.complex64)
    return eigenvalues, V_blk, V_blk.conj().T.contiguous()


def lecun_normal_original(
    shape: tuple[int, ...], fan_in: int, generator: torch.Generator | None = None
) -> Tensor:
    """The original's "LeCun normal": N(0,1) truncated to [-2, 2], times 0.87962566·√(1/fan_in).

    Effective std 0.7737/√fan_in, not JAX's 1/√fan_in; reproduced on purpose (ALGORITHM.md §3.5).
    """
    # -> sample: shape float32
    # Multiplying by the truncated std where JAX divides gives the 0.87962566² ≈ 0.7737 factor.
    sample = torch.empty(shape)
    torch.nn.init.trunc_normal_(sample, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=generator)
    return sample * (TRUNCATED_NORMAL_STD * math.sqrt(1.0 / fan_in))


def log_uniform_log_step(P: int, generator: torch.Generator | None = None) -> Tensor:
    """log Δ ~ U[ln STEP_MIN, ln STEP_MAX] per state."""
    # -> log_step: [P] float32
    low, high = math.log(STEP_MIN), math.log(STEP_MAX)
    return low + (high - low) * torch.rand(P, generator=generator)


def s5_initial_values(
    model_dim: int, state_dim: int, init_blocks: int, generator: torch.Generator | None = None
) -> S5InitialValues:
    """Draw every S5SSM parameter as the original does (ALGORITHM.md §3.5, "Initialisation")."""
    # -> eigenvalues: [P, 2], input_matrix: [P, D, 2], output_matrix: [D, P, 2], skip_weight: [D],
    #    log_step: [P], all float32
    D, P = model_dim, state_dim
    eigenvalues, V_blk, V_blk_inverse = dplr_hippo_blocks(P, init_blocks)
    input_real = lecun_normal_original((P, D), fan_in=P, generator=generator)
    input_matrix = V_blk_inverse @ input_real.to(torch.complex64)
    # C_re and C_im are drawn jointly as one [D, P, 2] tensor, hence fan_in = D·P.
    output_pairs = lecun_normal_original((D, P, 2), fan_in=D * P, generator=generator)
    output_matrix = torch.view_as_complex(output_pairs) @ V_blk
    return S5InitialValues(
        eigenvalues=torch.view_as_real(eigenvalues).clone(),
        input_matrix=torch.view_as_real(input_matrix).clone(),
        output_matrix=torch.view_as_real(output_matrix).clone(),
        skip_weight=torch.rand(D, generator=generator),
        log_step=log_uniform_log_step(P, generator),
    )
