"""Type-name mapping and ROS 2 name rules (no server needed)."""

import pytest

import robosim
from robosim.msgs.robosim import msg_pb2 as robosim_msg
from robosim.msgs.robosim import srv_pb2 as robosim_srv
from robosim.msgs.rosgraph_msgs import msg_pb2 as rosgraph_msgs
from robosim.msgs.sensor_msgs import msg_pb2 as sensor_msgs
from robosim.msgs.std_msgs import msg_pb2 as std_msgs


def test_type_name_of_class_and_instance():
    assert robosim.type_name(sensor_msgs.Image) == "sensor_msgs/msg/Image"
    assert robosim.type_name(sensor_msgs.Image(height=4)) == "sensor_msgs/msg/Image"
    assert robosim.type_name(rosgraph_msgs.Clock) == "rosgraph_msgs/msg/Clock"
    assert robosim.type_name(robosim_srv.DescribeRequest) == "robosim/msg/DescribeRequest"
    assert robosim.type_name(robosim_msg.NodeInfo) == "robosim/msg/NodeInfo"


def test_type_name_rejects_non_messages():
    with pytest.raises(TypeError):
        robosim.type_name(object())
    with pytest.raises(TypeError):
        robosim.type_name(robosim.msgs)


def test_message_class_finds_msg_and_srv_modules():
    assert robosim.message_class("sensor_msgs/msg/Image") is sensor_msgs.Image
    assert robosim.message_class("std_msgs/msg/String") is std_msgs.String
    # robosim/msg.proto and robosim/srv.proto are both protobuf package `robosim`.
    assert robosim.message_class("robosim/msg/DescribeRequest") is robosim_srv.DescribeRequest
    assert robosim.message_class("robosim/msg/GraphListResponse") is robosim_srv.GraphListResponse
    assert robosim.message_class("robosim/msg/EpisodeEvent") is robosim_msg.EpisodeEvent
    assert robosim.message_class("robosim/srv/StepRequest") is robosim_srv.StepRequest


@pytest.mark.parametrize("bad", ["", "sensor_msgs.Image", "sensor_msgs/Image", "Sensor_msgs/msg/Image",
                                 "sensor_msgs/foo/Image", "sensor_msgs/msg/image", "sensor_msgs/msg/",
                                 "/sensor_msgs/msg/Image", "sensor_msgs/msg/Im-age"])
def test_message_class_rejects_malformed_names(bad):
    with pytest.raises(ValueError):
        robosim.message_class(bad)


def test_message_class_unknown_type():
    with pytest.raises(KeyError):
        robosim.message_class("sensor_msgs/msg/PointCloud2")


def test_every_type_round_trips():
    names = robosim.all_type_names()
    # Every .proto package is represented, including both robosim modules.
    packages = {n.split("/")[0] for n in names}
    assert packages == set(robosim.msgs.PACKAGES)
    assert "robosim/msg/StepResponse" in names and "robosim/msg/Strategy" in names
    for name in names:
        cls = robosim.message_class(name)
        assert robosim.type_name(cls) == name
        assert robosim.validate_type_name(name) == name
        assert cls.FromString(cls().SerializeToString()) == cls()


@pytest.mark.parametrize("good", ["/a", "/clock", "/env_0/joint_states", "/env_10/camera/front/image_raw",
                                  "/_hidden", "/a1/b_2/C3", "/" + "a" * 255])
def test_valid_topic_names(good):
    assert robosim.validate_topic_name(good) == good
    assert robosim.is_valid_topic_name(good)


@pytest.mark.parametrize("bad", ["", "chatter", "/", "/a/", "//a", "/a//b", "/1a", "/a/1b", "/a__b", "/__a",
                                 "/a-b", "/a b", "/a.b", "/é", "~/a", "/a/*", "/" + "a" * 256])
def test_invalid_topic_names(bad):
    with pytest.raises(ValueError):
        robosim.validate_topic_name(bad)
    assert not robosim.is_valid_topic_name(bad)


def test_topic_name_must_be_str():
    with pytest.raises(TypeError):
        robosim.validate_topic_name(b"/a")
