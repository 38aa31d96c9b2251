"""`sim-train reward-search` against the real server: the offline backend finds a reward that meets
cartpole's success bar from one that does not, and an OpenAI-compatible backend's malformed and unsafe
replies are refused, fed back into the next prompt, and the loop finishes.

The binaries come from ``$ROBOSIM_BIN_DIR`` (default ``.build/debug``), as in test_server.py.
"""

from __future__ import annotations

import json
import subprocess

from fake_llm import fake_openai


def search(sim_train, out, *args):
    binary, repo = sim_train
    r = subprocess.run([str(binary), "reward-search", "--scene", "Scenes/cartpole", "--out", str(out), *args],
                       cwd=repo, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def test_offline_search_turns_a_poor_reward_into_one_that_succeeds(sim_train, tmp_path):
    """Only the pole-velocity penalty: the policy learns to end episodes early (no success). The
    offline backend's mutations, scored by held-out success, find one that succeeds."""
    out = search(sim_train, tmp_path, "--start=-0.005 * pole_vel", "--candidates", "4", "--iterations", "2",
                 "--steps-per-candidate", "20000", "--eval-episodes", "16")
    best = json.loads((tmp_path / "best.json").read_text())
    start = json.loads((tmp_path / "start" / "..").resolve().joinpath("search.jsonl").read_text().splitlines()[0])
    assert start["iteration"] == 0 and start["expression"] == "-0.005 * pole_vel"
    assert start["score"] < 0.1, start["score"]
    assert best["score"] >= 0.9, best
    assert best["expression"] != start["expression"] and best["iteration"] >= 1
    assert (tmp_path / "best.safetensors").stat().st_size > 0
    for i in (1, 2):
        candidates = json.loads((tmp_path / f"iteration_{i}" / "candidates.json").read_text())
        assert len(candidates) == 4 and all(c["score"] is not None for c in candidates)
        names = {t["name"] for t in candidates[0]["traces"]}
        assert {"success_rate", "alive", "terminated", "pole_pos", "cart_vel", "pole_vel", "reward"} <= names, names
        assert all(len(t["values"]) <= 10 for t in candidates[0]["traces"])
        assert "Feedback on the previous iteration" in (tmp_path / f"iteration_{i}" / "prompt.txt").read_text()
    lines = (tmp_path / "search.jsonl").read_text().splitlines()
    assert len(lines) == 9 and all(json.loads(line)["expression"] for line in lines)
    assert "reward search: best" in out
    # Deterministic: the same search again proposes and scores the same.
    search(sim_train, tmp_path / "again", "--start=-0.005 * pole_vel", "--candidates", "4", "--iterations", "2",
           "--steps-per-candidate", "20000", "--eval-episodes", "16")
    assert json.loads((tmp_path / "again" / "best.json").read_text())["expression"] == best["expression"]
    for i in (1, 2):
        a = [(c["expression"], c["score"]) for c in json.loads((tmp_path / f"iteration_{i}" / "candidates.json").read_text())]
        b = [(c["expression"], c["score"]) for c in json.loads((tmp_path / "again" / f"iteration_{i}" / "candidates.json").read_text())]
        assert a == b


LONG = " + ".join(["alive"] * 1000)
REPLIES = [
    # Iteration 1: prose, no JSON at all.
    "Sure! I would reward the cart for staying alive: alive + 1. Hope that helps.",
    # Iteration 2: code, unknown names, the task's own reward, a too-long expression, a non-string, and one good one.
    json.dumps({"candidates": [
        {"expression": "__import__('os').system('rm -rf /')", "rationale": "unsafe"},
        {"expression": "alive - pole_angle_rate", "rationale": "a name that does not exist"},
        {"expression": "reward", "rationale": "the task's own reward"},
        {"expression": LONG, "rationale": "too long"},
        {"expression": 42},
        {"expression": "alive - 2 * terminated", "rationale": "survive"},
    ]}),
    # Iteration 3: in a code fence, as models write.
    "```json\n" + json.dumps({"candidates": [{"expression": "alive - pole_pos - 0.01 * cart_vel", "rationale": "upright"}]}) + "\n```",
]


def test_malformed_and_unsafe_llm_replies_are_refused_and_fed_back(sim_train, tmp_path):
    with fake_openai(lambda _body: REPLIES[min(len(requests), len(REPLIES)) - 1]) as (endpoint, requests):
        out = search(sim_train, tmp_path, "--backend", "openai", "--endpoint", endpoint,
                     "--model", "fake-llm", "--api-key-env", "NO_SUCH_KEY", "--candidates", "6", "--iterations", "3",
                     "--steps-per-candidate", "2048", "--eval-episodes", "4")
    assert len(requests) == 3
    prompts = [body["messages"][1]["content"] for _, body in requests]
    assert "expr    := or" in requests[0][1]["messages"][0]["content"]  # the grammar
    assert "pole_vel" in prompts[0] and "cart_pos" in prompts[0]  # terms and observations
    # Iteration 1's prose is refused, and the refusal is in iteration 2's prompt.
    assert "the reply was refused: no JSON object in the reply" in out
    assert "your reply: the reply could not be read: no JSON object" in prompts[1]
    c2 = json.loads((tmp_path / "iteration_2" / "candidates.json").read_text())
    errors = [c.get("error") for c in c2]
    assert errors[0].startswith("at 12: unexpected ''os').system...' where a value was expected"), errors[0]
    assert errors[1].startswith("at 9: unknown name 'pole_angle_rate'"), errors[1]
    assert errors[2].startswith("at 1: unknown name 'reward'"), errors[2]
    assert "the limit is 4096" in errors[3], errors[3]
    assert errors[4].startswith('not a candidate with an "expression" string'), errors[4]
    assert errors[5] is None and c2[5]["score"] is not None
    # Each refusal, with its position, reaches iteration 3's prompt.
    for e in errors[:5]:
        assert f"refused: {e}" in prompts[2]
    assert (tmp_path / "iteration_1" / "reply.txt").read_text() == REPLIES[0]
    assert (tmp_path / "iteration_3" / "prompt.txt").read_text().count("refused:") >= 5
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["expression"] in {"alive - 2 * terminated", "alive - pole_pos - 0.01 * cart_vel", "alive - 2 * terminated - pole_pos - 0.01 * cart_vel - 0.005 * pole_vel"}
