"""The sparse first layer of the PPO fast path (large image inputs) gives the dense gradient.

Expected values come from torch autograd on the unchanged network (or from plain numpy), never
from the sparse code itself.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

from sysgym.agents.ppo import PPOConfig, fastgrad
from sysgym.agents.ppo.fastgrad import ManualGradients, parameter_order, sparse_columns
from sysgym.agents.ppo.networks import ActorCritic
from sysgym.agents.ppo.optim import FlatAdam, canonical, flatten_parameters, from_canonical
from sysgym.agents.ppo.trainer import PPOTrainer
from sysgym.cython_core.ppo_sparse import encode_row_differences

ROWS, COLS = 8, 160          # 1,280 inputs: above SPARSE_MIN_INPUTS
IMAGE = gym.spaces.Box(0.0, 1.0, shape=(ROWS, COLS), dtype=np.float32)
ACTIONS = gym.spaces.Discrete(5)


def _images(n: int, seed: int) -> np.ndarray:
    """DeepRM-like images: rectangles of one value from row 0 down to a random row; every column
    and the last row are covered by some image, so a dropped column or row changes the result."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, ROWS, COLS), np.float32)
    for i in range(n):
        for _ in range(6):
            c, w, d = rng.integers(0, COLS - 8), rng.integers(1, 9), rng.integers(1, ROWS + 1)
            x[i, :d, c:c + w] = rng.choice([0.1, 0.3, 0.5, 1.0])
    x[0, :, -1] = 0.7          # the last column, all rows
    x[1, -1, :] = 0.2          # the last row, all columns
    return x


def _model(cfg: PPOConfig, sparse: bool):
    torch.manual_seed(3)
    model = ActorCritic(IMAGE, ACTIONS, cfg)
    order = parameter_order(model)
    columns = sparse_columns(model) if sparse else None
    flat, grads = flatten_parameters(model, order, columns)
    return model, order, flat, grads


def _batch(model, x: np.ndarray, seed: int):
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    obs = {"obs": torch.from_numpy(x)}
    mask = torch.rand((n, ACTIONS.n), generator=g) < 0.7
    mask[:, 0] = True
    with torch.no_grad():
        actions, _ = model.head.sample(model(obs)[0], mask, g)
        cur = model.head.evaluate(model(obs)[0], mask, actions)[0]
    return [obs, mask, actions, cur + 0.3 * torch.randn(n, generator=g), torch.randn(n, generator=g),
            torch.randn(n, generator=g), 0.3 * torch.randn(n, generator=g)]


def _autograd(cfg, model, order, batch) -> torch.Tensor:
    trainer = PPOTrainer.__new__(PPOTrainer)
    trainer.config, trainer.model, trainer.head = cfg, model, model.head
    loss, _ = trainer.loss(*batch)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, order)])


def test_row_differences_match_numpy():
    x = _images(5, 0)
    x[2, 3, 7] = np.nan  # NaN differs from everything: kept as an entry
    indptr, cols, vals = encode_row_differences(x)
    assert indptr.dtype == np.int64 and cols.dtype == np.int32 and vals.dtype == np.float32
    d = x.copy()
    d[:, :-1] -= x[:, 1:]
    flat = d.reshape(5, -1)
    for i in range(5):
        nz = np.flatnonzero(flat[i] != 0)
        np.testing.assert_array_equal(cols[indptr[i]:indptr[i + 1]], nz)
        np.testing.assert_array_equal(vals[indptr[i]:indptr[i + 1]], flat[i, nz])
    assert indptr[0] == 0 and indptr[-1] == len(cols)


def test_sparse_columns_only_for_large_flat_inputs():
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 16))
    model = ActorCritic(IMAGE, ACTIONS, cfg)
    assert [p is q for p, q in zip(sparse_columns(model), [model.trunk[0].weight, model.critic_trunk[0].weight])] \
        == [True, True]
    small = ActorCritic(gym.spaces.Box(0.0, 1.0, shape=(4, 10), dtype=np.float32), ACTIONS, cfg)
    assert sparse_columns(small) is None


