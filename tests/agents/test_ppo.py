"""The reference PPO: it learns, it saves and loads, it respects masks, its GAE and autoreset are right."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import sysgym  # noqa: F401
from sysgym.agents.ppo import (
    PPOConfig,
    PPOTrainer,
    default_config,
    load_policy,
    parse_overrides,
    train,
)
from sysgym.agents.ppo.buffer import gae
from sysgym.agents.ppo.distributions import CategoricalHead
from sysgym.agents.ppo.evaluation import evaluate_batched
from sysgym.agents.ppo.networks import ActorCritic
from sysgym.bench import masked_random_policy

# One job type (length 1, size 1-2 on 4 processors) arriving often: scheduling every job the moment
# it arrives is optimal and gives slowdown exactly 1 (slowdown = (finish - submit) / length >= 1).
TRIVIAL = dict(num_processors=4, max_job_length=5, max_job_size=2, window=2, backlog=4, horizon=5,
               episode_length=30, new_job_rate=0.8, small_job_chance=1.0)
QUIET = dict(progress=False, tensorboard=False)


class _RandomValid:
    """Uniformly random valid action (void included): the 'random' baseline."""

    def __init__(self, seed: int = 0):
        self.policy = masked_random_policy(seed)

    def act(self, obs, info):
        return self.policy(obs, info)


def test_ppo_learns_the_optimal_schedule_of_a_trivial_cluster():
    policy, result = train("sysgym/DeepRM-v0", steps=12_000, seed=0, num_envs=8, env_kwargs=TRIVIAL, **QUIET)
    assert result.global_step >= 12_000
    ppo = evaluate_batched(policy, "sysgym/DeepRM-v0", 32, seed=7, **TRIVIAL).mean()
    rand = evaluate_batched(_RandomValid(), "sysgym/DeepRM-v0", 32, seed=7, **TRIVIAL).mean()
    assert rand["mean_slowdown"] > 1.5  # random waits with fitting jobs: clearly sub-optimal
    assert ppo["mean_slowdown"] <= 1.05  # the optimum is 1.0
    assert ppo["jobs_left"] == 0 and ppo["invalid_actions"] == 0
    assert ppo["return"] > rand["return"] + 0.5 * abs(rand["return"])
    # training logs carry the env's episode metrics
    assert "metric/mean_slowdown" in result.history[-1]


@pytest.mark.parametrize("normalize_obs", [False, True])
def test_checkpoint_round_trip_gives_identical_actions(tmp_path, normalize_obs):
    cfg = default_config("sysgym/DeepRM-Compact-v0", num_envs=4, n_steps=16, total_steps=128,
                         normalize_obs=normalize_obs, seed=3, **QUIET)
    trainer = PPOTrainer("sysgym/DeepRM-Compact-v0", cfg, tmp_path)
    result = trainer.train()
    trainer.close()
    assert result.checkpoint == tmp_path / "checkpoint.pt"
    live = trainer.policy(deterministic=True)
    loaded = load_policy(tmp_path)
    env = gym.make_vec("sysgym/DeepRM-Compact-v0", num_envs=6, vectorization_mode="vector_entry_point")
    obs, info = env.reset(seed=11)
    for _ in range(30):
        a, b = live.act(obs, info), loaded.act(obs, info)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(live.embed(obs), loaded.embed(obs))
        obs, _, _, _, info = env.step(a)
    # stochastic mode: the same seed gives the same samples
    s1, s2 = trainer.policy(False, seed=5), load_policy(tmp_path / "checkpoint.pt", deterministic=False, seed=5)
    np.testing.assert_array_equal(s1.act(obs, info), s2.act(obs, info))
    # single (unbatched) observations give a plain int
    single = gym.make("sysgym/DeepRM-Compact-v0")
    o, i = single.reset(seed=1)
    assert isinstance(loaded.act(o, i), int) and live.act(o, i) == loaded.act(o, i)
    assert loaded.embed(o).shape == (64,)
    if normalize_obs:
        stats = trainer.adapter.rms["obs"]
        assert stats.count > 100 and not np.allclose(stats.mean, 0.0)
        np.testing.assert_array_equal(loaded.adapter.rms["obs"].mean, stats.mean)


def test_masked_actions_are_never_sampled():
    space = gym.spaces.Discrete(6)
    head = CategoricalHead(4, space)
    logits = torch.tensor([[50.0, 40.0, 0.0, -3.0, 1.0, 2.0]]).repeat(20_000, 1)
    mask = torch.zeros(20_000, 6, dtype=torch.bool)
    mask[:, 3] = mask[:, 5] = True  # the two most likely actions are masked out
    gen = torch.Generator().manual_seed(0)
    actions, logp = head.sample(logits, mask, gen)
    assert set(actions.unique().tolist()) == {3, 5}
    logp_eval, entropy = head.evaluate(logits, mask, actions)
    torch.testing.assert_close(logp, logp_eval)
    assert torch.isfinite(entropy).all()
    # frequencies follow the renormalised probabilities: p(5) = e^2 / (e^-3 + e^2)
    assert abs((actions == 5).float().mean().item() - np.exp(2) / (np.exp(-3) + np.exp(2))) < 0.01
    assert (head.mode(logits, mask) == 5).all()


def test_rollouts_only_take_valid_actions():
    cfg = default_config("sysgym/DeepRM-Compact-v0", num_envs=8, n_steps=64, total_steps=8 * 64 * 2, **QUIET)
    trainer = PPOTrainer("sysgym/DeepRM-Compact-v0", cfg)
    trainer.train()
    buf = trainer.buffer
    chosen = buf.masks.gather(-1, buf.actions.unsqueeze(-1)).squeeze(-1)
    assert chosen.all()
    assert not buf.masks.all()  # some actions really were masked
    trainer.close()


def test_gae_matches_a_hand_computation():
    gamma, lam = 0.9, 0.5
    # one env, 3 steps: the episode terminates after step 1; step 2 starts a new episode
    rewards = np.array([[1.0], [2.0], [3.0]])
    values = np.array([[0.5], [1.0], [2.0]])
    bootstrap = np.array([[1.0], [0.0], [1.0]])
    cont = np.array([[1.0], [0.0], [1.0]])
    last = np.array([4.0])
    adv, ret = gae(rewards, values, bootstrap, cont, last, gamma, lam)
    d2 = 3.0 + 0.9 * 4.0 - 2.0  # 4.6
    d1 = 2.0 - 1.0  # terminated: no bootstrap
    d0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    expected = np.array([[d0 + 0.45 * d1], [d1], [d2]])
    np.testing.assert_allclose(adv, expected)
    np.testing.assert_allclose(ret, expected + values)
    # truncation in NextStep mode: bootstrap stays on (the next value is V(final obs)), the chain breaks
    adv_t, _ = gae(rewards, values, np.ones((3, 1)), cont, last, gamma, lam)
    assert adv_t[1, 0] == pytest.approx(2.0 + 0.9 * 2.0 - 1.0)


def test_next_step_autoreset_masks_out_reset_steps():
    env = gym.make_vec("sysgym/DeepRM-v0", num_envs=4, vectorization_mode="vector_entry_point",
                       episode_length=5, time_limit=8, **{k: v for k, v in TRIVIAL.items() if k != "episode_length"})
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    cfg = PPOConfig(num_envs=4, n_steps=40, total_steps=160, batch_size=32, **QUIET)
    trainer = PPOTrainer(env, cfg)
    result = trainer.train()
    buf = trainer.buffer
    ended = buf.cont == 0
    assert ended.any()
    # the step after an episode end is the env's reset step: excluded from the loss
    np.testing.assert_array_equal(buf.valid[1:], ~ended[:-1])
    assert result.global_step == 160 - int((~buf.valid).sum())


def test_same_step_truncation_bootstraps_from_the_final_observation():
    env = gym.make_vec("sysgym/DeepRM-v0", num_envs=2, vectorization_mode="vector_entry_point",
                       autoreset_mode=AutoresetMode.SAME_STEP, time_limit=6,
                       **{k: v for k, v in TRIVIAL.items()})
    cfg = PPOConfig(num_envs=2, n_steps=30, total_steps=60, batch_size=30, **QUIET)
    trainer = PPOTrainer(env, cfg)
    obs, info = env.reset(seed=0)
    trainer._obs, trainer._info = obs, info
    from sysgym.agents.ppo.logger import TrainingLogger

    trainer.logger = TrainingLogger(None, 1, False, False)
    trainer.collect_rollout()
    buf = trainer.buffer
    ended = buf.cont == 0
    assert ended.any() and buf.valid.all()
    # SameStep: no reset steps to skip; an episode end closes the GAE chain and the bootstrap
    # (for truncation gamma * V(final obs) is added to the reward instead)
    assert (buf.bootstrap[ended] == 0).all() and (buf.bootstrap[~ended] == 1).all()


def test_parse_overrides_types_and_errors():
    cfg, env = parse_overrides(["lr=3e-4", "hidden_sizes=128,128", "norm_adv=false", "target_kl=None",
                                "n_epochs=3", "clip_coef=1", "env.scenario=9", "env.observation=image"])
    assert cfg == {"lr": 3e-4, "hidden_sizes": (128, 128), "norm_adv": False, "target_kl": None,
                   "n_epochs": 3, "clip_coef": 1.0}
    assert env == {"scenario": 9, "observation": "image"}
    with pytest.raises(ValueError, match="unknown PPO setting 'learning_rate'"):
        parse_overrides(["learning_rate=1"])
    with pytest.raises(ValueError, match="n_epochs"):
        parse_overrides(["n_epochs=1.5"])
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["lr"])
    with pytest.raises(ValueError, match="PPOConfig.gamma"):
        PPOConfig(gamma=1.5)


def test_deeprm_preset_is_bracis_table_2():
    cfg = default_config("sysgym/DeepRM-CompactSparse-v0")
    assert (cfg.lr, cfg.n_steps, cfg.batch_size, cfg.ent_coef, cfg.gae_lambda, cfg.clip_coef, cfg.n_epochs,
            cfg.gamma, cfg.vf_coef) == (1e-4, 50, 64, 0.01, 0.95, 0.2, 10, 0.99, 0.5)
    assert cfg.shared_trunk and cfg.hidden_sizes == (64, 64)


class _DictImageEnv(gym.Env):
    """Toy env with a Dict observation (image + vector) and a masked Discrete action: reward 1 for
    choosing the action named by the vector, which is never masked."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, shape=(8, 8, 1), dtype=np.uint8),
            "target": gym.spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32)})
        self.action_space = gym.spaces.Discrete(4)
        self.t = 0

    def _obs(self):
        self.target = int(self.np_random.integers(4))
        mask = np.ones(4, dtype=np.int8)
        mask[(self.target + 1) % 4] = 0
        vec = np.zeros(4, dtype=np.float32)
        vec[self.target] = 1.0
        img = self.np_random.integers(0, 255, size=(8, 8, 1), dtype=np.uint8)
        return {"image": img, "target": vec}, {"action_mask": mask}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs()

    def step(self, action):
        assert action != (self.target + 1) % 4, "masked action taken"
        reward = float(action == self.target)
        self.t += 1
        obs, info = self._obs()
        return obs, reward, False, self.t >= 10, info


