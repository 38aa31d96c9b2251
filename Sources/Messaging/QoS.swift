/// Quality of service of a publisher or subscription (the two profiles robot topics need).
public enum QoS: Sendable, Equatable {
    /// Latest wins: the publisher never blocks (small send high-water mark, ZeroMQ drops beyond it);
    /// a subscription keeps the newest `depth` messages and counts each one it replaces as a drop.
    case sensorData(depth: Int = 1)
    /// Bounded queue: larger high-water marks; a subscription holds up to `depth` messages and
    /// drops (and counts) new ones when full.
    case reliable(depth: Int = 1000)

    /// Sensor data with depth 1.
    public static let sensor = QoS.sensorData()
    /// Reliable with depth 1000.
    public static let standard = QoS.reliable()

    /// Queue depth of a subscription.
    public var depth: Int {
        switch self {
        case .sensorData(let d), .reliable(let d): max(1, d)
        }
    }

    /// ZeroMQ high-water mark for sockets carrying this profile.
    var highWaterMark: Int32 {
        switch self {
        case .sensorData: 100
        case .reliable(let d): Int32(max(1000, d))
        }
    }

    var wire: Robosim_Qos {
        switch self {
        case .sensorData: .sensorData
        case .reliable: .reliable
        }
    }
}
