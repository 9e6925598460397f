#!/usr/bin/env python3
"""bench/peers/torch_bench.py - the Python-stack side of moonrl's peer table.

Four figures, measured with plain python3 + torch + numpy on this machine:

  act_us_torch                     one-observation action of a 4-64-64-2 tanh
                                   policy, CleanRL's per-step call pattern
  train_mb128_samples_per_s_torch  forward + backward + Adam.step, minibatch 128
  ppo_cleanrl_sps_torch            a reimplementation of CleanRL's ppo.py loop
                                   on a numpy CartPole-v1 (NOT CleanRL +
                                   Gymnasium themselves: neither is installed)
  conv_train_b256_samples_per_s_torch
                                   the MinAtar-style conv policy (4x10x10,
                                   Conv2d 16 k3, relu, Linear 1024-128, relu,
                                   Linear 128-3): PPO clipped loss, backward,
                                   Adam.step at minibatch 256, CPU time

  python3 bench/peers/torch_bench.py [--steps N] [--seed S] [--threads T]
                                     [--repeat-secs X] [--json FILE]

Torch runs single-threaded unless --threads says otherwise, as moonrl's
figures are single-threaded.
"""

import argparse
import json
import math
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from torch.distributions.categorical import Categorical


def mlp(out_dim, out_std=None):
    """4-64-64-out tanh; orthogonal init like CleanRL's layer_init when out_std is given."""
    def layer(i, o, std):
        lin = nn.Linear(i, o)
        if out_std is not None:
            nn.init.orthogonal_(lin.weight, std)
            nn.init.constant_(lin.bias, 0.0)
        return lin
    return nn.Sequential(layer(4, 64, math.sqrt(2)), nn.Tanh(),
                         layer(64, 64, math.sqrt(2)), nn.Tanh(),
                         layer(64, out_dim, out_std if out_std is not None else 1.0))


def repeat_median(body, secs, repeats):
    """Median over `repeats` runs, each calling body(n) until >= secs have
    passed; seconds per call."""
    body(200)  # warm up
    t0 = time.perf_counter()
    body(200)
    n = max(200, int(200 * 0.1 / max(time.perf_counter() - t0, 1e-9)))  # ~0.1 s chunks
    per = []
    for _ in range(repeats):
        calls, t0 = 0, time.perf_counter()
        while True:
            body(n)
            calls += n
            dt = time.perf_counter() - t0
            if dt >= secs:
                break
        per.append(dt / calls)
    return statistics.median(per)


# ------------------------------------------------------------------ 1. act
def bench_act(secs, repeats):
    torch.manual_seed(1)
    net = mlp(2)
    obs = np.array([0.01, -0.02, 0.03, 0.04], dtype=np.float32)
    acc = [0]

    def body(n):
        with torch.no_grad():
            for i in range(n):
                obs[0] = (i % 7) * 0.01
                logits = net(torch.from_numpy(obs))
                dist = Categorical(logits=logits)
                a = dist.sample()
                lp = dist.log_prob(a)
                acc[0] += a.item()
                lp.item()
    return repeat_median(body, secs, repeats) * 1e6