def test_dict_image_observations_and_sync_vector_envs():
    env = gym.vector.SyncVectorEnv([_DictImageEnv for _ in range(4)], autoreset_mode=AutoresetMode.SAME_STEP)
    cfg = PPOConfig(num_envs=4, n_steps=32, total_steps=4 * 32 * 30, batch_size=64, lr=3e-3,
                    n_epochs=4, **QUIET)
    trainer = PPOTrainer(env, cfg)
    assert trainer.manual is None  # CNN encoder: autograd path
    result = trainer.train()
    assert np.isfinite([r["value_loss"] for r in result.history]).all()
    assert result.history[-1]["return_mean"] > 6.0  # random scores 10 / 3 among 3 valid actions
    policy = trainer.policy()
    obs, info = env.reset(seed=0)
    assert policy.embed(obs).shape == (4, 64)


def test_box_actions_with_gaussian_heads():
    env = gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
    for squash in ("clip", "tanh"):
        cfg = PPOConfig(num_envs=2, n_steps=64, total_steps=256, batch_size=64, squash=squash,
                        normalize_obs=True, normalize_reward=True, **QUIET)
        trainer = PPOTrainer(env, cfg)
        assert trainer.manual is not None
        trainer.train()
        obs, info = env.reset(seed=0)
        actions = trainer.policy(deterministic=False, seed=0).act(obs, info)
        assert actions.shape == (2, 1) and actions.dtype == np.float32
        assert np.all(np.abs(actions) <= 2.0)


