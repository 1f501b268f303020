"""Models of the defects example: a normalizer and a small convolutional detector."""

import jax
import jax.numpy as jnp
import numpy as np

MEAN = jnp.array([0.485, 0.456, 0.406], dtype=jnp.float32)
STD = jnp.array([0.229, 0.224, 0.225], dtype=jnp.float32)


def normalize(frame):
    """Per-channel standardization of an NHWC frame."""
    return (frame - MEAN) / STD


def _conv(x, w, b):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.nn.relu(y + b)


def detector(params, x):
    """Two conv layers, 4x4 average pooling, a dense head: 16 box scores in (0, 1)."""
    y = _conv(x, params["conv1_w"], params["conv1_b"])
    y = _conv(y, params["conv2_w"], params["conv2_b"])
    y = jax.lax.reduce_window(y, 0.0, jax.lax.add, (1, 4, 4, 1), (1, 4, 4, 1), "VALID") / 16.0
    y = y.reshape(y.shape[0], -1)
    return jax.nn.sigmoid(y @ params["head_w"] + params["head_b"])


def make_weights(path="detector.npz", seed=0):
    """Writes the detector's weights (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    w = {
        "conv1_w": rng.normal(0, 0.3, (3, 3, 3, 8)),
        "conv1_b": np.zeros(8),
        "conv2_w": rng.normal(0, 0.2, (3, 3, 8, 8)),
        "conv2_b": np.zeros(8),
        "head_w": rng.normal(0, 0.05, (16 * 16 * 8, 16)),
        "head_b": np.full(16, -0.5),
    }
    np.savez(path, **{k: v.astype(np.float32) for k, v in w.items()})


# Reference for classifier.mlir (that file is this function exported to StableHLO);
# tests use it to check planc's results against JAX.
CLASSIFIER_W = np.array([[0.8, -0.4, 0.1, 0.3], [-0.2, 0.9, -0.5, 0.1], [0.3, 0.2, 0.7, -0.6]], np.float32)
CLASSIFIER_B = np.array([0.05, -0.05, 0.0, 0.1], np.float32)


def classifier_reference(x):
    h = jnp.tanh(jnp.mean(x, axis=(1, 2)) * 2.0)
    return jax.nn.softmax(h @ CLASSIFIER_W + CLASSIFIER_B, axis=-1)


if __name__ == "__main__":
    make_weights()
