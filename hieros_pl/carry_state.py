"""Dataclass trees (the hierarchy's acting carry) to plain containers of tensors and back.

``to_tree`` turns dataclasses into dicts and lists/tuples into lists, keeping tensors and Python
scalars; the result loads under ``torch.load(weights_only=True)``. ``from_tree`` rebuilds the
object using a template of the same structure (e.g. a fresh ``initial_carry``) for the types.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch


def to_tree(value: Any) -> Any:
    """Plain-container copy of ``value`` (tensors detached and moved to the CPU)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: to_tree(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_tree(item) for item in value]
    if isinstance(value, dict):
        return {key: to_tree(item) for key, item in value.items()}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint tree")


def from_tree(template: Any, tree: Any) -> Any:
    """Rebuild ``tree`` with the types of ``template``; tensors go to the template's device."""
    if dataclasses.is_dataclass(template) and not isinstance(template, type):
        names = [item.name for item in dataclasses.fields(template)]
        if not isinstance(tree, dict) or set(tree) != set(names):
            raise ValueError(f"saved {type(template).__name__} has fields {sorted(tree)}")
        values = {name: from_tree(getattr(template, name), tree[name]) for name in names}
        return type(template)(**values)
    if isinstance(template, list | tuple):
        if len(template) != len(tree):
            raise ValueError(f"saved list has {len(tree)} items, expected {len(template)}")
        return type(template)(from_tree(item, saved) for item, saved in zip(template, tree))
    if isinstance(template, dict):
        return {key: from_tree(template[key], tree[key]) for key in template}
    if isinstance(template, torch.Tensor):
        if tree.shape != template.shape or tree.dtype != template.dtype:
            raise ValueError(
                f"saved tensor {tuple(tree.shape)} {tree.dtype} does not fit "
                f"{tuple(template.shape)} {template.dtype}"
            )
        return tree.to(template.device)
    return tree