def test_actor_critic_separate_trunks_have_separate_parameters():
    space = gym.spaces.Box(0, 1, (5,), np.float32)
    shared = ActorCritic(space, gym.spaces.Discrete(3), PPOConfig(shared_trunk=True))
    separate = ActorCritic(space, gym.spaces.Discrete(3), PPOConfig(shared_trunk=False))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    trunk = 5 * 64 + 64 + 64 * 64 + 64
    assert count(separate) - count(shared) == trunk


# BRACIS'21 reports the parameters of its networks: image 301,068 / 1,089,548 / 1,821,708 for its three
# image sizes and compact 24,332. With 11 actions (10 slots + void) these are exactly separate 2x64
# actor and critic MLPs on 20 x 114, 20 x 422 and 20 x 708 images (sched-rl-gym's image: H = 20 rows of
# (W + 1) x processors + backlog / H + 1 columns for 10, 38 and 64 processors) and on sched-rl-gym's
# 118-entry compact vector (2H + 7W + 8).
PAPER_PARAMETERS = [((20, 114), 301_068), ((20, 422), 1_089_548), ((20, 708), 1_821_708), ((118,), 24_332)]


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("shape, paper", PAPER_PARAMETERS)
def test_bracis_preset_has_the_papers_parameter_counts(shape, paper):
    from sysgym.agents.ppo.config import BRACIS_PRESET
    from sysgym.agents.ppo.fastgrad import supports

    cfg = default_config("sysgym/DeepRM-v0", **BRACIS_PRESET, encoder="mlp")
    assert not cfg.shared_trunk and cfg.hidden_sizes == (64, 64) and cfg.activation == "tanh"
    model = ActorCritic(gym.spaces.Box(0.0, 1.0, shape, np.float32), gym.spaces.Discrete(11), cfg)
    assert _parameters(model) == paper
    assert supports(model)  # trained by the numpy fast path
    # the shared trunk the paper's text describes would have one trunk fewer
    shared = ActorCritic(gym.spaces.Box(0.0, 1.0, shape, np.float32), gym.spaces.Discrete(11),
                         cfg.replace(shared_trunk=True))
    assert _parameters(shared) == paper - (int(np.prod(shape)) * 64 + 64 + 64 * 64 + 64)


