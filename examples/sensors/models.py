"""Models of the sensors example: three feature branches and a fusion head."""

import jax
import jax.numpy as jnp
import numpy as np


def spectrum(params, audio):
    """A learned filter bank over a 256-sample window -> 64 band energies."""
    return jnp.log1p(jnp.square(audio @ params["bank"]))


def audio_net(params, spec):
    return jax.nn.relu(spec @ params["a_w"] + params["a_b"])


def vib_net(params, vib):
    h = jax.nn.relu(vib @ params["v_w1"])
    return jnp.tanh(h @ params["v_w2"])


def temp_stats(temp):
    """Per-unit mean and spread of 16 temperature readings: a tuple of two."""
    return jnp.mean(temp, axis=1, keepdims=True), jnp.std(temp, axis=1, keepdims=True)


def fuse(params, a, v, t_mean, t_spread):
    x = jnp.concatenate([a, v, t_mean, t_spread], axis=1)
    return jax.nn.sigmoid(x @ params["f_w"] + params["f_b"])[:, 0]


def make_weights(path="sensors.npz", seed=2):
    rng = np.random.default_rng(seed)
    w = {
        "bank": rng.normal(0, 1 / 16, (256, 64)),
        "a_w": rng.normal(0, 1 / 8, (64, 32)),
        "a_b": np.zeros(32),
        "v_w1": rng.normal(0, 1 / 11, (128, 64)),
        "v_w2": rng.normal(0, 1 / 8, (64, 16)),
        "f_w": rng.normal(0, 1 / 7, (32 + 16 + 2, 1)),
        "f_b": np.zeros(1),
    }
    np.savez(path, **{k: v.astype(np.float32) for k, v in w.items()})


if __name__ == "__main__":
    make_weights()
