"""robosim.gym.RoboSimVectorEnv against the real `sim-server` (Scenes/cartpole, lockstep, 8 envs).

The server comes from ``$ROBOSIM_BIN_DIR`` (default ``.build/debug``), started with the helpers of
``test_server.py``; without it the server tests are skipped (``ROBOSIM_REQUIRE_SERVER=1``: failed).
The decoder tests at the end need no server.
"""

from __future__ import annotations

import math
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

import robosim  # noqa: E402
from robosim.gym import RoboSimVectorEnv, _parse_step_response  # noqa: E402
from robosim.msgs.robosim import srv_pb2 as robosim_srv  # noqa: E402

ENVS = 8
OBS_SIZE = 4  # Isaac Lab Cartpole: pole angle, pole velocity, cart position, cart velocity
POLE_ANGLE = 0
RESET_ANGLE = 0.25 * math.pi  # Scenes/cartpole/scene.json: pole_angle reset range [-pi/4, pi/4]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import test_server  # skips (or fails, with ROBOSIM_REQUIRE_SERVER=1) when sim-server is not built

    with test_server.run_server(tmp_path_factory, "Scenes/cartpole", "--mode", "lockstep",
                                "--envs", str(ENVS)) as srv:
        yield srv


@pytest.fixture
def make_env(server):
    """Creates RoboSimVectorEnvs on the test server and closes them (releasing their leases) afterwards."""
    made = []

    def make(**kwargs):
        env = RoboSimVectorEnv(server.address, **kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


def rollout(env, seed, steps, action_seed=0):
    """reset(seed) then `steps` steps with actions from a fixed Generator; returns every array seen."""
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    record = {"obs": [obs], "reward": [], "terminated": [], "truncated": [], "final": []}
    for _ in range(steps):
        actions = rng.uniform(-1.0, 1.0, size=env.action_space.shape)
        obs, reward, terminated, truncated, infos = env.step(actions)
        record["obs"].append(obs)
        record["reward"].append(reward)
        record["terminated"].append(terminated)
        record["truncated"].append(truncated)
        final = np.full((env.num_envs, env.observation_size), np.nan)
        if "final_obs" in infos:
            for i in np.flatnonzero(infos["_final_obs"]):
                final[i] = infos["final_obs"][i]
        record["final"].append(final)
    return {k: np.stack(v) for k, v in record.items()}


def assert_same_rollout(a, b, envs=slice(None)):
    for key in a:
        x, y = a[key][:, envs], b[key][:, envs]
        # Bit-identical (NaN marks "no final observation" in both).
        assert x.shape == y.shape and x.dtype == y.dtype, key
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f"{key} differs"


# -- spaces ---------------------------------------------------------------------------------------

def test_spaces_and_shapes(make_env, server):
    env = make_env()
    with robosim.Client(server.address) as c:
        d = c.describe()
    assert env.num_envs == ENVS == d.env_count
    assert env.env_ids == tuple(range(ENVS))
    assert env.lease
    assert env.metadata["autoreset_mode"] is gymnasium.vector.AutoresetMode.SAME_STEP
    assert isinstance(env, gymnasium.vector.VectorEnv)

    assert env.single_observation_space == gymnasium.spaces.Box(-np.inf, np.inf, (OBS_SIZE,), np.float64)
    assert env.single_action_space.shape == (d.action_size,)
    assert env.single_action_space.dtype == np.float64
    assert np.array_equal(env.single_action_space.low, np.asarray(d.action_low))
    assert np.array_equal(env.single_action_space.high, np.asarray(d.action_high))
    assert env.observation_space.shape == (ENVS, OBS_SIZE)
    assert env.action_space.shape == (ENVS, d.action_size)
    assert env.observation_space == gymnasium.vector.utils.batch_space(env.single_observation_space, ENVS)
    assert env.action_space == gymnasium.vector.utils.batch_space(env.single_action_space, ENVS)

    obs, infos = env.reset(seed=1)
    assert obs.shape == (ENVS, OBS_SIZE) and obs.dtype == np.float64 and infos == {}
    assert obs in env.observation_space
    env.action_space.seed(0)
    obs, reward, terminated, truncated, infos = env.step(env.action_space.sample())
    assert obs.shape == (ENVS, OBS_SIZE) and obs.dtype == np.float64
    assert reward.shape == (ENVS,) and reward.dtype == np.float64
    assert terminated.shape == (ENVS,) and terminated.dtype == np.bool_
    assert truncated.shape == (ENVS,) and truncated.dtype == np.bool_
    assert isinstance(infos, dict)
    assert obs in env.observation_space
    assert infos["is_success"].shape == (ENVS,) and infos["is_success"].dtype == np.bool_ and infos["_is_success"].all()


def test_task_names_come_from_the_server(make_env):
    env = make_env()
    assert env.task == "cartpole"
    assert env.observation_names == ("pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity")
    assert env.observation_units == ("rad", "rad/s", "m", "m/s")
    assert env.action_names == ("cart_force",) and env.action_units == ("1",)
    assert env.reward_terms == {"alive": 1.0, "terminated": -2.0, "pole_pos": -1.0, "cart_vel": -0.01, "pole_vel": -0.005}
    assert "time limit" in env.success_criterion


def test_is_success_marks_the_episodes_that_reach_the_time_limit(make_env):
    """Under a balancing controller most poles stay up for the 5 s episode: those episodes end
    truncated with ``is_success``, the others terminated without; a full push fails every episode."""
    env = make_env()
    obs, _ = env.reset(seed=5)
    names = env.observation_names
    a, w, x, v = (names.index(n) for n in ("pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity"))
    successes = 0
    for _ in range(310):
        u = -(2.0 * obs[:, a] + 0.3 * obs[:, w]) + 0.05 * obs[:, x] + 0.1 * obs[:, v]
        obs, _, terminated, truncated, infos = env.step(np.clip(u, -1, 1)[:, None])
        assert np.array_equal(infos["is_success"], truncated & ~terminated)
        if (terminated | truncated).any():
            assert np.array_equal(infos["final_info"]["is_success"], truncated & ~terminated)
            assert np.array_equal(infos["final_info"]["_is_success"], terminated | truncated)
            successes += int((truncated & ~terminated).sum())
    assert successes >= ENVS // 2, f"{successes} of {ENVS} balanced to the time limit"
    obs, _ = env.reset(seed=5)
    for _ in range(200):
        obs, _, terminated, truncated, infos = env.step(np.ones(env.action_space.shape))
        assert not infos["is_success"].any()


# -- seeding and determinism ---------------------------------------------------------------------

def test_reset_with_seed_twice_is_identical(make_env):
    env = make_env()
    a, _ = env.reset(seed=7)
    env.step(np.ones(env.action_space.shape))
    b, _ = env.reset(seed=7)
    assert np.array_equal(a, b)
    c, _ = env.reset(seed=8)
    assert not np.array_equal(a, c)
    # Envs of one reset differ from each other (the server seeds each from (seed, env index)).
    assert len(np.unique(a[:, POLE_ANGLE])) == ENVS
    assert np.all(np.abs(a[:, POLE_ANGLE]) <= RESET_ANGLE)
    # No seed: each env goes on with its next episode.
    d, _ = env.reset()
    assert not np.array_equal(d, c)


def test_rollout_is_deterministic(make_env):
    env = make_env()
    first = rollout(env, seed=3, steps=200)
    second = rollout(env, seed=3, steps=200)
    assert_same_rollout(first, second)
    assert first["terminated"].any(), "no episode ended in 200 random steps"
    assert not np.array_equal(first["obs"], rollout(env, seed=4, steps=200)["obs"])


def test_rollout_does_not_depend_on_env_count(make_env):
    """Contract: same seed and actions give the same trajectory whatever the env count."""
    all_envs = make_env()
    full = rollout(all_envs, seed=3, steps=200)
    all_envs.close()
    half = make_env(num_envs=4)
    assert half.env_ids == (0, 1, 2, 3)
    rng = np.random.default_rng(0)
    obs, _ = half.reset(seed=3)
    assert np.array_equal(obs, full["obs"][0, :4])
    for t in range(200):
        actions = rng.uniform(-1.0, 1.0, size=all_envs.action_space.shape)[:4]
        obs, reward, terminated, truncated, _ = half.step(actions)
        assert np.array_equal(obs, full["obs"][t + 1, :4]), f"step {t}"
        assert np.array_equal(reward, full["reward"][t, :4]), f"step {t}"
        assert np.array_equal(terminated, full["terminated"][t, :4]), f"step {t}"


def test_seed_zero_is_a_seed_and_bad_seeds_are_refused(make_env):
    env = make_env()
    first, _ = env.reset(seed=0)
    second, _ = env.reset(seed=0)
    assert np.array_equal(first, second)            # seed 0 restarts from (0, env), like any seed
    third, _ = env.reset()                          # no seed: the next episode, a new start
    assert not np.array_equal(first, third)
    with pytest.raises(ValueError):
        env.reset(seed=-1)
    with pytest.raises(ValueError):
        env.reset(seed=2**64)
    with pytest.raises(ValueError):
        env.reset(seed=[1, 2])  # one per env needed


def test_seed_list_and_reset_mask(make_env):
    env = make_env()
    base, _ = env.reset(seed=5)
    # A list seeds each env on its own: env i with seed 5 matches the int-seeded reset.
    mixed, _ = env.reset(seed=[5, 6, 5, 6, 5, 6, 5, 6])
    assert np.array_equal(mixed[0::2], base[0::2])
    six, _ = env.reset(seed=6)
    assert np.array_equal(mixed[1::2], six[1::2])

    env.reset(seed=5)
    for _ in range(3):
        moved, *_ = env.step(np.full(env.action_space.shape, 0.5))
    mask = np.zeros(ENVS, dtype=bool)
    mask[[1, 4]] = True
    obs, _ = env.reset(seed=5, options={"reset_mask": mask})
    assert np.array_equal(obs[mask], base[mask])
    assert np.array_equal(obs[~mask], moved[~mask])
    with pytest.raises(ValueError):
        env.reset(options={"reset_mask": np.ones(3, dtype=bool)})


# -- autoreset --------------------------------------------------------------------------------------

def test_terminated_envs_report_final_obs_and_start_fresh(make_env):
    env = make_env()
    obs, _ = env.reset(seed=11)
    push = np.ones(env.action_space.shape)  # full force one way: every pole falls soon
    ended = 0
    for _ in range(200):
        prev = obs
        obs, reward, terminated, truncated, infos = env.step(push)
        done = terminated | truncated
        if not done.any():
            assert "final_obs" not in infos and "_final_obs" not in infos
            continue
        assert np.array_equal(infos["_final_obs"], done)
        assert np.array_equal(infos["_final_info"], done)
        assert infos["final_obs"].dtype == object and infos["final_obs"].shape == (ENVS,)
        for i in range(ENVS):
            final = infos["final_obs"][i]
            if not done[i]:
                assert final is None
                continue
            ended += 1
            assert isinstance(final, np.ndarray) and final.shape == (OBS_SIZE,) and final.dtype == np.float64
            if terminated[i]:
                # Isaac Lab Cartpole ends an episode when the pole passes 90 degrees or the cart leaves the rail.
                assert abs(final[POLE_ANGLE]) > math.pi / 2 or abs(final[2]) > 3.0, final
            # The returned observation is the first of a fresh episode.
            assert abs(obs[i, POLE_ANGLE]) <= RESET_ANGLE, obs[i]
            assert not np.array_equal(obs[i], final)
            assert not np.array_equal(final, prev[i])
    assert ended >= ENVS, f"only {ended} episodes ended in 200 steps of full push"


def test_record_episode_statistics_wrapper(make_env):
    """Gymnasium's vector RecordEpisodeStatistics understands the SAME_STEP autoreset."""
    from gymnasium.wrappers.vector import RecordEpisodeStatistics

    env = RecordEpisodeStatistics(make_env())
    env.reset(seed=2)
    push = np.ones(env.action_space.shape)
    lengths, returns = [], []
    episode_lengths = np.zeros(ENVS, dtype=int)
    episode_returns = np.zeros(ENVS)
    for _ in range(120):
        _, reward, terminated, truncated, infos = env.step(push)
        episode_lengths += 1
        episode_returns += reward
        done = terminated | truncated
        if done.any():
            assert np.array_equal(infos["_episode"], done)
            assert np.array_equal(infos["episode"]["l"][done], episode_lengths[done])
            assert np.allclose(infos["episode"]["r"][done], episode_returns[done])
            lengths += list(infos["episode"]["l"][done])
            returns += list(infos["episode"]["r"][done])
            episode_lengths[done] = 0
            episode_returns[done] = 0.0
    assert lengths, "no episode ended"


# -- bad input ----------------------------------------------------------------------------------------

def test_wrong_action_shape_raises_value_error(make_env):
    env = make_env()
    env.reset(seed=1)
    for bad in (np.zeros(ENVS), np.zeros((ENVS - 1, 1)), np.zeros((ENVS, 2)), np.zeros((1, ENVS)), 0.0,
                np.zeros((ENVS, 1, 1))):
        with pytest.raises(ValueError, match="shape"):
            env.step(bad)
    with pytest.raises(ValueError):
        env.step([["a"]] * ENVS)
    env.step(np.zeros((ENVS, 1)))  # still fine
    env.step([[0.0]] * ENVS)        # lists work too


def test_nan_actions_get_invalid_argument(make_env):
    env = make_env()
    env.reset(seed=1)
    for value in (np.nan, np.inf):
        actions = np.zeros(env.action_space.shape)
        actions[3, 0] = value
        with pytest.raises(robosim.ServiceError) as info:
            env.step(actions)
        assert info.value.code == "INVALID_ARGUMENT"
        assert info.value.service == "/sim/step"
    obs, *_ = env.step(np.zeros(env.action_space.shape))  # the env still works
    assert obs.shape == (ENVS, OBS_SIZE)


# -- leases -------------------------------------------------------------------------------------------

def test_two_envs_share_a_server_and_a_third_cannot_lease(make_env, server):
    a = make_env(num_envs=4, client_name="trainer_a")
    b = make_env(num_envs=4, client_name="trainer_b")
    assert set(a.env_ids).isdisjoint(b.env_ids)
    assert sorted(a.env_ids + b.env_ids) == list(range(ENVS))
    assert a.lease != b.lease

    oa, _ = a.reset(seed=9)
    ob, _ = b.reset(seed=9)
    assert not np.array_equal(oa, ob)  # different env indices, different initial states
    for _ in range(20):
        oa, *_ = a.step(np.full(a.action_space.shape, 0.3))
        ob, *_ = b.step(np.full(b.action_space.shape, -0.3))
    assert oa.shape == ob.shape == (4, OBS_SIZE)

    with pytest.raises(robosim.ServiceError) as info:
        RoboSimVectorEnv(server.address, num_envs=4, client_name="trainer_c")
    assert info.value.code == "RESOURCE_EXHAUSTED"
    with pytest.raises(robosim.ServiceError) as info:
        RoboSimVectorEnv(server.address, num_envs=1)
    assert info.value.code == "RESOURCE_EXHAUSTED"

    # Without a lease, leased envs cannot be stepped.
    unleased = make_env(num_envs=2, lease=False)
    assert unleased.lease == "" and unleased.env_ids == (0, 1)
    with pytest.raises(robosim.ServiceError) as info:
        unleased.step(np.zeros(unleased.action_space.shape))
    assert info.value.code == "FAILED_PRECONDITION"

    # Closing releases the lease: its envs can be leased again at once.
    b_ids = b.env_ids
    b.close()
    assert b.closed
    c = make_env(num_envs=4, client_name="trainer_c")
    assert c.env_ids == b_ids
    c.reset(seed=1)
    c.step(np.zeros(c.action_space.shape))


def test_renew_lease_keeps_a_pausing_trainers_envs(make_env, server):
    env = make_env(num_envs=2, client_name="pausing_trainer", ttl_s=1.5)
    env.reset(seed=3)
    for _ in range(3):  # 1.8 s without a reset or step, past the 1.5 s TTL: renewals keep the lease
        time.sleep(0.6)
        env.renew_lease()
    obs, reward, *_ = env.step(np.zeros(env.action_space.shape))
    assert obs.shape == (2, OBS_SIZE) and reward.shape == (2,)
    with pytest.raises(robosim.ServiceError) as info:  # still this trainer's envs
        env.client.call("/sim/lease", robosim_srv.LeaseRequest(env_ids=list(env.env_ids)), robosim_srv.LeaseResponse)
    assert info.value.code == "FAILED_PRECONDITION" and "pausing_trainer" in info.value.message

    # A renewal may shorten the TTL; after that much silence the lease is gone and cannot be renewed.
    env.renew_lease(ttl_s=0.3)
    time.sleep(0.8)
    with pytest.raises(robosim.ServiceError) as info:
        env.renew_lease()
    assert info.value.code == "NOT_FOUND"
    with pytest.raises(ValueError):
        env.renew_lease(ttl_s=-1)

    unleased = make_env(num_envs=1, lease=False)
    assert unleased.renew_lease() is None  # nothing to renew


def test_close_is_idempotent_and_context_manager(server):
    with RoboSimVectorEnv(server.address, num_envs=2) as env:
        env.reset(seed=1)
        env.step(np.zeros(env.action_space.shape))
    assert env.closed
    env.close()
    with RoboSimVectorEnv(server.address) as every:  # every env is free again
        assert every.num_envs == ENVS


def test_bad_num_envs(server):
    for bad in (0, ENVS + 1, -1):
        with pytest.raises(ValueError):
            RoboSimVectorEnv(server.address, num_envs=bad)
    with pytest.raises(TypeError):
        RoboSimVectorEnv(server.address, num_envs=2.5)


# -- no gymnasium -------------------------------------------------------------------------------------

def test_robosim_imports_without_gymnasium():
    code = (
        "import sys; sys.modules['gymnasium'] = None\n"
        "import robosim\n"
        "try:\n"
        "    import robosim.gym\n"
        "except ImportError as e:\n"
        "    print('ImportError', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ImportError"), out.stdout


# -- the StepResponse decoder (no server) --------------------------------------------------------------

def _expect_same(message):
    got = _parse_step_response(message.SerializeToString())
    assert np.array_equal(got.observations, np.asarray(message.observations, dtype=np.float64))
    assert np.array_equal(got.rewards, np.asarray(message.rewards, dtype=np.float64))
    assert np.array_equal(got.terminated, np.asarray(message.terminated, dtype=bool))
    assert np.array_equal(got.truncated, np.asarray(message.truncated, dtype=bool))
    assert np.array_equal(got.final_observations, np.asarray(message.final_observations, dtype=np.float64))
    assert got.final_env_ids == list(message.final_env_ids)
    assert got.observations.flags.writeable and got.observations.dtype == np.float64
    return got


def test_decoder_matches_protobuf():
    rng = np.random.default_rng(1)
    for n in (1, 3, 64, 300):
        done = rng.random(n) < 0.3
        ids = [int(i) * 1000 for i in np.flatnonzero(done)]  # multi-byte varints too
        msg = robosim_srv.StepResponse(
            observations=rng.normal(size=n * 4).tolist(), rewards=rng.normal(size=n).tolist(),
            terminated=(rng.random(n) < 0.5).tolist(), truncated=(rng.random(n) < 0.5).tolist(),
            final_observations=rng.normal(size=len(ids) * 4).tolist(), final_env_ids=ids)
        _expect_same(msg)
    _expect_same(robosim_srv.StepResponse())
    _expect_same(robosim_srv.StepResponse(observations=[-0.0, np.inf, 1e-310], rewards=[1.0],
                                          terminated=[False], truncated=[False]))


def _key(field, wire_type):
    return bytes([(field << 3) | wire_type])


def test_decoder_falls_back_for_other_encodings():
    # Unpacked doubles and bools (legal protobuf, not what the server writes).
    unpacked = (b"".join(_key(1, 1) + struct.pack("<d", v) for v in (1.5, -2.0))
                + _key(2, 1) + struct.pack("<d", 3.0) + _key(3, 0) + b"\x01" + _key(4, 0) + b"\x00")
    got = _parse_step_response(unpacked)
    assert got.observations.tolist() == [1.5, -2.0] and got.rewards.tolist() == [3.0]
    assert got.terminated.tolist() == [True] and got.truncated.tolist() == [False]
    # A packed field split in two runs.
    split = (_key(1, 2) + b"\x08" + struct.pack("<d", 1.0) + _key(1, 2) + b"\x08" + struct.pack("<d", 2.0))
    assert _parse_step_response(split).observations.tolist() == [1.0, 2.0]
    # A bool written as a multi-byte varint.
    assert _parse_step_response(_key(3, 2) + b"\x02\x81\x00").terminated.tolist() == [True]
    # An unknown field is skipped.
    assert _parse_step_response(_key(2, 2) + b"\x08" + struct.pack("<d", 4.0) + _key(15, 0) + b"\x07").rewards.tolist() == [4.0]
    # Garbage is a ProtocolError.
    with pytest.raises(robosim.ProtocolError):
        _parse_step_response(_key(1, 2) + b"\x10" + b"\x00" * 4)


def test_send_recv_pipelines_half_batches_with_the_results_of_step(make_env):
    """EnvPool-style send/recv: two half batches in flight give what synchronous steps give."""
    env = make_env()
    rng = np.random.default_rng(3)
    actions = rng.uniform(-1, 1, size=(60, ENVS, 1))
    env.reset(seed=21)
    sync = [env.step(a)[0].copy() for a in actions]

    env.reset(seed=21)
    half = ENVS // 2
    first, second = list(range(half)), list(range(half, ENVS))
    got = {0: [], 1: []}
    env.send(actions[0][first], first)
    env.send(actions[0][second], second)
    with pytest.raises(ValueError, match="in flight"):
        env.send(actions[0][first], first)
    with pytest.raises(RuntimeError, match="in flight"):
        env.step(actions[0])
    with pytest.raises(RuntimeError, match="in flight"):
        env.reset(seed=1)
    sent = {0: 1, 1: 1}
    while len(got[0]) < len(actions) or len(got[1]) < len(actions):
        obs, rewards, terminated, truncated, infos = env.recv()
        part = 0 if infos["env_id"][0] == 0 else 1
        assert list(infos["env_id"]) == (first if part == 0 else second)
        assert infos["is_success"].shape == (half,)
        got[part].append(obs.copy())
        if sent[part] < len(actions):
            ids = first if part == 0 else second
            env.send(actions[sent[part]][ids], ids)
            sent[part] += 1
    for k in range(len(actions)):
        assert np.array_equal(np.concatenate([got[0][k], got[1][k]]), sync[k]), k
    with pytest.raises(RuntimeError):
        env.recv()


# -- a single env ---------------------------------------------------------------------------------------

def test_single_env_passes_gymnasiums_checker_and_stops_at_the_episode_end(server):
    from gymnasium.utils.env_checker import check_env

    from robosim.gym import RoboSimEnv

    env = RoboSimEnv(server.address)
    try:
        check_env(env, skip_render_check=True)
        obs, info = env.reset(seed=5)
        assert obs.shape == (OBS_SIZE,) and info == {}
        for _ in range(400):
            obs, reward, terminated, truncated, info = env.step(np.ones(1))
            assert isinstance(reward, float) and set(info) == {"is_success"}
            if terminated or truncated:
                break
        assert terminated, "full push for 400 steps and the pole never fell"
        assert abs(obs[POLE_ANGLE]) > math.pi / 2 or abs(obs[2]) > 3.0, "the final observation, not a fresh one"
        again, _ = env.reset(seed=5)
        first, _ = env.reset(seed=5)
        assert np.array_equal(again, first)
    finally:
        env.close()


def test_discrete_actions_are_gymnasium_discrete(tmp_path_factory):
    """A task with a discrete action (Scenes/cartpole_discrete): Discrete spaces, indices on the wire,
    anything but a whole index in range refused; the single env passes check_env."""
    import test_server
    from gymnasium.utils.env_checker import check_env

    from robosim.gym import RoboSimEnv

    with test_server.run_server(tmp_path_factory, "Scenes/cartpole_discrete", "--mode", "lockstep", "--envs", "4") as srv:
        for transport in ("shm", "socket"):
            with RoboSimVectorEnv(srv.address, num_envs=3, transport=transport) as env:
                assert env.action_choices == 2 and env.single_action_space == gymnasium.spaces.Discrete(2)
                assert env.action_space.shape == (3,)
                env.reset(seed=1)
                obs, *_ = env.step(np.array([0, 1, 1]))
                assert obs.shape == (3, OBS_SIZE)
                for bad in ([0, 2, 1], [0, 0.5, 1], [-1, 0, 0]):
                    with pytest.raises(robosim.ServiceError) as info:
                        env.step(np.array(bad))
                    assert info.value.code == "INVALID_ARGUMENT" and "whole number in 0...1" in info.value.message
        single = RoboSimEnv(srv.address)
        try:
            check_env(single, skip_render_check=True)
        finally:
            single.close()