@pytest.mark.parametrize("shared", [False, True], ids=["separate", "shared"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_sparse_rows_gradient_equals_autograd(shared, activation):
    cfg = PPOConfig(shared_trunk=shared, activation=activation, encoder="mlp", hidden_sizes=(16, 8),
                    ent_coef=0.05, vf_coef=0.7, clip_coef=0.2)
    model, order, flat, grads = _model(cfg, sparse=True)
    assert model.trunk[0].weight.stride() == (1, 16 if shared else 32)  # one input per row
    manual = ManualGradients(model, flat, grads)
    assert manual.sparse_rows
    x = _images(40, 1)
    manual.bind_rows({"obs": x})
    rng = np.random.default_rng(2)
    for seed, n in enumerate([24, 7, 24]):
        ids = rng.choice(len(x), n, replace=False)
        batch = _batch(model, x[ids], seed)
        expected = _autograd(cfg, model, order, batch)
        numpy_batch = [None if b is None else (b.numpy() if isinstance(b, torch.Tensor) else b) for b in batch]
        assert manual.trunk.sparse.sparse(np.asarray(ids, dtype=np.int64))  # the sparse products run
        manual(ids, *numpy_batch[1:], cfg)
        got = canonical(grads, flat, order)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
        start, end, squares = manual.known_squares()   # the first layer's slice, as the norm needs it
        first = grads.numpy()[start:end].astype(np.float64)
        assert end - start == ROWS * COLS * (16 if shared else 32)
        np.testing.assert_allclose(squares, first @ first, rtol=1e-5)
        norm = FlatAdam(flat.clone(), lr=0.0).step(grads.clone(), manual.known_squares())
        np.testing.assert_allclose(norm, np.sqrt((grads.numpy().astype(np.float64) ** 2).sum()), rtol=1e-5)
        # the same call on the dense observations (the rollout's path) agrees too
        manual({"obs": x[ids]}, *numpy_batch[1:], cfg)
        torch.testing.assert_close(canonical(grads, flat, order), expected, rtol=1e-4, atol=1e-6)
        assert manual.known_squares() is None  # the dense backward ran


def test_dropping_one_column_changes_the_gradient():
    """The comparison above can fail: without the entries of the last column (or of the last image
    row) the first-layer gradient moves well beyond the tolerance."""
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 8))
    model, order, flat, grads = _model(cfg, sparse=True)
    manual = ManualGradients(model, flat, grads)
    x = _images(8, 4)
    ids = np.arange(8)
    batch = [b.numpy() if isinstance(b, torch.Tensor) else b for b in _batch(model, x, 0)[1:]]
    expected = _autograd(cfg, model, order, _batch(model, x, 0))
    for drop in (COLS - 1, (ROWS - 1) * COLS + 5):
        manual.bind_rows({"obs": x})
        rows = manual.trunk.sparse
        indptr, cols, vals = rows.bound
        keep = (cols % COLS != drop) if drop == COLS - 1 else (cols != drop)
        owner = np.repeat(np.arange(len(x)), np.diff(indptr))
        counts = np.bincount(owner[keep], minlength=len(x))
        rows.bound = (np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), cols[keep], vals[keep])
        manual(ids, *batch, cfg)
        assert not torch.allclose(canonical(grads, flat, order), expected, rtol=1e-4, atol=1e-6)


def test_dense_minibatches_take_the_dense_product(monkeypatch):
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 8))
    model, order, flat, grads = _model(cfg, sparse=True)
    manual = ManualGradients(model, flat, grads)
    x = np.random.default_rng(5).random((10, ROWS, COLS)).astype(np.float32)  # no two rows alike
    manual.bind_rows({"obs": x})
    ids = np.arange(10)
    assert not manual.trunk.sparse.sparse(ids)
    batch = _batch(model, x, 1)
    expected = _autograd(cfg, model, order, batch)
    manual(ids, *[b.numpy() if isinstance(b, torch.Tensor) else b for b in batch[1:]], cfg)
    torch.testing.assert_close(canonical(grads, flat, order), expected, rtol=1e-4, atol=1e-6)


def test_row_ids_are_checked():
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 8))
    model, order, flat, grads = _model(cfg, sparse=True)
    manual = ManualGradients(model, flat, grads)
    args = [None, np.zeros(2, np.int64), np.zeros(2, np.float32), np.zeros(2, np.float32),
            np.zeros(2, np.float32), np.zeros(2, np.float32), cfg]
    with pytest.raises(ValueError, match="bind_rows"):
        manual(np.array([0, 1]), *args)
    manual.bind_rows({"obs": _images(3, 0)})
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        manual(np.array([0, 3]), *args)
    with pytest.raises(ValueError, match="1280 inputs"):
        manual.bind_rows({"obs": np.zeros((2, 5), np.float32)})


def test_adam_state_is_saved_in_the_canonical_layout():
    """A state saved with the first layer stored one input per row loads into the plain layout."""
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 8))
    _, order_a, flat_a, grads_a = _model(cfg, sparse=True)
    _, order_b, flat_b, grads_b = _model(cfg, sparse=False)
    torch.testing.assert_close(canonical(flat_a, flat_a, order_a), flat_b, rtol=0, atol=0)
    opt_a = FlatAdam(flat_a, lr=0.01, members=order_a)
    opt_b = FlatAdam(flat_b, lr=0.01, members=order_b)
    g = torch.randn(flat_b.shape, generator=torch.Generator().manual_seed(0))
    grads_b.copy_(g)
    from_canonical(g, grads_a, flat_a, order_a)
    opt_a.step(grads_a)
    opt_b.step(grads_b)
    torch.testing.assert_close(canonical(flat_a, flat_a, order_a), flat_b)
    opt_c = FlatAdam(flat_b, lr=0.01, members=order_b)
    opt_c.load_state_dict(opt_a.state_dict())
    torch.testing.assert_close(opt_c.exp_avg_sq, opt_b.exp_avg_sq)
    torch.testing.assert_close(opt_c.exp_avg, opt_b.exp_avg)


