#!/usr/bin/env python3
"""One PPO update in torch (CPU, one thread) on the network and batch that `sim-bench ppo` times.

The same update as sim-train's learner (and Stable-Baselines3's): a Gaussian actor ([obs] -> 64 -> 64
-> [act], tanh, state-independent log std) and a separate critic (-> 1), orthogonal init; per epoch a
shuffled pass in minibatches; per minibatch: advantages normalized, clipped surrogate, clipped value
loss (0.5 coefficient), entropy term, one backward, global grad-norm clip 0.5, Adam (lr 3e-4, eps 1e-5).
Synthetic rollout: random observations, rewards and episode ends, actions sampled from the policy.

    .venv-train/bin/python Benchmarks/python/ppo_update_bench.py            # scripts/bench-train.sh installs torch
    .build/release/sim-bench ppo                                            # the same update in sim-train

A heavy peer (torch): kept out of CI.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch
from torch import nn


def mlp(sizes, out_gain):
    layers = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        nn.init.orthogonal_(linear.weight, gain=out_gain if i == len(sizes) - 2 else math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--observations", type=int, default=4)
    p.add_argument("--actions", type=int, default=1)
    p.add_argument("--envs", type=int, default=16)
    p.add_argument("--rollout-steps", type=int, default=128)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--hidden", default="64,64")
    p.add_argument("--updates", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    hidden = [int(h) for h in args.hidden.split(",")]
    n = args.rollout_steps * args.envs
    o, a = args.observations, args.actions
    times = []
    for r in range(args.repeats):
        torch.manual_seed(r + 1)
        actor, critic = mlp([o, *hidden, a], 0.01), mlp([o, *hidden, 1], 1.0)
        log_std = nn.Parameter(torch.zeros(a))
        params = list(actor.parameters()) + [log_std] + list(critic.parameters())
        opt = torch.optim.Adam(params, lr=3e-4, eps=1e-5)
        g = np.random.default_rng(99)
        obs = torch.tensor(g.normal(size=(n, o)), dtype=torch.float32)
        with torch.no_grad():
            mean = actor(obs)
            dist = torch.distributions.Normal(mean, log_std.exp())
            act = dist.sample()
            old_logp = dist.log_prob(act).sum(-1)
            old_v = critic(obs).squeeze(-1)
        rewards = torch.tensor(g.normal(size=n), dtype=torch.float32)
        dones = torch.tensor(g.uniform(size=n) < 0.02, dtype=torch.float32)
        adv = torch.zeros(n)
        last = torch.zeros(args.envs)
        for t in reversed(range(args.rollout_steps)):  # GAE, as the learner computes it (not timed there either)
            s = slice(t * args.envs, (t + 1) * args.envs)
            nv = old_v[(t + 1) * args.envs:(t + 2) * args.envs] if t + 1 < args.rollout_steps else torch.zeros(args.envs)
            delta = rewards[s] + 0.99 * nv * (1 - dones[s]) - old_v[s]
            last = delta + 0.99 * 0.95 * (1 - dones[s]) * last
            adv[s] = last
        returns = adv + old_v
        batch = n // args.minibatches
        start = time.perf_counter()
        for _ in range(args.updates):
            for _ in range(args.epochs):
                perm = torch.randperm(n)
                for m in range(args.minibatches):
                    idx = perm[m * batch:(m + 1) * batch]
                    mean = actor(obs[idx])
                    dist = torch.distributions.Normal(mean, log_std.exp())
                    logp = dist.log_prob(act[idx]).sum(-1)
                    ratio = (logp - old_logp[idx]).exp()
                    ad = adv[idx]
                    ad = (ad - ad.mean()) / (ad.std() + 1e-8)
                    pg = -torch.min(ratio * ad, ratio.clamp(0.8, 1.2) * ad).mean()
                    v = critic(obs[idx]).squeeze(-1)
                    v_clip = old_v[idx] + (v - old_v[idx]).clamp(-0.2, 0.2)
                    vl = 0.5 * torch.max((v - returns[idx]) ** 2, (v_clip - returns[idx]) ** 2).mean()
                    loss = pg + 0.5 * vl - 0.0 * dist.entropy().sum(-1).mean()
                    opt.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(params, 0.5)
                    opt.step()
        times.append((time.perf_counter() - start) / args.updates)
    med = statistics.median(times)
    print(f"torch {torch.__version__} PPO update (1 thread): obs {o}, act {a}, hidden {args.hidden}, batch {n} x {args.epochs} epochs "
          f"in {args.minibatches} minibatches: {med * 1000:.2f} ms per update (median of {args.repeats}; runs "
          + ", ".join(f"{t * 1000:.2f}" for t in times) + ")")


if __name__ == "__main__":
    main()
