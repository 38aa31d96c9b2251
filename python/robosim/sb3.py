"""Stable-Baselines3 on RoboSim: a ``VecEnv`` over :class:`robosim.gym.RoboSimVectorEnv`.

    >>> from stable_baselines3 import PPO
    >>> from robosim.sb3 import RoboSimVecEnv
    >>> env = RoboSimVecEnv("tcp://127.0.0.1:7700", num_envs=16)          # doctest: +SKIP
    >>> PPO("MlpPolicy", env, seed=1).learn(200_000)                        # doctest: +SKIP

SB3's vector envs reset an env in the step that ends its episode, as RoboSim's server does
(same-step autoreset): the returned observation starts the next episode, ``infos[i]
["terminal_observation"]`` holds the last one, ``infos[i]["TimeLimit.truncated"]`` is True when the
episode hit its time limit rather than failing (SB3 then bootstraps from the terminal value), and
``infos[i]["is_success"]`` carries the task's success flag (SB3 logs ``rollout/success_rate`` from it).
``dones`` is ``terminated | truncated``.

Server restarts (see :class:`robosim.gym.RoboSimVectorEnv`, ``reconnect_timeout``): the step that
finds the server restarted ends every env's episode as a time-limit truncation
(``infos[i]["TimeLimit.truncated"]`` True, ``terminal_observation`` the last observation before the
restart) with ``infos[i]["server_restarted"]`` True; training goes on. ``get_attr("reconnects")``
and ``get_attr("episodes_lost")`` count them.

Needs ``stable_baselines3`` (``pip install stable-baselines3``); the rest of :mod:`robosim` does not.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from .gym import RoboSimVectorEnv

__all__ = ["RoboSimVecEnv"]


class RoboSimVecEnv(VecEnv):
    """A Stable-Baselines3 ``VecEnv`` whose envs are leased from a RoboSim server (lockstep mode).

    Takes :class:`RoboSimVectorEnv`'s arguments (``server``, ``num_envs``, ``transport``, ...), or an
    existing one as ``vector_env`` (same-step autoreset). ``seed(s)`` seeds the next ``reset`` (each env's
    run restarts from ``(s, its index on the server)``).
    """

    def __init__(self, server: Any = None, num_envs: Optional[int] = None, *, vector_env: Optional[RoboSimVectorEnv] = None,
                 **kwargs: Any):
        if vector_env is None:
            vector_env = RoboSimVectorEnv(server, num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
        elif vector_env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError("RoboSimVecEnv needs a RoboSimVectorEnv with same-step autoreset (SB3's own semantics)")
        self.venv = vector_env
        super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)
        self._actions: Optional[np.ndarray] = None
        self._seed: Optional[int] = None
        self.render_mode = None

    def reset(self) -> np.ndarray:
        obs, _ = self.venv.reset(seed=self._seed)
        self._seed = None
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions, dtype=np.float64)
        # Discrete: one index per env; continuous: a row per env.
        self._actions = a.reshape(self.num_envs) if self.venv.action_choices else a.reshape(self.num_envs, -1)

    def step_wait(self):
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        dones = terminated | truncated
        out: List[dict] = [{} for _ in range(self.num_envs)]
        success = infos.get("is_success", np.zeros(self.num_envs, bool))
        final = infos.get("final_obs")
        restarted = infos.get("server_restarted")
        for i in np.flatnonzero(dones):
            out[i]["terminal_observation"] = final[i] if final is not None and final[i] is not None else obs[i]
            out[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            out[i]["is_success"] = bool(success[i])
            if restarted is not None and restarted[i]:
                out[i]["server_restarted"] = True
        return obs, rewards.astype(np.float32), dones, out

    def close(self) -> None:
        self.venv.close()

    def seed(self, seed: Optional[int] = None) -> List[Optional[int]]:
        self._seed = seed
        return [seed] * self.num_envs

    def get_attr(self, attr_name: str, indices: Any = None) -> List[Any]:
        return [getattr(self.venv, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> List[Any]:
        return [getattr(self.venv, method_name)(*method_args, **method_kwargs)] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class: Any, indices: Any = None) -> List[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: Any) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)