def test_training_matches_the_dense_layout(monkeypatch):
    """Two PPO iterations on DeepRM's image: the sparse first layer and the dense one (the sparse
    path switched off) end with the same weights up to float rounding."""
    import sysgym  # noqa: F401

    kwargs = {"scenario": 1, "protocol": "bracis", "episode_length": 100}
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(64, 64), n_steps=25, num_envs=4,
                    batch_size=32, n_epochs=2, progress=False, tensorboard=False, env_kwargs=kwargs, seed=7)
    weights = []
    for sparse in (True, False):
        if not sparse:
            monkeypatch.setattr(fastgrad, "SPARSE_MIN_INPUTS", 10**9)
        trainer = PPOTrainer("sysgym/DeepRM-Image-v0", cfg)
        assert (trainer.manual.sparse_rows) == sparse
        trainer.train(200)
        weights.append(canonical(trainer.flat_params, trainer.flat_params, trainer.params))
        trainer.close()
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=1e-5)


def test_frozen_weights_reuse_the_prefix_sums():
    """Inside ``frozen_weights`` (a rollout) the forward pass reads prefix sums computed once: the
    same numbers as without, and as torch's forward."""
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 8))
    model, order, flat, grads = _model(cfg, sparse=True)
    manual = ManualGradients(model, flat, grads)
    x = _images(16, 3)
    w = manual.work(16)
    manual.heads({"obs": x}, w)
    plain = w.out.copy(), w.value.copy()
    with manual.frozen_weights():
        for _ in range(2):
            manual.heads({"obs": x}, w)
            np.testing.assert_array_equal(w.out, plain[0])
            np.testing.assert_array_equal(w.value, plain[1])
    assert manual.trunk.sparse.table is None   # nothing kept once the weights may change
    with torch.no_grad():
        logits, value = model({"obs": torch.from_numpy(x)})
    np.testing.assert_allclose(plain[1], value.numpy(), rtol=1e-5, atol=1e-6)


def test_a_resumed_sparse_run_ends_with_the_uninterrupted_runs_weights(tmp_path):
    """Checkpoints hold the Adam moments in the canonical layout and the weights through the
    transposed views: a run saved after two iterations and resumed ends where an uninterrupted
    run ends, bit for bit."""
    import sysgym  # noqa: F401

    kwargs = {"scenario": 1, "protocol": "bracis", "episode_length": 100}
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 16), n_steps=10, num_envs=2,
                    batch_size=10, n_epochs=2, progress=False, tensorboard=False, env_kwargs=kwargs, seed=5, anneal_lr=False,
                    total_steps=80)
    reference = PPOTrainer("sysgym/DeepRM-Image-v0", cfg)
    assert reference.manual.sparse_rows
    reference.train()
    reference.close()
    first = PPOTrainer("sysgym/DeepRM-Image-v0", cfg, tmp_path / "run")
    first.train(40)
    first.close()
    resumed = PPOTrainer.resume(tmp_path / "run", total_steps=80)
    resumed.train()
    resumed.close()
    assert torch.equal(resumed.flat_params, reference.flat_params)
    assert torch.equal(resumed.optimizer.exp_avg_sq, reference.optimizer.exp_avg_sq)


def _bits(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().view(np.int32)


def test_deferred_first_layer_adam_equals_adam_on_the_written_gradient():
    """A minibatch whose first-layer gradient is never written (``defer_first_layer``: its sum of
    squares, then Adam making it again one image row at a time) moves the weights and both Adam
    moments exactly as writing the gradient and running Adam on it; the norm, and so the clipping
    (max_grad_norm small enough that every step clips), agree too."""
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 8), ent_coef=0.05)
    runs = []
    for defer in (False, True):
        model, order, flat, grads = _model(cfg, sparse=True)
        manual = ManualGradients(model, flat, grads)
        manual.defer_first_layer = defer
        opt = FlatAdam(flat, lr=0.01, eps=1e-5, max_grad_norm=0.05)
        x = _images(40, 6)
        manual.bind_rows({"obs": x})
        rng = np.random.default_rng(8)
        norms = []
        for seed in range(4):
            ids = rng.choice(len(x), 16, replace=False)
            batch = [b.numpy() if isinstance(b, torch.Tensor) else b for b in _batch(model, x[ids], seed)[1:]]
            manual(ids, *batch, cfg)
            assert (manual.deferred() is not None) == defer
            norms.append(opt.step(grads, manual.known_squares(), manual.deferred()))
        runs.append((norms, flat.clone(), opt.exp_avg.clone(), opt.exp_avg_sq.clone()))
    assert min(runs[0][0]) > 0.05   # every step clipped
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1:], runs[1][1:]):
        np.testing.assert_array_equal(_bits(a), _bits(b))


