"""``hieros-probe``: diagnostics read from a finished (or checkpointed) run's weights and replay."""

from hieros_pl.probes.reward import probe_reward

__all__ = ["probe_reward"]
