"""World-model timings for hieros-bench: one update, peak memory, parameters, imagination.

Figures per size ("paper": `WorldModelConfig()` defaults, 64×64×3 images, A = 18; "tiny": the
sizes of conf/size/tiny.yaml at 16×16×3):
- `world_model_update`: loss forward + backward + AdamW step at B = 16, T = 64, median ms;
- `world_model_update_peak_memory`: CUDA peak allocation, or on CPU the growth of the process'
  max RSS during the update runs (a lower bound: memory below an earlier peak is not seen);
- `params_<component>` (paper only): trainable scalars per component (ALGORITHM.md §13);
- `imagine_16_steps`: 16 `imagine_step`s from 1024 start states, without grad and with a graph
  plus a backward pass through the features.
"""

from __future__ import annotations

import dataclasses
import resource
from collections.abc import Callable
from typing import Any

import torch

from hieros_pl.bench.timing import median_ms
from hieros_pl.config import S5Config, WorldModelConfig
from hieros_pl.data.batch import Batch
from hieros_pl.nn.layers import count_parameters
from hieros_pl.world_models.latent import LatentState
from hieros_pl.world_models.world_model import WorldModel, weighted_total

BATCH, LENGTH = 16, 64
PAPER_ACTIONS = 18
IMAGINE_STARTS, IMAGINE_STEPS = 1024, 16


@dataclasses.dataclass(frozen=True)
class BenchSize:
    """One benchmarked model size."""

    cfg: WorldModelConfig
    image_size: int
    update_repeats: int


def _tiny_config() -> WorldModelConfig:
    """The world-model sizes of conf/size/tiny.yaml."""
    s5 = S5Config(model_dim=64, state_dim=16, init_blocks=2, num_blocks=1)
    return WorldModelConfig(
        stoch=8, classes=8, deter=64, hidden=64, cnn_depth=8, mlp_units=64, head_units=64, s5=s5
    )


SIZES: dict[str, Callable[[], BenchSize]] = {
    "tiny": lambda: BenchSize(_tiny_config(), image_size=16, update_repeats=5),
    # A paper-size update takes seconds on a CPU; two timed repeats keep the suite short.
    "paper": lambda: BenchSize(WorldModelConfig(), image_size=64, update_repeats=2),
}


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _random_batch(image_size: int, device: torch.device) -> Batch:
    """A [16, 64] batch of random frames and one-hot actions with a few episode starts."""
    # -> Batch [B, T] with obs [B, T, Himg, Wimg, 3] uint8
    shape = (BATCH, LENGTH)
    is_first = torch.rand(shape) < 0.02
    is_first[:, 0] = True
    flags = torch.zeros(shape, dtype=torch.bool)
    batch = Batch(
        obs=torch.randint(0, 256, (*shape, image_size, image_size, 3), dtype=torch.uint8),
        action=torch.eye(PAPER_ACTIONS)[torch.randint(0, PAPER_ACTIONS, shape)],
        reward=torch.randn(shape),
        is_first=is_first,
        is_last=flags,
        is_terminal=flags,
        subgoal=torch.zeros(*shape, 0),
        subgoal_code=torch.zeros(*shape, 0),
    )
    return batch.to(device)


def _max_rss_mb() -> float:
    """The process' peak resident set size so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _update_figures(model: WorldModel, size: BenchSize, tags: dict[str, Any]) -> list[dict]:
    """Median update time and the peak memory of the update runs."""
    device = _device()
    batch = _random_batch(size.image_size, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-8, weight_decay=0.0)

    def update() -> None:
        losses, _, _ = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        weighted_total(losses, model.cfg.loss_scales).backward()
        optimizer.step()

    model.train()
    rss_before = _max_rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    milliseconds = median_ms(update, size.update_repeats)
    if device.type == "cuda":
        memory, kind = torch.cuda.max_memory_allocated() / 2**20, "cuda_peak_allocated"
    else:
        memory, kind = _max_rss_mb() - rss_before, "max_rss_growth"
    return [
        {"name": "world_model_update", "value": milliseconds, "unit": "ms", **tags},
        {"name": "world_model_update_peak_memory", "value": memory, "unit": "MiB", "kind": kind}
        | tags,
    ]


def _imagine(model: WorldModel, start: LatentState, actions: torch.Tensor) -> torch.Tensor:
    """Roll IMAGINE_STEPS prior steps and return the stacked features."""
    # start: LatentState [N]   actions: [N, H, A] -> features: [N, H, F]
    state, features = start, []
    for step in range(actions.shape[1]):
        state = model.imagine_step(state, actions[:, step])
        features.append(state.feature())
    return torch.stack(features, dim=1)


def _imagination_figures(model: WorldModel, tags: dict[str, Any]) -> list[dict]:
    """16-step imagination from 1024 starts, without grad and with forward + backward."""
    device = _device()
    model.eval()
    start = model.initial(IMAGINE_STARTS, device).detach()
    index = torch.randint(0, model.action_dim, (IMAGINE_STARTS, IMAGINE_STEPS), device=device)
    actions = torch.eye(model.action_dim, device=device)[index]

    def without_grad() -> None:
        with torch.no_grad():
            _imagine(model, start, actions)

    def with_grad() -> None:
        model.zero_grad(set_to_none=True)
        _imagine(model, start, actions).mean().backward()

    shape = {"starts": IMAGINE_STARTS, "steps": IMAGINE_STEPS}
    return [
        {"name": "imagine_16_steps", "value": median_ms(without_grad, 3), "unit": "ms"}
        | {"grad": False, **shape, **tags},
        {"name": "imagine_16_steps", "value": median_ms(with_grad, 3), "unit": "ms"}
        | {"grad": True, **shape, **tags},
    ]


def _parameter_figures(model: WorldModel, tags: dict[str, Any]) -> list[dict]:
    """Trainable scalars per component (compare ALGORITHM.md §13)."""
    dynamics = model.get_submodule("dynamics")
    components = {
        "encoder": model.encoder,
        "dynamics": dynamics,
        "decoder": model.decoder,
        "reward_head": model.reward_head,
        "continue_head": model.continue_head,
        "total": model,
    }
    if hasattr(dynamics, "sequence"):
        components["s5_blocks"] = dynamics.get_submodule("sequence")
    return [
        {"name": f"params_{name}", "value": count_parameters(module), "unit": "params", **tags}
        for name, module in components.items()
    ]


def bench_world_model(size: str = "all") -> list[dict[str, Any]]:
    """Figures for one size ("paper" | "tiny") or both ("all", tiny first so that the CPU
    max-RSS growth of each is visible)."""
    names = list(SIZES) if size == "all" else [size]
    if any(name not in SIZES for name in names):
        raise ValueError(f"unknown world-model bench size {size!r}; valid: all, {', '.join(SIZES)}")
    figures: list[dict[str, Any]] = []
    for name in names:
        spec = SIZES[name]()
        torch.manual_seed(0)
        model = WorldModel(spec.cfg, (spec.image_size, spec.image_size, 3), True, PAPER_ACTIONS)
        model = model.to(_device())
        tags = {"size": name, "threads": torch.get_num_threads(), "device": _device().type}
        figures += _update_figures(model, spec, {"batch_size": BATCH, "T": LENGTH, **tags})
        if name == "paper":
            figures += _parameter_figures(model, tags)
        figures += _imagination_figures(model, tags)
    return figures
