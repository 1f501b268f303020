"""Exports the small ONNX test models in tests/compiler/models/onnx_models/ from PyTorch.

Needs torch (never a dependency of planc or its CI; install a CPU wheel into your own venv
to regenerate): `python scripts/export_onnx_fixtures.py`. Each model is exported with the
legacy TorchScript exporter at several opsets and with the dynamo exporter, with dynamic
batch (and spatial / sequence) dims, so planc's dim pinning is exercised.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "tests" / "compiler" / "models" / "onnx_models"


class TinyConv(nn.Module):
    """A convnet in miniature: conv-BN-ReLU twice, global pooling, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TinyEncoder(nn.Module):
    """One TransformerEncoder layer (d_model 16, 2 heads) and a head: two outputs (tokens, pooled)."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.enc(x)
        return y, self.head(y.mean(dim=1))


def _init(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for p in model.parameters():
        nn.init.normal_(p, std=0.3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def export(model: nn.Module, example: torch.Tensor, name: str, opset: int, dynamo: bool,
           dynamic: dict[int, str], outputs: list[str]) -> None:
    path = OUT / f"{name}.onnx"
    if dynamo:
        shapes = ({k: torch.export.Dim(v, min=1, max=256) for k, v in dynamic.items()},)
        torch.onnx.export(model, (example,), str(path), dynamo=True, opset_version=opset, input_names=["x"],
                          output_names=outputs, dynamic_shapes=shapes, external_data=False)
    else:
        axes = {"x": dynamic, **{o: {0: "batch"} for o in outputs}}
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=opset, input_names=["x"],
                          output_names=outputs, dynamic_axes=axes)
    print(f"wrote {path.relative_to(OUT.parent.parent.parent)} ({path.stat().st_size} bytes)")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    conv, enc = _init(TinyConv()), _init(TinyEncoder())
    # Pitfall: torch.export specializes a dim of size 0 or 1, so example batches are 2.
    img, seq = torch.rand(2, 3, 16, 16), torch.rand(2, 8, 16)
    conv_dims, seq_dims = {0: "batch", 2: "height", 3: "width"}, {0: "batch", 1: "seq"}
    # Pitfall: in eval mode without grad, TransformerEncoder takes a fused fast path
    # (aten::_transformer_encoder_layer_fwd) that the legacy exporter cannot export.
    torch.backends.mha.set_fastpath_enabled(False)
    with torch.no_grad():
        for opset in (13, 17, 20):
            export(conv, img, f"conv_op{opset}", opset, False, conv_dims, ["logits"])
        export(conv, img, "conv_dynamo_op18", 18, True, conv_dims, ["logits"])
        for opset in (14, 17, 20):
            export(enc, seq, f"encoder_op{opset}", opset, False, seq_dims, ["tokens", "pooled"])
        export(enc, seq, "encoder_dynamo_op18", 18, True, seq_dims, ["tokens", "pooled"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
