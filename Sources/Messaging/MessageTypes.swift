import SwiftProtobuf

/// The ROS 2-style type name of a protobuf message: `sensor_msgs/msg/Image` for `sensor_msgs.Image`.
public func rosTypeName(of type: any SwiftProtobuf.Message.Type) -> String {
    rosTypeName(protoName: type.protoMessageName)
}

/// `package.Name` -> `package/msg/Name`; a nested `package.Outer.Inner` -> `package/msg/OuterInner`.
public func rosTypeName(protoName: String) -> String {
    let parts = protoName.split(separator: ".")
    let package = parts.prefix { $0.first?.isLowercase ?? false }
    let name = parts.dropFirst(package.count)
    return package.joined(separator: "_") + "/msg/" + name.joined()
}

/// Every message type of `Protos/`, by ROS type name, for tools that decode by name (simctl, the hub).
public enum MessageTypes {
    /// All generated message types.
    public static let all: [any SwiftProtobuf.Message.Type] = [
        BuiltinInterfaces_Time.self, BuiltinInterfaces_Duration.self,
        StdMsgs_Header.self, StdMsgs_String.self, StdMsgs_Float64MultiArray.self,
        GeometryMsgs_Point.self, GeometryMsgs_Vector3.self, GeometryMsgs_Quaternion.self, GeometryMsgs_Pose.self,
        GeometryMsgs_PoseStamped.self, GeometryMsgs_Twist.self, GeometryMsgs_TwistStamped.self,
        GeometryMsgs_Transform.self, GeometryMsgs_TransformStamped.self,
        GeometryMsgs_PoseWithCovariance.self, GeometryMsgs_TwistWithCovariance.self,
        SensorMsgs_Image.self, SensorMsgs_RegionOfInterest.self, SensorMsgs_CameraInfo.self, SensorMsgs_JointState.self,
        NavMsgs_Odometry.self, Tf2Msgs_TFMessage.self, RosgraphMsgs_Clock.self, TrajectoryMsgs_JointTrajectoryPoint.self,
        Robosim_Error.self, Robosim_ObjectState.self, Robosim_ObjectArray.self, Robosim_EpisodeEvent.self,
        Robosim_Action.self, Robosim_Strategy.self, Robosim_Pace.self, Robosim_NodeInfo.self, Robosim_NodeInfo.Endpoint.self,
        Robosim_Empty.self, Robosim_TopicInfo.self, Robosim_DescribeRequest.self, Robosim_DescribeResponse.self,
        Robosim_LeaseRequest.self, Robosim_LeaseResponse.self, Robosim_ReleaseRequest.self,
        Robosim_ResetRequest.self, Robosim_ResetResponse.self, Robosim_StepRequest.self, Robosim_StepResponse.self,
        Robosim_OpenChannelRequest.self, Robosim_OpenChannelResponse.self,
        Robosim_Parameter.self, Robosim_GetParametersRequest.self, Robosim_GetParametersResponse.self,
        Robosim_SetParametersRequest.self, Robosim_SetParametersResponse.self,
        Robosim_SetRewardRequest.self, Robosim_SetRewardResponse.self,
        Robosim_RewardStatisticsRequest.self, Robosim_RewardStatisticsResponse.self,
        Robosim_ServiceInfo.self, Robosim_TopicStatistics.self, Robosim_GraphListRequest.self, Robosim_GraphListResponse.self,
        Robosim_CommandStatistics.self, Robosim_CameraDescription.self, Robosim_RenderRequest.self, Robosim_RenderResponse.self,
        Robosim_TaskDescription.self, Robosim_Quantity.self, Robosim_RewardTermDescription.self,
        Robosim_DeployRegisterRequest.self, Robosim_DeployExecution.self, Robosim_DeployNextRequest.self, Robosim_DeployNextResponse.self,
        Robosim_DeployUpdateRequest.self, Robosim_DeployUpdateResponse.self, Robosim_DeployArtifactRequest.self,
        Robosim_DeployArtifactResponse.self, Robosim_DeployNotification.self,
    ]

    private static let byName: [String: any SwiftProtobuf.Message.Type] = {
        var table: [String: any SwiftProtobuf.Message.Type] = [:]
        for t in all { table[rosTypeName(of: t)] = t }
        return table
    }()

    /// The message type for a ROS type name (`sensor_msgs/msg/Image`), or nil.
    public static func type(named name: String) -> (any SwiftProtobuf.Message.Type)? { byName[name] }

    /// All known ROS type names, sorted.
    public static var names: [String] { byName.keys.sorted() }
}

/// A service's type: its ROS name (`robosim/srv/Describe`) and its request and response messages.
public struct ServiceType: Sendable {
    public let name: String
    public let request: any SwiftProtobuf.Message.Type
    public let response: any SwiftProtobuf.Message.Type

    public init(_ name: String, request: any SwiftProtobuf.Message.Type, response: any SwiftProtobuf.Message.Type) {
        self.name = name
        self.request = request
        self.response = response
    }

    public static let describe = ServiceType("robosim/srv/Describe", request: Robosim_DescribeRequest.self, response: Robosim_DescribeResponse.self)
    public static let graphList = ServiceType("robosim/srv/GraphList", request: Robosim_GraphListRequest.self, response: Robosim_GraphListResponse.self)
    public static let announce = ServiceType("robosim/srv/Announce", request: Robosim_NodeInfo.self, response: Robosim_Empty.self)
}

extension Robosim_GraphListResponse {
    /// Every topic some node publishes with a type this build knows, by topic (the first
    /// publisher's type wins), leaving out nodes whose names start with `excluding`: what bridges
    /// and recorders can carry.
    public func publishedTopics(excludingNodes excluding: String? = nil) -> [String: String] {
        var types: [String: String] = [:]
        for n in nodes where excluding.map({ !n.name.hasPrefix($0) }) ?? true {
            for p in n.publishers where types[p.topic] == nil && MessageTypes.type(named: p.type) != nil { types[p.topic] = p.type }
        }
        return types
    }
}
