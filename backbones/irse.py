"""IR-SE-50: IResNet-50 with squeeze-excitation in every residual block (TFace/AdaFace IR-SE).

The SE gate sits after the block's last BN, before the residual add, as in TFace's and AdaFace's
`BasicBlockIRSE`. The rest of the layout and all parameter names are those of `iresnet.py`
(arcface_torch), plus `layer*.*.se.fc1/fc2`; TFace/AdaFace checkpoints use other names and a
max-pool shortcut on identity-width stages, so they do not load into this module as they are.
"""

from __future__ import annotations

from backbones import BACKBONES
from backbones.arguments import STANDARD, declare
from backbones.iresnet import STAGE_DEPTHS, IResNet


@BACKBONES.register("irse50")
@declare(**STANDARD)
def build_irse50(width: int = 64, embedding_size: int = 512, dropout: float = 0.0) -> IResNet:
    """IR-SE-50: stage depths (3, 4, 14, 3) with squeeze-excitation (reduction 16)."""
    return IResNet(
        STAGE_DEPTHS["ir50"],
        width=width,
        embedding_size=embedding_size,
        dropout=dropout,
        squeeze_excite=True,
    )
