"""RoboSim Python client: ROS 2-style topics and services of a RoboSim server over ZeroMQ + protobuf.

    >>> import robosim
    >>> with robosim.Client() as client:                      # doctest: +SKIP
    ...     print(client.describe().scene)
    ...     sub = client.subscribe("/clock", "rosgraph_msgs/msg/Clock")
    ...     sub.wait_connected()
    ...     print(sub.recv(timeout=2.0).clock.sec)

Generated messages live in :mod:`robosim.msgs` (``from robosim.msgs.std_msgs import msg_pb2``);
:func:`type_name` and :func:`message_class` map between them and ROS type names;
:func:`image_to_numpy` decodes a camera's ``sensor_msgs/msg/Image`` (rgb8, 32FC1 depth).
:mod:`robosim.gym` (which needs ``gymnasium``) is a Gymnasium vector env over ``/sim/step``.
With gymnasium installed, importing :mod:`robosim` registers ``robosim/<Scene>-v0`` for every scene
(:mod:`robosim.envs`): ``gymnasium.make("robosim/Cartpole-v0")``, with the observation names of the
LeRobot datasets that ``sim-collect`` records.
"""

from . import msgs
from .client import (
    DEFAULT_SERVER,
    Client,
    ClosedError,
    ProtocolError,
    Publisher,
    ServiceError,
    Subscription,
)
from .images import IMAGE_ENCODINGS, image_to_numpy
from .types import (
    all_type_names,
    is_valid_topic_name,
    message_class,
    type_name,
    validate_topic_name,
    validate_type_name,
)

__version__ = "0.1.0"

try:  # Gymnasium registration (robosim/<Scene>-v0) when gymnasium is installed; nothing without it.
    import gymnasium as _gymnasium  # noqa: F401
except ImportError:
    pass
else:
    from .envs import register_envs as _register_envs

    _register_envs()


def __getattr__(name: str):
    # `robosim.gym` (the Gymnasium VectorEnv) needs gymnasium; it is imported only when asked for.
    if name == "gym":
        import importlib

        return importlib.import_module(".gym", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_SERVER",
    "IMAGE_ENCODINGS",
    "Client",
    "ClosedError",
    "ProtocolError",
    "Publisher",
    "ServiceError",
    "Subscription",
    "all_type_names",
    "image_to_numpy",
    "is_valid_topic_name",
    "message_class",
    "msgs",
    "type_name",
    "validate_topic_name",
    "validate_type_name",
]
