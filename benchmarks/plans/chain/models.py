"""One tiny elementwise step."""

import jax.numpy as jnp


def step(x):
    return jnp.tanh(x) * 0.9 + 0.1