@pytest.mark.parametrize("scenario", range(1, 11))
def test_bracis_preset_on_our_scenarios(scenario):
    """Our image has slots max_job_size wide where sched-rl-gym's are `processors` wide: the two agree
    (and so do the parameter counts) where a job may take the whole cluster, scenarios 1, 2, 6, 8, 10.
    Elsewhere our image is narrower; the missing columns are always empty in the paper's image
    (no job is wider than max_job_size), so they carry no information. Our compact vector has 123
    entries (2RH + W(7 + R) + 3, BRACIS Table 1) against sched-rl-gym's 118."""
    from sysgym.agents.ppo.config import BRACIS_PRESET

    cfg = default_config("sysgym/DeepRM-v0", **BRACIS_PRESET, encoder="mlp")
    paper = dict(PAPER_PARAMETERS)
    for env_id in ("sysgym/DeepRM-Image-v0", "sysgym/DeepRM-CompactSparseReduced-v0"):
        env = gym.make(env_id, scenario=scenario, protocol="bracis")
        n = int(np.prod(env.observation_space.shape))
        count = _parameters(ActorCritic(env.observation_space, env.action_space, cfg))
        assert count == 2 * (64 * n + 64 + 64 * 64 + 64) + 65 * 11 + 65
        if env_id.endswith("Image-v0") and scenario in (1, 2, 6, 8, 10):
            assert count == paper[env.observation_space.shape]
        if env_id.endswith("Reduced-v0"):
            assert n == 123 and count == paper[(118,)] + 128 * 5


def test_cli_train_then_evaluate(tmp_path, capsys):
    from sysgym.cli import main

    out = tmp_path / "run"
    assert main(["train", "--env", "sysgym/DeepRM-Compact-v0", "--steps", "400", "--num-envs", "4",
                 "--out", str(out), "progress=False", "tensorboard=False", "n_steps=25"]) == 0
    assert (out / "checkpoint.pt").exists() and (out / "progress.csv").exists()
    assert '"n_steps": 25' in (out / "config.json").read_text()
    header = (out / "progress.csv").read_text().splitlines()[0].split(",")
    for column in ("global_step", "sps", "policy_loss", "value_loss", "approx_kl", "clip_fraction",
                   "explained_variance"):
        assert column in header
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out), "--episodes", "2", "env.scenario=3"]) == 0
    table = capsys.readouterr().out
    for name in ("ppo", "sjf", "packer", "mean_slowdown"):
        assert name in table
    capsys.readouterr()
    assert main(["train", "--env", "sysgym/DeepRM-Compact-v0", "--steps", "10", "bogus=1"]) == 2
    assert "unknown PPO setting 'bogus'" in capsys.readouterr().err


@pytest.mark.parametrize("env_id", [e.id for e in sysgym.ENVIRONMENTS])
def test_ppo_trains_and_acts_on_every_registered_environment(env_id):
    cfg = default_config(env_id, num_envs=2, n_steps=16, total_steps=64, batch_size=16, **QUIET)
    trainer = PPOTrainer(env_id, cfg)
    result = trainer.train()
    trainer.close()
    assert result.global_step == 64
    row = result.history[-1]
    assert np.isfinite([row["policy_loss"], row["value_loss"], row["entropy"]]).all()
    env = gym.make(env_id)
    obs, info = env.reset(seed=0)
    policy = trainer.policy(deterministic=False, seed=0)
    for _ in range(5):
        action = policy.act(obs, info)
        assert env.action_space.contains(action)
        if "action_mask" in info:
            assert info["action_mask"][action]
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break