def test_deferred_first_layer_needs_every_image_row():
    """The comparison above can fail: an Adam step that skips the first image row's gradient (its
    entries dropped after the sum of squares) leaves different weights."""
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 8))
    x = _images(12, 9)
    ids = np.arange(12)
    results = []
    for drop in (False, True):
        model, order, flat, grads = _model(cfg, sparse=True)
        manual = ManualGradients(model, flat, grads)
        manual.defer_first_layer = True
        opt = FlatAdam(flat, lr=0.01)
        manual.bind_rows({"obs": x})
        manual(ids, *[b.numpy() if isinstance(b, torch.Tensor) else b for b in _batch(model, x, 0)[1:]], cfg)
        if drop:
            rows = manual.trunk.sparse
            indptr, cols, vals = rows.bound
            rows.bound = (indptr, cols, np.where(cols < COLS, np.float32(0), vals))
        opt.step(grads, manual.known_squares(), manual.deferred())
        results.append(flat.clone())
    assert not torch.equal(results[0], results[1])


def test_adam_kernel_follows_the_adam_formula():
    """adam_step against Adam written out in float64 (PyTorch's bias-corrected form, gradient
    times the clip factor); entries whose gradient and moments are 0 stay exactly as they were."""
    from sysgym.cython_core.ppo_sparse import adam_step

    rng = np.random.default_rng(0)
    n = 1003   # not a multiple of the kernel's 4-wide steps
    p = rng.standard_normal(n).astype(np.float32)
    m = (rng.standard_normal(n) * 1e-2).astype(np.float32)
    v = (rng.random(n) * 1e-3).astype(np.float32)
    g = (rng.standard_normal(n) * 0.1).astype(np.float32)
    p[:5], m[:5], v[:5], g[:5] = [1.5, -2.0, 0.0, -0.0, 3.0], 0, 0, 0
    lr, b1, b2, eps, coef, step = 3e-3, 0.9, 0.999, 1e-5, 0.7, 4
    gd = g.astype(np.float64) * coef
    m_ref = b1 * m + (1 - b1) * gd
    v_ref = b2 * v + (1 - b2) * gd * gd
    p_ref = p - lr / (1 - b1 ** step) * m_ref / (np.sqrt(v_ref) / np.sqrt(1 - b2 ** step) + eps)
    before = p.copy()
    root = np.sqrt(1 - b2 ** step)
    adam_step(p, g, m, v, coef, b1, b2, lr * root / (1 - b1 ** step), eps * root)
    np.testing.assert_allclose(m, m_ref, rtol=1e-6, atol=1e-8)    # float32 rounding of terms ~0.01
    np.testing.assert_allclose(v, v_ref, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(p, p_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(p[:5].view(np.int32), before[:5].view(np.int32))
    np.testing.assert_array_equal(m[:5].view(np.int32), np.zeros(5, np.int32))
    assert (p[5:] != before[5:]).mean() > 0.9   # the others moved


def test_training_with_the_deferred_first_layer_is_bit_identical(monkeypatch):
    """PPO on DeepRM's image: a run whose updates make the first layer's gradient inside the Adam
    step ends with the weights and Adam moments, bit for bit, of a run that writes the gradient."""
    import sysgym  # noqa: F401

    kwargs = {"scenario": 1, "protocol": "bracis", "episode_length": 100}
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 16), n_steps=10, num_envs=2,
                    batch_size=10, n_epochs=2, progress=False, tensorboard=False, env_kwargs=kwargs, seed=4,
                    max_grad_norm=0.1)
    states, calls = [], []
    for defer in (True, False):
        if not defer:
            monkeypatch.setattr(ManualGradients, "defer_first_layer",
                                property(lambda self: False, lambda self, value: None))
        trainer = PPOTrainer("sysgym/DeepRM-Image-v0", cfg)
        def counted(g, k=None, d=None, step=trainer.optimizer.step):
            calls.append(d is not None)
            return step(g, k, d)

        monkeypatch.setattr(trainer.optimizer, "step", counted)
        trainer.train(80)
        trainer.close()
        states.append([trainer.flat_params, trainer.optimizer.exp_avg, trainer.optimizer.exp_avg_sq])
    assert calls[:len(calls) // 2] == [True] * (len(calls) // 2) and not any(calls[len(calls) // 2:])
    for a, b in zip(*states):
        np.testing.assert_array_equal(_bits(a), _bits(b))
