"""Two matmul-heavy branches and a join, for the Ray placement tests."""

import jax.numpy as jnp


def left(x):
    for _ in range(4):
        x = jnp.tanh(x @ x.T / 32.0 + 0.1)
    return x


def right(x):
    for _ in range(4):
        x = jnp.sin(x.T @ x / 32.0)
    return x


def join(a, b):
    return jnp.mean(a * b, axis=0) + jnp.max(a, axis=1)
