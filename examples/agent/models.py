"""Models of the agent example: an encoder, a refine step and a critic."""

import jax
import jax.numpy as jnp
import numpy as np

D = 64


def encode(params, ticket):
    """Ticket features -> a normalized embedding of the same width."""
    h = jnp.tanh(ticket @ params["enc_w"] + params["enc_b"])
    return h / (jnp.linalg.norm(h, axis=-1, keepdims=True) + 1e-6)


def improve(params, draft, emb):
    """One refinement step: move the draft toward a transform of the embedding."""
    target = jnp.tanh(emb @ params["imp_w"])
    return draft + 0.5 * (target - draft)


def critic(params, draft):
    """A quality score in (0, 1) as a scalar."""
    return jax.nn.sigmoid(jnp.sum(draft * params["critic_v"]) * 4.0)


def make_weights(path="agent.npz", seed=1):
    rng = np.random.default_rng(seed)
    w = {
        "enc_w": rng.normal(0, 1 / np.sqrt(D), (D, D)),
        "enc_b": np.zeros(D),
        "imp_w": rng.normal(0, 1 / np.sqrt(D), (D, D)),
        "critic_v": rng.normal(0, 1 / np.sqrt(D), (1, D)),
    }
    np.savez(path, **{k: v.astype(np.float32) for k, v in w.items()})


if __name__ == "__main__":
    make_weights()