def test_target_kl_stops_the_epochs_early():
    cfg = default_config("sysgym/DeepRM-Compact-v0", num_envs=4, n_steps=32, total_steps=256, lr=1e-2,
                         target_kl=1e-9, **QUIET)
    trainer = PPOTrainer("sysgym/DeepRM-Compact-v0", cfg)
    result = trainer.train()
    trainer.close()
    assert all(row["early_stop"] == 1.0 for row in result.history[1:])
    assert trainer.optimizer.steps < cfg.num_updates * cfg.n_epochs * 2  # 2 minibatches per epoch


@pytest.mark.parametrize("squash", ["clip", "tanh"])
def test_numpy_rollouts_store_what_the_torch_network_computes(squash):
    """Rollouts act through NumpyActor; its log-probs and values must be the torch heads' own."""
    for env in (gym.make_vec("sysgym/DeepRM-Compact-v0", num_envs=4, vectorization_mode="vector_entry_point",
                             autoreset_mode=AutoresetMode.SAME_STEP),
                gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync",
                             vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})):
        cfg = PPOConfig(num_envs=env.num_envs, n_steps=32, total_steps=64 * env.num_envs, batch_size=32,
                        squash=squash, shared_trunk=False, **QUIET)
        trainer = PPOTrainer(env, cfg)
        assert trainer.fast_actor is not None
        trainer.train()  # rollouts and updates: the actor must see the updated weights
        trainer.collect_rollout()
        buf = trainer.buffer
        data = buf.flat()
        with torch.no_grad():
            params, values = trainer.model(data["obs"])
            logp, _ = trainer.head.evaluate(params, data["masks"], data["actions"])
        torch.testing.assert_close(data["logprobs"], logp, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(buf.values.reshape(-1), values.numpy(), rtol=1e-4, atol=1e-5)
        env.close()


def test_entropy_coefficient_falls_linearly_and_is_the_one_the_update_uses():
    cfg = default_config("sysgym/DeepRM-Compact-v0", num_envs=2, n_steps=16, total_steps=96, ent_coef=0.4,
                         ent_coef_final=0.0, **QUIET)
    trainer = PPOTrainer("sysgym/DeepRM-Compact-v0", cfg)
    result = trainer.train()
    assert [round(r["ent_coef"], 6) for r in result.history] == [0.4, 0.2, 0.0]
    assert trainer.config.ent_coef == 0.4                 # the config (and the checkpoint) keep the settings
    # one update with ent_coef set by the schedule equals one with that coefficient configured
    updated = []
    for configured, scheduled in ((0.3, None), (0.0, 0.3)):
        t = PPOTrainer("sysgym/DeepRM-Compact-v0", default_config("sysgym/DeepRM-Compact-v0", num_envs=2,
                       n_steps=16, ent_coef=configured, seed=5, **QUIET))
        if scheduled is not None:
            t.ent_coef = scheduled
        t._obs, t._info = t.env.reset(seed=0)
        t.collect_rollout()
        t.update()
        updated.append(t.flat_params.clone())
    torch.testing.assert_close(updated[0], updated[1])
    with pytest.raises(ValueError, match="ent_coef_final"):
        PPOConfig(ent_coef_final=-0.1)


def test_runs_with_different_seeds_see_disjoint_input_streams():
    """Seed s trains on sub-env seeds s*B ... s*B + B-1 (not Gymnasium's s + i, which would give
    seeds 0 and 1 all but one stream in common)."""
    seeds = []

    class RecordSeeds(gym.vector.VectorWrapper):
        def reset(self, *, seed=None, options=None):
            seeds.append(seed)
            return self.env.reset(seed=seed, options=options)

    for seed in (0, 1):
        env = RecordSeeds(gym.make_vec("sysgym/ABR-v0", num_envs=4, vectorization_mode="vector_entry_point",
                                       autoreset_mode=AutoresetMode.SAME_STEP))
        PPOTrainer(env, default_config("sysgym/ABR-v0", num_envs=4, n_steps=8, total_steps=32, seed=seed,
                                       **QUIET)).train()
    assert seeds == [[0, 1, 2, 3], [4, 5, 6, 7]]
