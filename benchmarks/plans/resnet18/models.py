"""ResNet-18 (He et al. 2016) in jax.numpy for inference: batch norm folded into each conv's
scale and bias, NHWC. The weights file is made by `make_weights` (He-normal, a fixed seed):
the benchmark needs the real architecture and size (11.7 M parameters, 46.8 MB), not trained values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))


def _conv(x, w, b, stride, pad):
    y = jax.lax.conv_general_dilated(x, w, (stride, stride), [(pad, pad), (pad, pad)],
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + b


def _block(p, name, x, stride):
    y = jax.nn.relu(_conv(x, p[f"{name}.c1.w"], p[f"{name}.c1.b"], stride, 1))
    y = _conv(y, p[f"{name}.c2.w"], p[f"{name}.c2.b"], 1, 1)
    if f"{name}.down.w" in p:
        x = _conv(x, p[f"{name}.down.w"], p[f"{name}.down.b"], stride, 0)
    return jax.nn.relu(x + y)


def resnet18(params, image):
    p = params
    x = jax.nn.relu(_conv(image, p["stem.w"], p["stem.b"], 2, 3))
    x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), [(0, 0), (1, 1), (1, 1), (0, 0)])
    for s, (_, stride) in enumerate(STAGES):
        x = _block(p, f"l{s}.0", x, stride)
        x = _block(p, f"l{s}.1", x, 1)
    x = jnp.mean(x, axis=(1, 2))
    return jax.nn.softmax(x @ p["fc.w"] + p["fc.b"])


def make_weights(seed: int = 0, classes: int = 1000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def conv(k, cin, cout):
        w = rng.standard_normal((k, k, cin, cout), dtype=np.float32) * np.float32(np.sqrt(2 / (k * k * cin)))
        return w, np.zeros(cout, np.float32)

    p: dict[str, np.ndarray] = {}
    p["stem.w"], p["stem.b"] = conv(7, 3, 64)
    cin = 64
    for s, (c, stride) in enumerate(STAGES):
        for i in range(2):
            name = f"l{s}.{i}"
            p[f"{name}.c1.w"], p[f"{name}.c1.b"] = conv(3, cin if i == 0 else c, c)
            p[f"{name}.c2.w"], p[f"{name}.c2.b"] = conv(3, c, c)
            if i == 0 and (stride != 1 or cin != c):
                p[f"{name}.down.w"], p[f"{name}.down.b"] = conv(1, cin, c)
        cin = c
    p["fc.w"] = rng.standard_normal((512, classes), dtype=np.float32) * np.float32(1 / np.sqrt(512))
    p["fc.b"] = np.zeros(classes, np.float32)
    return p
