"""Decoding ``sensor_msgs/msg/Image`` messages into numpy arrays.

RoboSim's cameras publish ``/env_i/camera/<cam>/image_raw`` as ``rgb8`` (rows top-down, 3 bytes per
pixel) and ``/env_i/camera/<cam>/depth`` as ``32FC1`` (float32 metres, ``+inf`` where the ray hit
nothing); ``/sim/step`` and ``/sim/reset`` return the same images as pixel observations when asked
(``render``)::

    from robosim import Client, image_to_numpy

    with Client() as client:
        sub = client.subscribe("/env_0/camera/top/image_raw", "sensor_msgs/msg/Image")
        rgb = image_to_numpy(sub.recv(timeout=5.0))        # uint8 (height, width, 3)

``/env_i/camera/<cam>/camera_info`` (``sensor_msgs/msg/CameraInfo``) carries the pinhole intrinsics
``k = [fx, 0, cx, 0, fy, cy, 0, 0, 1]`` of the optical frame (x right, y down, z forward): a point
``(X, Y, Z)`` in that frame lands on pixel ``u = fx*X/Z + cx``, ``v = fy*Y/Z + cy``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["IMAGE_ENCODINGS", "image_to_numpy"]

#: Encodings :func:`image_to_numpy` decodes: encoding -> (numpy dtype, channels).
IMAGE_ENCODINGS = {
    "rgb8": (np.dtype(np.uint8), 3),
    "32FC1": (np.dtype(np.float32), 1),
}


def image_to_numpy(msg, copy: bool = True) -> np.ndarray:
    """A ``sensor_msgs/msg/Image`` as a numpy array.

    * ``rgb8``: ``uint8`` of shape ``(height, width, 3)``;
    * ``32FC1``: ``float32`` of shape ``(height, width)`` (either byte order, per ``is_bigendian``).

    Rows are as in the message (top row first); row padding (``step`` beyond ``width`` pixels) is
    dropped. ``copy=False`` returns a read-only view of the message's bytes where possible.
    Raises ``ValueError`` for another encoding, or when ``step``/``data`` do not match the size.
    """
    encoding = msg.encoding
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"unsupported image encoding {encoding!r} (supported: {', '.join(IMAGE_ENCODINGS)})")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(f"{encoding} image {width}x{height}: step {step} is less than a row ({row_bytes} bytes)")
    data = msg.data
    if len(data) != step * height:
        raise ValueError(f"{encoding} image {width}x{height} with step {step} needs {step * height} bytes "
                         f"of data, got {len(data)}")
    shape = (height, width, channels) if channels > 1 else (height, width)
    if step == row_bytes:
        array = np.frombuffer(data, dtype).reshape(shape)
    else:  # padded rows: drop the padding of each row first
        rows = np.frombuffer(data, np.uint8).reshape(height, step)[:, :row_bytes]
        array = np.ascontiguousarray(rows).view(dtype).reshape(shape)
        copy = False  # already a fresh array
    if not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))  # a fresh array in native byte order
    return array.copy() if copy else array