# ------------------------------------------------------------------ 2. train
def bench_train(secs, repeats):
    torch.manual_seed(1)
    net = mlp(2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-5)
    g = torch.Generator().manual_seed(2)
    rows = 64
    X = torch.randn(rows, 128, 4, generator=g)
    A = torch.randint(0, 2, (rows, 128), generator=g)
    ADV = torch.randn(rows, 128, generator=g)

    def body(n):
        for i in range(n):
            j = i % rows
            logp = Categorical(logits=net(X[j])).log_prob(A[j])
            loss = -(logp * ADV[j]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return 128 / repeat_median(body, secs, repeats)


# ------------------------------------------------------------------ 2b. conv train
CONV_BATCH, CONV_ROWS = 256, 8


def conv_net():
    """4x10x10 -> Conv2d(4, 16, 3) -> ReLU -> flatten -> Linear(16*8*8, 128) ->
    ReLU -> Linear(128, 3): the layers of moonrl's policy
    {obs_shape = {4, 10, 10}, conv = {{out = 16, kernel = 3}}, hidden = {128},
    activation = "relu", action = discrete 3} (flatten C-major either side)."""
    return nn.Sequential(nn.Conv2d(4, 16, 3, stride=1, padding=0), nn.ReLU(), nn.Flatten(),
                         nn.Linear(16 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 3))


def cpu_median(body, secs, repeats):
    """repeat_median on this process's CPU time (the machine is shared: other
    processes' slices are left out, as bench_conv.c does; torch runs one thread)."""
    body(3)  # warm up (oneDNN primitive caches, Adam's state)
    t0 = time.process_time()
    body(3)
    n = max(1, int(3 * 0.1 / max(time.process_time() - t0, 1e-9)))
    per = []
    for _ in range(repeats):
        calls, t0 = 0, time.process_time()
        while True:
            body(n)
            calls += n
            dt = time.process_time() - t0
            if dt >= secs:
                break
        per.append(dt / calls)
    return statistics.median(per)


def bench_conv_train(secs, repeats, clip_coef=0.2):
    """CleanRL's policy part of the PPO update (advantages standardised per
    minibatch, clipped surrogate, no entropy term, no grad-norm clip), the
    same loss moonrl's policy:ppo_loss computes, then zero_grad, backward,
    Adam.step; samples per CPU second."""
    torch.manual_seed(1)
    net = conv_net()
    opt = torch.optim.Adam(net.parameters(), lr=2.5e-4, eps=1e-8)
    g = torch.Generator().manual_seed(2)
    B = CONV_BATCH
    X = (torch.rand(CONV_ROWS, B, 4, 10, 10, generator=g) < 0.1).float()  # sparse 0/1 grids
    A = torch.randint(0, 3, (CONV_ROWS, B), generator=g)
    ADV = torch.randn(CONV_ROWS, B, generator=g)
    with torch.no_grad():
        OLD = torch.stack([Categorical(logits=net(X[j])).log_prob(A[j]) for j in range(CONV_ROWS)])

    def body(n):
        for i in range(n):
            j = i % CONV_ROWS
            newlogprob = Categorical(logits=net(X[j])).log_prob(A[j])
            ratio = (newlogprob - OLD[j]).exp()
            adv = ADV[j]
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            pg_loss = torch.max(-adv * ratio,
                                -adv * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)).mean()
            opt.zero_grad()
            pg_loss.backward()
            opt.step()
    return B / cpu_median(body, secs, repeats)


