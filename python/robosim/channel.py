"""The same-host step channel: steps a lease's envs through shared memory instead of a socket.

``/sim/open_channel`` makes a sealed shared memory file for a lease (docs/wire-protocol.md, "Step
channel"); this module maps it (through ``/proc/<server pid>/fd/<fd>``) and steps through it: the actions go into the file, a futex wakes the
server, and the server's answer wakes this process. Two wake-ups per step instead of a TCP round
trip through four threads. :class:`robosim.gym.RoboSimVectorEnv` uses it on its own when the server
runs on this machine (``transport="auto"``).

Linux on x86-64 only (the header words are read with plain loads, which x86's memory order makes
acquire loads); elsewhere :func:`available` is False and clients use ``/sim/step``.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import re
import struct
import sys
import time
from typing import Optional

import numpy as np

from .client import ClosedError, ServiceError, _error_code_name
from .msgs.robosim import srv_pb2 as _srv

#: What servers send for a step channel: their own memory file descriptor.
_CHANNEL_PATH = re.compile(r"/proc/[0-9]{1,10}/fd/[0-9]{1,10}")

__all__ = ["StepChannel", "available"]

_MAGIC = 0x31435352  # "RSC1"
_VERSION = 1
# Header word indices (uint32) and byte offsets (docs/wire-protocol.md).
_W_MAGIC, _W_VERSION, _W_REQUEST, _W_RESPONSE, _W_OP, _W_STATUS, _W_STATE, _W_PID = range(8)
_NONCE, _SEED, _HAS_SEED = 32, 40, 48
_W_ENVS, _W_OBS, _W_ACT = 13, 14, 15
_W_AUTORESET = 16
_MESSAGE, _MESSAGE_BYTES, _HEADER = 128, 192, 320
_OP_STEP, _OP_RESET = 1, 2
_CLOSED = 1
_FUTEX_WAIT, _FUTEX_WAKE = 0, 1
_SYS_FUTEX = {"x86_64": 202, "AMD64": 202}.get(platform.machine())

if sys.platform.startswith("linux") and _SYS_FUTEX is not None:
    _libc = ctypes.CDLL(None, use_errno=True)
    _syscall = _libc.syscall
    _syscall.restype = ctypes.c_long
else:  # pragma: no cover - other platforms use /sim/step
    _libc = None


def available() -> bool:
    """Whether this platform can use step channels (Linux on x86-64)."""
    return _libc is not None


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class ChannelClosed(ClosedError):
    """The server closed the channel (its lease ended, it stopped), or it is gone."""


class StepChannel:
    """A mapped step channel (from an ``OpenChannelResponse``).

    After :meth:`step` or :meth:`reset` the arrays ``observations`` (envs x observation size),
    ``rewards``, ``terminated``, ``truncated``, ``success``, ``final`` and ``final_observations`` are
    views into the shared file, valid until the next request: copy what you keep.
    """

    def __init__(self, response: _srv.OpenChannelResponse, timeout: float = 10.0, next_step: bool = False):
        self._map = None
        self._broken = ""
        if not available():
            raise OSError("step channels need Linux on x86-64")
        self.path = response.path
        self.timeout = float(timeout)
        self.env_ids = tuple(response.env_ids)
        n, o, a = len(self.env_ids), int(response.observation_size), int(response.action_size)
        size = int(response.byte_count)
        ends = [(response.actions, 8 * n * a), (response.observations, 8 * n * o), (response.rewards, 8 * n),
                (response.final_observations, 8 * n * o), (response.terminated, n), (response.truncated, n),
                (response.success, n), (response.final, n)]
        if size < _HEADER or any(off < _HEADER or off % 8 or off + length > size for off, length in ends):
            raise ValueError(f"/sim/open_channel: layout does not fit its {size} bytes")
        # The path comes from the wire: only the server's own descriptor (/proc/PID/fd/N) is opened.
        if not _CHANNEL_PATH.fullmatch(self.path):
            raise ValueError(f"/sim/open_channel named {self.path[:200]!r}, not a /proc/PID/fd/N channel")
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        try:
            if os.fstat(fd).st_size != size:
                raise ValueError(f"{self.path} is not {size} bytes")
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self._words = np.frombuffer(self._map, np.uint32, _HEADER // 4)
        nonce, = struct.unpack_from("<Q", self._map, _NONCE)
        w = self._words
        if w[_W_MAGIC] != _MAGIC or w[_W_VERSION] != _VERSION or nonce != response.nonce \
                or (w[_W_ENVS], w[_W_OBS], w[_W_ACT]) != (n, o, a):
            self.close()
            raise ValueError(f"{self.path} is not the channel the server described (magic, version, nonce or sizes differ)")
        self.server_pid = int(w[_W_PID])
        if not self._server_alive():  # another pid namespace: this client could not tell when it dies
            self.close()
            raise OSError(f"the server's pid {self.server_pid} is not visible from this process")
        # Steps start an ended env's next episode in the same step, or in its next one (robosim.Autoreset).
        w[_W_AUTORESET] = 1 if next_step else 0

        def doubles(offset: int, count: int, shape):
            return np.frombuffer(self._map, np.float64, count, offset).reshape(shape)

        def flags(offset: int):
            return np.frombuffer(self._map, np.uint8, n, offset).view(np.bool_)

        self.actions = doubles(response.actions, n * a, (n, a))
        self.observations = doubles(response.observations, n * o, (n, o))
        self.rewards = doubles(response.rewards, n, (n,))
        self.final_observations = doubles(response.final_observations, n * o, (n, o))
        self.terminated = flags(response.terminated)
        self.truncated = flags(response.truncated)
        self.success = flags(response.success)
        self.final = flags(response.final)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        self._request_addr = ctypes.c_void_p(base + 4 * _W_REQUEST)
        self._response_addr = ctypes.c_void_p(base + 4 * _W_RESPONSE)
        self._slice = _Timespec(0, 100_000_000)  # wait in 100 ms slices, checking that the server lives

    def step(self, actions: np.ndarray) -> None:
        """One control step of every env with ``actions`` (envs x action size)."""
        self.actions[...] = actions
        self._call(_OP_STEP)

    def reset(self, seed: Optional[int] = None) -> None:
        """Resets every env; with a seed, each env's run restarts from (seed, its index on the server)."""
        if seed is not None:
            struct.pack_into("<Q", self._map, _SEED, int(seed))
        struct.pack_into("<I", self._map, _HAS_SEED, 0 if seed is None else 1)
        self._call(_OP_RESET)

    def _call(self, op: int) -> None:
        w = self._words
        if self._broken:
            raise ChannelClosed(f"the step channel is unusable: {self._broken}")
        if w[_W_STATE] == _CLOSED:
            raise ChannelClosed(f"the step channel is closed: {self._message()}")
        w[_W_OP] = op
        number = (int(w[_W_REQUEST]) + 1) & 0xFFFFFFFF
        w[_W_REQUEST] = number  # x86: ordered after the stores above
        _syscall(_SYS_FUTEX, self._request_addr, _FUTEX_WAKE, 0x7FFFFFFF, None, None, 0)
        deadline = time.monotonic() + self.timeout
        while True:
            seen = int(w[_W_RESPONSE])
            if seen == number:
                break
            if w[_W_STATE] == _CLOSED:
                raise ChannelClosed(f"the server closed the step channel: {self._message()}")
            if time.monotonic() > deadline:
                # The server may still answer, and read the actions meanwhile: the channel is done.
                self._broken = f"no answer within {self.timeout:g} s"
                raise TimeoutError(f"no answer through the step channel within {self.timeout:g} s")
            rc = _syscall(_SYS_FUTEX, self._response_addr, _FUTEX_WAIT, ctypes.c_uint32(seen), ctypes.byref(self._slice), None, 0)
            if rc != 0:
                err = ctypes.get_errno()
                if err == errno.ETIMEDOUT:
                    if not self._server_alive():
                        raise ChannelClosed(f"the server (pid {self.server_pid}) is gone")
                elif err not in (errno.EAGAIN, errno.EINTR):
                    self._broken = os.strerror(err)
                    raise OSError(err, f"futex wait on the step channel: {os.strerror(err)}")
        status = int(w[_W_STATUS])
        if status:
            # Named after the service whose work the request did, as a socket call's error would be.
            raise ServiceError(_error_code_name(status), self._message(), "/sim/step" if op == _OP_STEP else "/sim/reset")

    def _server_alive(self) -> bool:
        try:
            os.kill(self.server_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def _message(self) -> str:
        raw = bytes(self._map[_MESSAGE:_MESSAGE + _MESSAGE_BYTES])
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def close(self) -> None:
        """Unmaps the file (the server closes its side when the lease ends)."""
        if self._map is None:
            return
        for name in ("actions", "observations", "rewards", "final_observations", "terminated", "truncated",
                     "success", "final", "_words"):
            if hasattr(self, name):
                setattr(self, name, None)
        try:
            self._map.close()
        except BufferError:  # a caller still holds a view; the mapping goes with it
            pass
        self._map = None
