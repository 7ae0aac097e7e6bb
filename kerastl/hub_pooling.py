"""How step 6 pools a KerasHub backbone's output, in words: one entry per pooling.

A family's `"pooling"` in `runtime/families.json` names one of `POOLINGS`;
`kerastl.runtime.pool_tokens` pools that way, and the generated script's
step 6 comment and `kerastl info` say what it keeps and why, from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pooling:
    """One way of pooling a backbone's tokens into the head's input.

    Attributes:
        summary: What it keeps, in a few words (`kerastl info`).
        step: The comment of step 6, one line each (after `6. `).
    """

    summary: str
    step: tuple[str, ...]


POOLINGS: dict[str, Pooling] = {
    # DINOv2's linear evaluation (Oquab et al. 2023, facebookresearch/dinov2
    # eval/linear.py): the class token beside the average of the patch tokens.
    "class-and-patches": Pooling(
        summary="class token + mean of the patch tokens (registers left out)",
        step=(
            "Pool the tokens as DINOv2's linear evaluation does: the class token",
            "beside the mean of the patch tokens (register tokens left out).",
        ),
    ),
    # keras-hub's SigLIPVisionEncoder ends with SigLIPMultiHeadAttentionPooling
    # (a learned probe attending to every patch token), as SigLIP (Zhai et al.
    # 2023) and SigLIP 2 pool images; its output is the image embedding that
    # SigLIP's loss trained.
    "attention-head": Pooling(
        summary="the image tower's own attention-pooling head (its image embedding)",
        step=(
            "Keep the image tower's own pooling: SigLIP's attention-pooling head,",
            "a learned query attending to every patch token, gives the vector",
            "that SigLIP's image-text loss trained as the image's embedding.",
        ),
    ),
    # keras-hub's CLIPBackbone pools the vision encoder's layer-normed tokens
    # with CLIPVisionPooler (the class token) before its projection to the
    # text space; CLIP's linear probes (Radford et al. 2021, appendix A.3)
    # use the features before that projection.
    "class-token": Pooling(
        summary="class token after the final layer norm (before the projection)",
        step=(
            "Take the class token after the image tower's final layer norm, as",
            "CLIP's own pooler does: CLIP's image embedding before its projection",
            "to the text space, the features CLIP's linear probes train on.",
        ),
    ),
}