# ------------------------------------------------------------------ 3. PPO
class CartPole:
    """Gymnasium's CartPole-v1 dynamics (euler), with its 500-step TimeLimit
    and RecordEpisodeStatistics-style return tracking folded in."""
    gravity, masscart, masspole = 9.8, 1.0, 0.1
    total_mass = masspole + masscart
    length = 0.5
    polemass_length = masspole * length
    force_mag, tau = 10.0, 0.02
    theta_threshold = 12 * 2 * math.pi / 360
    x_threshold = 2.4
    max_steps = 500

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.state = None
        self.t = 0
        self.ret = 0.0

    def reset(self):
        self.state = self.rng.uniform(low=-0.05, high=0.05, size=(4,))
        self.t = 0
        self.ret = 0.0
        return np.array(self.state, dtype=np.float32)

    def step(self, action):
        assert action in (0, 1)
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        costheta, sintheta = math.cos(theta), math.sin(theta)
        temp = (force + self.polemass_length * theta_dot ** 2 * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta ** 2 / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = (x, x_dot, theta, theta_dot)
        terminated = bool(x < -self.x_threshold or x > self.x_threshold
                          or theta < -self.theta_threshold or theta > self.theta_threshold)
        self.t += 1
        self.ret += 1.0
        truncated = self.t >= self.max_steps and not terminated
        return np.array(self.state, dtype=np.float32), 1.0, terminated, truncated


class SyncVec:
    """Steps the envs one by one in a Python loop and auto-resets, the way
    gymnasium 0.29's SyncVectorEnv does; returns finished episodes' returns."""

    def __init__(self, n, seed):
        self.envs = [CartPole(seed + i) for i in range(n)]

    def reset(self):
        return np.stack([e.reset() for e in self.envs])

    def step(self, actions):
        obs, rew, term, trunc, finished = [], [], [], [], []
        for e, a in zip(self.envs, actions):
            o, r, te, tr = e.step(int(a))
            if te or tr:
                finished.append(e.ret)
                o = e.reset()
            obs.append(o)
            rew.append(r)
            term.append(te)
            trunc.append(tr)
        return (np.stack(obs), np.array(rew, dtype=np.float64), np.array(term),
                np.array(trunc), finished)


class Agent(nn.Module):
    def __init__(self):
        super().__init__()
        self.critic = mlp(1, out_std=1.0)
        self.actor = mlp(2, out_std=0.01)

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


def bench_ppo(total_timesteps, seed):
    num_envs, num_steps, num_minibatches, update_epochs = 4, 128, 4, 4
    lr0, gamma, gae_lambda, clip_coef = 2.5e-4, 0.99, 0.95, 0.2
    ent_coef, vf_coef, max_grad_norm = 0.01, 0.5, 0.5
    batch_size = num_envs * num_steps
    minibatch_size = batch_size // num_minibatches
    num_iterations = total_timesteps // batch_size

    np.random.seed(seed)
    torch.manual_seed(seed)
    envs = SyncVec(num_envs, seed)
    agent = Agent()
    optimizer = torch.optim.Adam(agent.parameters(), lr=lr0, eps=1e-5)

    obs = torch.zeros((num_steps, num_envs, 4))
    actions = torch.zeros((num_steps, num_envs))
    logprobs = torch.zeros((num_steps, num_envs))
    rewards = torch.zeros((num_steps, num_envs))
    dones = torch.zeros((num_steps, num_envs))
    values = torch.zeros((num_steps, num_envs))

    returns_seen = []
    first_solved = None
    global_step = 0
    t0 = time.perf_counter()
    t_update = 0.0
    next_obs = torch.Tensor(envs.reset())
    next_done = torch.zeros(num_envs)

    for iteration in range(1, num_iterations + 1):
        frac = 1.0 - (iteration - 1.0) / num_iterations
        optimizer.param_groups[0]["lr"] = frac * lr0

        for step in range(num_steps):
            global_step += num_envs
            obs[step] = next_obs
            dones[step] = next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob
            o, reward, terminations, truncations, finished = envs.step(action.cpu().numpy())
            next_done = np.logical_or(terminations, truncations)
            rewards[step] = torch.tensor(reward).view(-1)
            next_obs, next_done = torch.Tensor(o), torch.Tensor(next_done)
            for r in finished:
                returns_seen.append(r)
                if (first_solved is None and len(returns_seen) >= 20
                        and sum(returns_seen[-20:]) / 20 >= 475):
                    first_solved = global_step

        tu = time.perf_counter()
        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(num_steps)):
                if t == num_steps - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
            returns = advantages + values

        b_obs = obs.reshape((-1, 4))
        b_logprobs = logprobs.reshape(-1)
        b_actions = actions.reshape(-1)
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_values = values.reshape(-1)

        b_inds = np.arange(batch_size)
        clipfracs = []
        for epoch in range(update_epochs):
            np.random.shuffle(b_inds)
            for start in range(0, batch_size, minibatch_size):
                mb_inds = b_inds[start:start + minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    b_obs[mb_inds], b_actions.long()[mb_inds])
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()
                with torch.no_grad():
                    old_approx_kl = (-logratio).mean()
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs += [((ratio - 1.0).abs() > clip_coef).float().mean().item()]
                mb_advantages = b_advantages[mb_inds]
                mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()
                newvalue = newvalue.view(-1)
                v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                v_clipped = b_values[mb_inds] + torch.clamp(
                    newvalue - b_values[mb_inds], -clip_coef, clip_coef)
                v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
                entropy_loss = entropy.mean()
                loss = pg_loss - ent_coef * entropy_loss + v_loss * vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), max_grad_norm)
                optimizer.step()

        # CleanRL logs these to TensorBoard; computed here, not written.
        y_pred, y_true = b_values.cpu().numpy(), b_returns.cpu().numpy()
        var_y = np.var(y_true)
        _ = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y
        _ = (old_approx_kl.item(), approx_kl.item(), np.mean(clipfracs),
             pg_loss.item(), v_loss.item(), entropy_loss.item())
        t_update += time.perf_counter() - tu

    dt = time.perf_counter() - t0
    final = sum(returns_seen[-20:]) / max(1, len(returns_seen[-20:]))
    return {"steps": global_step, "seconds": dt, "update_seconds": t_update,
            "sps": global_step / dt, "first_solved": first_solved,
            "final_mean20": final, "episodes": len(returns_seen)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100000, help="PPO env steps (default 100k)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--repeat-secs", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    print("== Python stack: python %s, torch %s, numpy %s, torch threads %d ==" % (
        sys.version.split()[0], torch.__version__, np.__version__, torch.get_num_threads()))
    fig = {}

    fig["act_us_torch"] = bench_act(args.repeat_secs, args.repeats)
    print("act_us_torch %.3f us/call  (4-64-64-2 tanh, one obs: torch.from_numpy, no_grad "
          "forward, Categorical(logits).sample + log_prob, .item(); median of %d repeats >= %.1f s)"
          % (fig["act_us_torch"], args.repeats, args.repeat_secs))

    fig["train_mb128_samples_per_s_torch"] = bench_train(args.repeat_secs, args.repeats)
    print("train_mb128_samples_per_s_torch %.0f samples/s  (4-64-64-2 tanh, minibatch 128: "
          "forward, Categorical log_prob, loss -mean(logp*adv), zero_grad, backward, Adam.step)"
          % fig["train_mb128_samples_per_s_torch"])

    fig["conv_train_b256_samples_per_s_torch"] = bench_conv_train(args.repeat_secs, args.repeats)
    print("conv_train_b256_samples_per_s_torch %.0f samples/s  (4x10x10 -> Conv2d(4,16,k3) relu "
          "-> Linear(1024,128) relu -> Linear(128,3), minibatch 256: forward, Categorical "
          "log_prob, PPO clipped loss with per-minibatch advantage standardisation, zero_grad, "
          "backward, Adam.step; CPU time, median of %d repeats >= %.1f s)"
          % (fig["conv_train_b256_samples_per_s_torch"], args.repeats, args.repeat_secs))

    r = bench_ppo(args.steps, args.seed)
    fig["ppo_cleanrl_sps_torch"] = r["sps"]
    fig["ppo_cleanrl_first_475_steps_torch"] = r["first_solved"]
    fig["ppo_cleanrl_final_mean20_torch"] = r["final_mean20"]
    fig["ppo_cleanrl_steps_torch"] = r["steps"]
    print("ppo_cleanrl_sps_torch %.0f env steps/s  (%d steps in %.2f s, update %.2f s; "
          "%d episodes, final mean of last 20 returns %.1f, first >= 475 at %s steps)"
          % (r["sps"], r["steps"], r["seconds"], r["update_seconds"], r["episodes"],
             r["final_mean20"], r["first_solved"]))
    print("  NOTE: this is a reimplementation of CleanRL's ppo.py training loop (same "
          "hyperparameters and update code) on a Python/numpy CartPole-v1 with Gymnasium's "
          "dynamics, a 500-step limit and SyncVectorEnv-style one-by-one stepping; it is NOT "
          "CleanRL + Gymnasium themselves (Gymnasium's wrapper layers and TensorBoard "
          "logging are not included, so the real stack would be somewhat slower).")
    fig["torch_version"] = torch.__version__
    fig["torch_threads"] = torch.get_num_threads()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f, indent=2, sort_keys=True)
            f.write("\n")
        print("written: " + args.json)


if __name__ == "__main__":
    main()
