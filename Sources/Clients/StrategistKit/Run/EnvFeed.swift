import Foundation
import Messaging
import Synchronization

/// The latest of what one env's topics said, filled on the node's I/O thread.
final class EnvFeed: Sendable {
    struct Snapshot {
        var bar: Pose2?
        /// The T-bar's speed (m/s) and turn rate (rad/s).
        var barSpeed = 0.0
        var barTurnRate = 0.0
        var slot: Pose2?
        /// Tool tip, and the sim time of its pose message.
        var tool: SIMD3<Double>?
        var time = 0.0
        /// The episode the server last said started, and how many starts were seen (a reset with
        /// a seed starts again at index 0, so the index alone does not tell episodes apart).
        var episode: UInt64?
        var starts = 0
        var ended: [Robosim_EpisodeEvent] = []
    }
    private let state = Mutex(Snapshot())

    func objects(_ m: Robosim_ObjectArray) {
        state.withLock { s in
            for o in m.objects {
                let q = o.pose.orientation
                let yaw = atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
                let pose = Pose2(x: o.pose.position.x, y: o.pose.position.y, yaw: yaw)
                if o.name == "tbar" {
                    s.bar = pose
                    let v = o.twist.linear
                    s.barSpeed = (v.x * v.x + v.y * v.y).squareRoot()
                    s.barTurnRate = abs(o.twist.angular.z)
                } else if o.name == "tslot" {
                    s.slot = pose
                }
            }
        }
    }

    func robotPose(_ m: GeometryMsgs_PoseStamped) {
        state.withLock { s in
            s.tool = SIMD3(m.pose.position.x, m.pose.position.y, m.pose.position.z)
            s.time = m.header.stamp.seconds
        }
    }

    func episode(_ e: Robosim_EpisodeEvent) {
        state.withLock { s in
            switch e.kind {
            case .started:
                s.episode = e.episodeIndex
                s.starts += 1
                s.bar = nil   // wait for the new episode's poses
                s.tool = nil
            case .ended:
                s.ended.append(e)
            default:
                break
            }
        }
    }

    /// Forgets the poses (a restarted server: wait for its own).
    func forgetPoses() {
        state.withLock { s in
            s.bar = nil
            s.tool = nil
        }
    }

    /// The snapshot, taking the ended-episode events out.
    func take() -> Snapshot {
        state.withLock { s in
            defer { s.ended.removeAll() }
            return s
        }
    }
}
