"""The Markov source and its exact entropy, checked against independent computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optuna_bigmodel.tasks import MarkovSource


def _two_state_source(a: float, b: float) -> MarkovSource:
    # P(0 -> 1) = a, P(1 -> 0) = b.
    successors = np.array([[0, 1], [1, 0]])
    probs = np.array([[1 - a, a], [1 - b, b]])
    return MarkovSource(successors, probs, vocab_size=2, order=1)


def _binary_entropy(p: float) -> float:
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def _context_matrix(source: MarkovSource) -> np.ndarray:
    """The context chain, built here from the successor table, apart from the source's code."""
    n, v = source.vocab_size**source.order, source.vocab_size
    q = np.zeros((n, n))
    for s in range(n):
        for token, p in zip(source.successors[s], source.probs[s]):
            q[s, (s * v + token) % n] += p
    return q


def _brute_force_entropies(source: MarkovSource, seq_len: int) -> np.ndarray:
    """H(X_t | X_<t) for t = 1..L by enumerating every sequence of L + 1 tokens."""
    v, k = source.vocab_size, source.order
    prob = {}
    for seq in itertools.product(range(v), repeat=seq_len + 1):
        context = sum(x * v ** (k - 1 - i) for i, x in enumerate(seq[:k]))
        p = source.stationary[context]
        for t in range(k, seq_len + 1):
            context_t = sum(x * v ** (k - 1 - i) for i, x in enumerate(seq[t - k : t]))
            p *= source.next_token_probs[context_t, seq[t]]
        prob[seq] = p

    def joint_entropy(m: int) -> float:
        marginal: dict[tuple[int, ...], float] = {}
        for seq, p in prob.items():
            marginal[seq[:m]] = marginal.get(seq[:m], 0.0) + p
        return -sum(p * np.log(p) for p in marginal.values() if p > 0)

    return np.array([joint_entropy(t + 1) - joint_entropy(t) for t in range(1, seq_len + 1)])


def test_two_state_chain_matches_closed_form() -> None:
    a, b = 0.2, 0.6
    source = _two_state_source(a, b)
    pi = np.array([b, a]) / (a + b)
    np.testing.assert_allclose(source.stationary, pi, atol=1e-12)
    expected = pi[0] * _binary_entropy(a) + pi[1] * _binary_entropy(b)
    assert source.entropy_rate() == pytest.approx(expected, abs=1e-12)
    # Order 1 from a stationary start: every position has the full context already.
    assert source.optimal_loss(5) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stationary_distribution_is_stationary(order: int, seed: int) -> None:
    source = MarkovSource.random(vocab_size=5, order=order, branching=3, seed=seed)
    pi = source.stationary
    assert pi.min() >= 0 and pi.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(pi @ _context_matrix(source), pi, atol=1e-12)


@pytest.mark.parametrize("branching", [1, 3, 7])
def test_each_context_has_exactly_branching_successors(branching: int) -> None:
    source = MarkovSource.random(vocab_size=7, order=2, branching=branching, seed=3)
    assert source.successors.shape == (49, branching)
    assert all(len(set(row)) == branching for row in source.successors.tolist())
    assert ((source.next_token_probs > 0).sum(axis=1) == branching).all()
    np.testing.assert_allclose(source.next_token_probs.sum(axis=1), 1.0)


def test_one_successor_per_context_is_a_deterministic_cycle() -> None:
    source = MarkovSource.random(vocab_size=6, order=2, branching=1, seed=0)
    assert source.entropy_rate() == pytest.approx(0.0, abs=1e-12)
    # The recurrent contexts are (x, cycle[x]): the first target is determined too.
    assert source.optimal_loss(4) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("order", [1, 2])
def test_optimal_loss_matches_enumeration_of_all_sequences(order: int) -> None:
    source = MarkovSource.random(vocab_size=3, order=order, branching=2, seed=5)
    expected = _brute_force_entropies(source, seq_len=4)
    np.testing.assert_allclose(source.position_entropies(4), expected, atol=1e-10)
    assert source.optimal_loss(4) == pytest.approx(expected.mean(), abs=1e-10)
    if order == 2:
        # The first target is seen with one token of context only, so it is harder.
        assert expected[0] > expected[1] + 0.01


def test_nll_averages_to_optimal_loss_over_all_sequences() -> None:
    source = MarkovSource.random(vocab_size=3, order=2, branching=2, seed=5)
    seqs = np.array(list(itertools.product(range(3), repeat=4)))
    nll = source.nll(seqs)  # inf on impossible sequences, which weigh 0
    log_prob = -nll.sum(axis=1)  # log p(x_1..x_3 | x_0)
    marginal_0 = source.stationary.reshape(3, 3).sum(axis=1)
    weight = marginal_0[seqs[:, 0]] * np.exp(log_prob)
    assert weight.sum() == pytest.approx(1.0)
    possible = weight > 0
    expected = (weight[possible] * nll[possible].mean(axis=1)).sum()
    assert source.optimal_loss(3) == pytest.approx(expected, abs=1e-10)


def test_entropy_rate_matches_log_loss_on_long_sampled_sequences() -> None:
    source = MarkovSource.random(vocab_size=6, order=2, branching=3, seed=4)
    seqs = source.sample(2000, 100, np.random.default_rng(0))
    # -log P(next | last two tokens), read from the successor table directly.
    table = {
        (s, int(tok)): p
        for s in range(36)
        for tok, p in zip(source.successors[s], source.probs[s])
    }
    contexts = seqs[:, :-2] * 6 + seqs[:, 1:-1]
    probs = np.vectorize(lambda s, tok: table[(int(s), int(tok))])(contexts, seqs[:, 2:])
    assert -np.log(probs).mean() == pytest.approx(source.entropy_rate(), abs=0.02)
    assert source.nll(seqs).mean() == pytest.approx(source.optimal_loss(100), abs=0.02)


def test_sequences_start_in_the_stationary_distribution() -> None:
    source = MarkovSource.random(vocab_size=4, order=1, branching=2, seed=0)
    seqs = source.sample(20000, 1, np.random.default_rng(1))
    counts = np.bincount(seqs[:, 0], minlength=4) / 20000
    np.testing.assert_allclose(counts, source.stationary, atol=0.02)


def test_random_source_depends_only_on_its_seed() -> None:
    first = MarkovSource.random(vocab_size=8, order=2, branching=3, seed=11)
    again = MarkovSource.random(vocab_size=8, order=2, branching=3, seed=11)
    other = MarkovSource.random(vocab_size=8, order=2, branching=3, seed=12)
    np.testing.assert_array_equal(first.successors, again.successors)
    np.testing.assert_array_equal(first.probs, again.probs)
    assert not np.array_equal(first.probs, other.probs)


def test_source_tables_are_read_only() -> None:
    source = MarkovSource.random(vocab_size=4, order=1, branching=2, seed=0)
    with pytest.raises(ValueError):
        source.stationary[0] = 1.0


def test_chain_with_two_closed_classes_is_refused() -> None:
    successors = np.array([[0], [1]])  # each token only follows itself
    with pytest.raises(ValueError, match="more than one stationary distribution"):
        MarkovSource(successors, np.ones((2, 1)), vocab_size=2, order=1)


def test_tables_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        MarkovSource(np.array([[0, 1], [1, 0]]), np.full((2, 2), 0.4), vocab_size=2, order=1)
    with pytest.raises(ValueError, match="shape"):
        MarkovSource(np.array([[0, 1]]), np.array([[0.5, 0.5]]), vocab_size=2, order=1)
