import Messaging
import Testing

@Suite struct NamesTests {
    @Test(arguments: ["/clock", "/env_0/joint_states", "/env_12/camera/front/image_raw", "/a", "/A_b/c9", "/_private"])
    func validTopics(_ name: String) {
        #expect(Names.isValidTopic(name))
    }

    @Test(arguments: [
        ("", "empty"), ("clock", "must start with '/'"), ("/", "'/' alone"), ("/env_0/", "must not end with '/'"),
        ("//clock", "empty token"), ("/env//x", "empty token"), ("/9lives", "must not start with a digit"),
        ("/env_0/1st", "must not start with a digit"), ("/a__b", "'__'"), ("/a b", "character ' '"),
        ("/caf\u{e9}", "not allowed"), ("/a-b", "character '-'"), ("/~/x", "character '~'"),
    ])
    func invalidTopics(_ name: String, _ reason: String) {
        #expect(throws: Names.Violation.self) { try Names.validateTopic(name) }
        do {
            try Names.validateTopic(name)
        } catch {
            #expect(error.reason.contains(reason), "\(name): \(error.reason)")
        }
    }

    @Test func tooLong() {
        #expect(Names.isValidTopic("/" + String(repeating: "a", count: 255)))
        #expect(!Names.isValidTopic("/" + String(repeating: "a", count: 256)))
    }

    @Test(arguments: ["sensor_msgs/msg/Image", "robosim/srv/Step", "tf2_msgs/msg/TFMessage", "x9/msg/A1"])
    func validTypes(_ name: String) throws {
        try Names.validateType(name)
    }

    @Test(arguments: ["sensor_msgs/Image", "Sensor_msgs/msg/Image", "sensor_msgs/msg/image", "sensor_msgs/action/Image",
                      "sensor_msgs/msg/Im_age", "/msg/Image", "a/msg/B/C", ""])
    func invalidTypes(_ name: String) {
        #expect(throws: Names.Violation.self) { try Names.validateType(name) }
    }
}
