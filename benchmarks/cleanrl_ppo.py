"""A CleanRL-style single-file PPO in plain torch, with action masking: the time-to-target peer.

It follows the structure of CleanRL's ``ppo.py`` (Huang et al., "The 37 Implementation Details of
PPO", 2022): one loop that collects ``n_steps`` from a vector env, computes GAE, then runs
``n_epochs`` passes of shuffled minibatches of the clipped objective through torch autograd.
Written for this benchmark from the algorithm, not copied. It steps sysgym's native vector env
(``vector_entry_point``, same-step autoreset) so that the gap to sysgym's PPO is the training
loop, not the env. Settings are a :class:`sysgym.agents.ppo.config.PPOConfig` (the same values
every trainer in the benchmark gets); observations are flattened; invalid actions get logit -1e8;
rewards are scaled by the running std of the discounted return when ``normalize_reward`` is on
(as Gymnasium's ``NormalizeReward``) and observations standardised by running statistics, clipped
to ``clip_obs``, when ``normalize_obs`` is on (as ``NormalizeObservation``; acting uses the stats
as they are). Truncated episodes are treated as ended (CleanRL's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import nn


def _layer(n_in: int, n_out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.constant_(layer.bias, 0.0)
    return layer


def _mlp(n_in: int, sizes: tuple[int, ...], activation: type[nn.Module]) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [_layer(n_in, size, np.sqrt(2)), activation()]
        n_in = size
    return nn.Sequential(*layers), n_in


class _RunningStats:
    """Running mean and variance of batches (parallel-variance update, as Gymnasium's wrappers)."""

    def __init__(self, shape: tuple[int, ...]):
        self.count, self.mean, self.var = 1e-4, np.zeros(shape), np.ones(shape)

    def update(self, batch: np.ndarray) -> None:
        batch_mean, batch_var, n = batch.mean(0), batch.var(0), len(batch)
        delta, total = batch_mean - self.mean, self.count + n
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.mean = self.mean + delta * n / total
        self.count = total


class _ObsScaler:
    """Standardise observations with running statistics and clip them (NormalizeObservation)."""

    def __init__(self, n_obs: int, clip: float):
        self.stats, self.clip = _RunningStats((n_obs,)), clip

    def __call__(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        if update:
            self.stats.update(obs)
        return np.clip((obs - self.stats.mean) / np.sqrt(self.stats.var + 1e-8), -self.clip, self.clip)


class Agent(nn.Module):
    """Actor and critic MLPs (or one shared trunk) with CleanRL's orthogonal initialisation."""

    def __init__(self, n_obs: int, n_actions: int, sizes: tuple[int, ...], activation: str, shared: bool):
        super().__init__()
        act = nn.Tanh if activation == "tanh" else nn.ReLU
        self.actor_body, width = _mlp(n_obs, sizes, act)
        self.critic_body = self.actor_body if shared else _mlp(n_obs, sizes, act)[0]
        self.actor_head = _layer(width, n_actions, 0.01)
        self.critic_head = _layer(width, 1, 1.0)
        self.obs_scaler: _ObsScaler | None = None

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic_head(self.critic_body(x)).squeeze(-1)

    def logits(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out = self.actor_head(self.actor_body(x))
        return out if mask is None else torch.where(mask, out, torch.full_like(out, -1e8))

    def act(self, obs: np.ndarray, mask: np.ndarray | None, greedy: bool = True,
            generator: torch.Generator | None = None) -> np.ndarray:
        """Actions for a batch: the mode, or samples drawn with ``generator``."""
        with torch.no_grad():
            flat = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
            if self.obs_scaler is not None:
                flat = self.obs_scaler(flat)
            x = torch.as_tensor(flat, dtype=torch.float32)
            m = None if mask is None else torch.as_tensor(mask, dtype=torch.bool)
            logits = self.logits(x, m)
            if greedy:
                return logits.argmax(-1).numpy()
            return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(1).numpy()


class _ReturnScaler:
    """Divide rewards by the running std of the discounted return (Gymnasium's NormalizeReward)."""

    def __init__(self, num_envs: int, gamma: float, clip: float):
        self.ret = np.zeros(num_envs)
        self.gamma, self.clip = gamma, clip
        self.stats = _RunningStats(())

    def __call__(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        self.ret = self.ret * self.gamma + reward
        self.stats.update(self.ret)
        self.ret[done] = 0.0
        return np.clip(reward / np.sqrt(self.stats.var + 1e-8), -self.clip, self.clip)


def train(env_id: str, config: Any, total_steps: int,
          on_iteration: Callable[[int, Agent], bool] | None = None) -> Agent:
    """PPO on ``env_id`` with ``config`` (a PPOConfig) for up to ``total_steps`` env steps.

    ``on_iteration(global_step, agent)`` runs after every update; returning True stops training.
    """
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.torch_threads)
    rng = np.random.default_rng(config.seed)
    n, t_len = config.num_envs, config.n_steps
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point",
                        autoreset_mode=AutoresetMode.SAME_STEP, **config.env_kwargs)
    n_obs = int(np.prod(envs.single_observation_space.shape))
    n_actions = int(envs.single_action_space.n)
    agent = Agent(n_obs, n_actions, config.hidden_sizes, config.activation, config.shared_trunk)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.lr, eps=config.adam_eps)
    scaler = _ReturnScaler(n, config.gamma, config.clip_reward) if config.normalize_reward else None
    if config.normalize_obs:
        agent.obs_scaler = _ObsScaler(n_obs, config.clip_obs)

    def observe(raw: Any) -> torch.Tensor:
        flat = np.asarray(raw, dtype=np.float64).reshape(n, -1)
        if agent.obs_scaler is not None:
            flat = agent.obs_scaler(flat, update=True)
        return torch.as_tensor(flat, dtype=torch.float32)

    obs_buf = torch.zeros((t_len, n, n_obs))
    mask_buf = torch.ones((t_len, n, n_actions), dtype=torch.bool)
    act_buf = torch.zeros((t_len, n), dtype=torch.long)
    logp_buf, rew_buf, done_buf, val_buf = (torch.zeros((t_len, n)) for _ in range(4))

    obs, info = envs.reset(seed=[config.seed * n + i for i in range(n)])
    next_obs = observe(obs)
    next_mask = torch.as_tensor(info["action_mask"], dtype=torch.bool) if "action_mask" in info else None
    next_done = torch.zeros(n)
    iterations = max(1, -(-total_steps // (n * t_len)))
    global_step = 0
    try:
        for it in range(iterations):
            if config.anneal_lr:
                optimizer.param_groups[0]["lr"] = config.lr * (1.0 - it / iterations)
            for t in range(t_len):
                obs_buf[t], done_buf[t] = next_obs, next_done
                if next_mask is not None:
                    mask_buf[t] = next_mask
                with torch.no_grad():
                    logits = agent.logits(next_obs, next_mask)
                    dist = torch.distributions.Categorical(logits=logits)
                    action = dist.sample()
                    logp_buf[t], val_buf[t] = dist.log_prob(action), agent.value(next_obs)
                act_buf[t] = action
                obs, reward, terminated, truncated, info = envs.step(action.numpy())
                done = np.logical_or(terminated, truncated)
                reward = scaler(np.asarray(reward, dtype=np.float64), done) if scaler else reward
                rew_buf[t] = torch.as_tensor(reward, dtype=torch.float32)
                next_obs = observe(obs)
                next_mask = torch.as_tensor(info["action_mask"], dtype=torch.bool) if "action_mask" in info else None
                next_done = torch.as_tensor(done, dtype=torch.float32)
            global_step += n * t_len
            _update(agent, optimizer, config, rng, obs_buf, mask_buf, act_buf, logp_buf, rew_buf,
                    done_buf, val_buf, next_obs, next_done)
            if on_iteration is not None and on_iteration(global_step, agent):
                break
    finally:
        envs.close()
    return agent


def _update(agent: Agent, optimizer: torch.optim.Optimizer, cfg: Any, rng: np.random.Generator,
            obs_buf: torch.Tensor, mask_buf: torch.Tensor, act_buf: torch.Tensor, logp_buf: torch.Tensor,
            rew_buf: torch.Tensor, done_buf: torch.Tensor, val_buf: torch.Tensor,
            next_obs: torch.Tensor, next_done: torch.Tensor) -> None:
    """GAE, then ``n_epochs`` passes of shuffled minibatches of the clipped PPO loss."""
    t_len = len(rew_buf)
    with torch.no_grad():
        next_value = agent.value(next_obs)
        adv = torch.zeros_like(rew_buf)
        last = torch.zeros_like(next_value)
        for t in reversed(range(t_len)):
            not_done = 1.0 - (next_done if t == t_len - 1 else done_buf[t + 1])
            following = next_value if t == t_len - 1 else val_buf[t + 1]
            delta = rew_buf[t] + cfg.gamma * following * not_done - val_buf[t]
            last = delta + cfg.gamma * cfg.gae_lambda * not_done * last
            adv[t] = last
        returns = adv + val_buf
    b_obs, b_mask = obs_buf.reshape(-1, obs_buf.shape[-1]), mask_buf.reshape(-1, mask_buf.shape[-1])
    b_act, b_logp, b_adv = act_buf.reshape(-1), logp_buf.reshape(-1), adv.reshape(-1)
    b_ret, b_val = returns.reshape(-1), val_buf.reshape(-1)
    size = len(b_act)
    for _ in range(cfg.n_epochs):
        order = rng.permutation(size)
        approx_kl = 0.0
        for start in range(0, size, cfg.batch_size):
            idx = torch.as_tensor(order[start:start + cfg.batch_size])
            dist = torch.distributions.Categorical(logits=agent.logits(b_obs[idx], b_mask[idx]))
            logp = dist.log_prob(b_act[idx])
            log_ratio = logp - b_logp[idx]
            ratio = log_ratio.exp()
            with torch.no_grad():
                approx_kl = float(((ratio - 1) - log_ratio).mean())
            mb_adv = b_adv[idx]
            if cfg.norm_adv and len(idx) > 1:
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
            pg_loss = torch.max(-mb_adv * ratio,
                                -mb_adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
            value = agent.value(b_obs[idx])
            if cfg.clip_vloss:
                clipped = b_val[idx] + (value - b_val[idx]).clamp(-cfg.clip_coef, cfg.clip_coef)
                v_loss = 0.5 * torch.max((value - b_ret[idx]) ** 2, (clipped - b_ret[idx]) ** 2).mean()
            else:
                v_loss = 0.5 * ((value - b_ret[idx]) ** 2).mean()
            loss = pg_loss - cfg.ent_coef * dist.entropy().mean() + cfg.vf_coef * v_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)
            optimizer.step()
        if cfg.target_kl is not None and approx_kl > cfg.target_kl:
            break
