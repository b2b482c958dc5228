"""A random sparse Markov source of tokens, whose entropy (the best loss any model can reach) is
known exactly.

The next token depends on the last ``order`` tokens, its *context*. Each context allows only
``branching`` next tokens, with random probabilities, so a model must learn which ``branching``
of the ``vocab_size`` tokens can follow and how likely each is. With ``order=2`` a model has to
look two tokens back, which takes attention; with ``order=1`` a bigram table suffices.

A context ``(x_1, ..., x_k)`` (oldest first) is numbered in base ``V = vocab_size``:
``s = x_1 * V**(k-1) + ... + x_k``, so the context after token ``v`` is ``(s * V + v) % V**k``.
"""

from __future__ import annotations

import numpy as np


# The stationary distribution is found by a dense linear solve over all contexts: fast up to
# here (about a second), too slow and too large in memory beyond.
MAX_CONTEXTS = 4096


class MarkovSource:
    """A Markov chain over ``vocab_size`` tokens of a given ``order``, with its exact entropy.

    Sequences start in the stationary distribution, so every position looks alike and the best
    loss on a sequence is known: :meth:`optimal_loss`.

    Example:

        .. code-block:: python

            import numpy as np
            from optuna_bigmodel.tasks import MarkovSource

            source = MarkovSource.random(vocab_size=16, order=2, branching=3, seed=0)
            seqs = source.sample(4, seq_len=32, rng=np.random.default_rng(0))  # (4, 33)
            print(source.entropy_rate(), source.optimal_loss(32))

    Args:
        successors: ``(V**order, b)`` integers: the tokens that may follow each context.
        probs: ``(V**order, b)``: their probabilities; each row sums to 1.
        vocab_size: ``V``.
        order: How many past tokens the next one depends on.

    Raises:
        ValueError: The arrays do not fit together, or the chain has more than one stationary
            distribution (it is not ergodic).
    """

    def __init__(
        self, successors: np.ndarray, probs: np.ndarray, vocab_size: int, order: int
    ) -> None:
        self.vocab_size = vocab_size
        self.order = order
        self.successors = _frozen(np.array(successors, dtype=np.int64))
        self.probs = _frozen(np.array(probs, dtype=np.float64))
        _check_tables(self.successors, self.probs, vocab_size, order)
        self.next_token_probs = _frozen(_dense(self.successors, self.probs, vocab_size))
        self.stationary = _frozen(_stationary(self.next_token_probs, vocab_size))

    @classmethod
    def random(
        cls, vocab_size: int, order: int, branching: int, seed: int | np.random.SeedSequence
    ) -> MarkovSource:
        """A random source in which each context has exactly ``branching`` possible successors.

        One successor of each context is ``cycle[last token]``, where ``cycle`` walks through all
        tokens in one loop. Any context can thus reach the contexts of that loop, and from them
        every other context that can recur: there is one stationary distribution. The other
        ``branching - 1`` successors are drawn at random and the probabilities from a flat
        Dirichlet distribution.
        """
        rng = np.random.default_rng(seed)
        n_contexts = vocab_size**order
        loop = rng.permutation(vocab_size)
        cycle = np.empty(vocab_size, dtype=np.int64)
        cycle[loop] = np.roll(loop, -1)
        forced = cycle[np.arange(n_contexts) % vocab_size]
        # Random sort keys, with the forced successor pushed last, pick the others without repeats.
        keys = rng.random((n_contexts, vocab_size))
        keys[np.arange(n_contexts), forced] = np.inf
        others = np.argsort(keys, axis=1)[:, : branching - 1]
        successors = np.concatenate([forced[:, None], others], axis=1)
        probs = rng.dirichlet(np.ones(branching), size=n_contexts)
        return cls(successors, probs, vocab_size, order)

    def entropy_rate(self) -> float:
        """``sum_s pi(s) H(P(.|s))`` in nats: the best mean loss once a whole context is seen."""
        return float(self.stationary @ _entropy(self.next_token_probs, axis=1))

    def position_entropies(self, seq_len: int) -> np.ndarray:
        """``H(X_t | X_0..X_{t-1})`` for ``t = 1..seq_len``, shape ``(seq_len,)``.

        From ``t = order`` on this is the entropy rate. Before, the context is shorter than the
        order, and the entropy follows from the marginals of the stationary distribution:
        ``H(X_t | X_<t) = H(X_0..X_t) - H(X_0..X_{t-1})``.
        """
        joint = [_entropy(self._prefix_marginal(m)) for m in range(1, self.order + 1)]
        early = [joint[t] - joint[t - 1] for t in range(1, min(self.order, seq_len + 1))]
        return np.array(early + [self.entropy_rate()] * (seq_len - len(early)))

    def optimal_loss(self, seq_len: int) -> float:
        """The best achievable expected mean loss per target, predicting ``x[1..L]`` from prefixes
        of sequences ``x[0..L]`` with ``L = seq_len``."""
        return float(self.position_entropies(seq_len).mean())

    def sample(self, n: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` sequences of ``seq_len + 1`` tokens, started in ``stationary``, as one array
        of shape ``(n, seq_len + 1)``.

        Sequence ``i`` depends on ``rng`` and ``i`` only, not on ``n``: asking for more sequences
        adds to the first ones, so a larger training set contains a smaller one.
        """
        if seq_len + 1 < self.order:
            raise ValueError(f"seq_len must be >= order - 1 = {self.order - 1}, got {seq_len}")
        u = rng.random((n, seq_len + 1))  # row-major: row i is the same whatever n is
        seqs = np.empty((n, seq_len + 1), dtype=np.int64)
        context = _inverse_cdf(np.cumsum(self.stationary), u[:, 0])
        seqs[:, : self.order] = self._tokens_of(context)
        cumulative = np.cumsum(self.probs, axis=1)
        for t in range(self.order, seq_len + 1):
            pick = _inverse_cdf(cumulative[context], u[:, t])
            seqs[:, t] = self.successors[context, pick]
            context = (context * self.vocab_size + seqs[:, t]) % self.stationary.size
        return seqs

    def nll(self, seqs: np.ndarray) -> np.ndarray:
        """``-log p(x_t | x_<t)`` under this source for ``t = 1..L``: ``(n, L + 1) -> (n, L)``.

        Its mean is the loss of the best possible model on these sequences.
        """
        seqs = np.asarray(seqs)
        probs = np.empty((seqs.shape[0], seqs.shape[1] - 1))
        for t in range(1, seqs.shape[1]):
            probs[:, t - 1] = self._next_prob(seqs, t)
        with np.errstate(divide="ignore"):
            return -np.log(probs)

    def _next_prob(self, seqs: np.ndarray, t: int) -> np.ndarray:
        if t >= self.order:
            context = self._context_of(seqs[:, t - self.order : t])
            return self.next_token_probs[context, seqs[:, t]]
        longer = self._prefix_marginal(t + 1)[tuple(seqs[:, : t + 1].T)]
        return longer / self._prefix_marginal(t)[tuple(seqs[:, :t].T)]

    def _prefix_marginal(self, m: int) -> np.ndarray:
        """The stationary distribution of the first ``m <= order`` tokens, shape ``(V,) * m``."""
        joint = self.stationary.reshape((self.vocab_size,) * self.order)
        return joint.sum(axis=tuple(range(m, self.order)))

    def _tokens_of(self, context: np.ndarray) -> np.ndarray:
        powers = self.vocab_size ** np.arange(self.order - 1, -1, -1)
        return (context[:, None] // powers) % self.vocab_size

    def _context_of(self, tokens: np.ndarray) -> np.ndarray:
        powers = self.vocab_size ** np.arange(self.order - 1, -1, -1)
        return tokens @ powers


def _check_tables(successors: np.ndarray, probs: np.ndarray, vocab_size: int, order: int) -> None:
    n_contexts = vocab_size**order
    if n_contexts > MAX_CONTEXTS:
        raise ValueError(f"vocab_size**order must be <= {MAX_CONTEXTS}, got {n_contexts}")
    fits = successors.ndim == 2 and successors.shape[0] == n_contexts
    if not fits or probs.shape != successors.shape:
        raise ValueError(
            f"successors and probs must both have shape ({n_contexts}, branching), "
            f"got {successors.shape} and {probs.shape}"
        )
    if successors.min() < 0 or successors.max() >= vocab_size:
        raise ValueError(f"successors must be tokens in [0, {vocab_size}), got {successors}")
    if probs.min() < 0 or not np.allclose(probs.sum(axis=1), 1.0):
        raise ValueError("probs must be non-negative and each row must sum to 1")


def _dense(successors: np.ndarray, probs: np.ndarray, vocab_size: int) -> np.ndarray:
    """``P[s, v]``: the probability that token ``v`` follows context ``s``."""
    table = np.zeros((successors.shape[0], vocab_size))
    rows = np.repeat(np.arange(successors.shape[0]), successors.shape[1])
    np.add.at(table, (rows, successors.ravel()), probs.ravel())  # adds up repeated successors
    return table


def _stationary(next_token_probs: np.ndarray, vocab_size: int) -> np.ndarray:
    """The distribution ``pi`` over contexts with ``pi Q = pi`` for the context chain ``Q``.

    Solves ``pi (I - Q + 1 1^T) = 1^T``. Summing both sides over columns gives ``sum(pi) = 1``,
    and then ``pi Q = pi``; the matrix is invertible exactly when ``pi`` is unique.
    """
    n = next_token_probs.shape[0]
    q = np.zeros((n, n))
    after = (np.arange(n)[:, None] * vocab_size + np.arange(vocab_size)) % n
    np.add.at(q, (np.repeat(np.arange(n), vocab_size), after.ravel()), next_token_probs.ravel())
    try:
        pi = np.linalg.solve((np.eye(n) - q + 1.0).T, np.ones(n))
    except np.linalg.LinAlgError:
        pi = np.zeros(n)  # singular: caught by the check below
    _check_one_recurrent_class(q, int(np.argmax(pi)))
    pi = np.clip(pi, 0.0, None)  # rounding can leave -1e-17 on contexts that never recur
    return pi / pi.sum()


def _check_one_recurrent_class(q: np.ndarray, recurrent: int) -> None:
    """Raises unless every context can reach ``recurrent``.

    That holds exactly when the chain has one closed class, i.e. one stationary distribution,
    and does not rest on a floating-point solve that might not notice a singular matrix.
    """
    reaches = np.zeros(q.shape[0], dtype=bool)
    reaches[recurrent] = True
    while True:
        grown = reaches | (q @ reaches > 0)
        if (grown == reaches).all():
            break
        reaches = grown
    if not reaches.all():
        raise ValueError(
            "the chain has more than one stationary distribution: contexts "
            f"{np.flatnonzero(~reaches)[:10].tolist()} cannot reach context {recurrent}"
        )


def _inverse_cdf(cumulative: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per row, the first index whose cumulative probability exceeds ``u`` (inverse-CDF sampling).

    ``cumulative`` is ``(K,)`` for all rows or ``(n, K)``; ``u`` is ``(n,)`` in [0, 1). The clip
    guards against a last cumulative value a rounding error below 1.
    """
    if cumulative.ndim == 1:
        below = np.searchsorted(cumulative, u, side="right")
    else:
        below = (u[:, None] >= cumulative).sum(axis=1)
    return np.minimum(below, cumulative.shape[-1] - 1)


def _entropy(p: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``-sum p log p`` in nats, with ``0 log 0 = 0``."""
    terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=axis)


def _frozen(array: np.ndarray) -> np.ndarray:
    # Sources are cached and shared between trials; nobody may change one under another's feet.
    array.flags.writeable = False
    return array
