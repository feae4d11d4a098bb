"""Face-recognition backbones: the BACKBONES registry and `build_backbone(name, **kwargs)`.

Adding a backbone = one module that decorates its factory with `@BACKBONES.register("name")`
plus one import line below. Every backbone maps (N,3,112,112) float in [-1,1] to
(N, embedding_size) un-normalised embeddings.
"""

from __future__ import annotations

from torch import nn

from backbones.arguments import check_arguments
from bench.core.registry import Registry

# Defined before the family modules are imported: they register into it.
BACKBONES: Registry = Registry("backbone")

from backbones import iresnet, irse, mobilefacenet  # noqa: E402,F401  (fills BACKBONES)


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Build the registered backbone `name` (CatalogError with close matches if unknown; ConfigError
    naming the key for an unknown, wrong-typed or out-of-range argument, before allocating)."""
    factory = BACKBONES.get(name)
    check_arguments(name, factory, kwargs)
    return factory(**kwargs)


def backbone_names() -> list[str]:
    """Names of all registered backbones, sorted."""
    return BACKBONES.names()


__all__ = ["BACKBONES", "build_backbone", "backbone_names"]
