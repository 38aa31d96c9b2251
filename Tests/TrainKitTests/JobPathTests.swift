import Foundation
import Testing
@testable import TrainKit

/// A job file's `output` is a folder inside the outputs folder, its `video` a file inside that.
@Suite struct JobPathTests {
    static func job(output: String, video: String? = nil) -> Job {
        Job(kind: video == nil ? .train : .eval, scene: "Scenes/cartpole", output: output, video: video, random: video == nil ? nil : true)
    }

    @Test func outputsStayInsideTheOutputsFolder() throws {
        let outputs = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-jobs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outputs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outputs) }
        let ok = try Self.job(output: "runs/cartpole", video: "films/eval.mp4").outputFolder(in: outputs)
        #expect(ok.output.path == outputs.path + "/runs/cartpole" && ok.video?.path == outputs.path + "/runs/cartpole/films/eval.mp4")
        for (output, video, message) in [
            ("../x", nil, "job output '../x' is refused: '..' is not allowed in it; it must stay inside \(outputs.path)"),
            ("/abs/x", nil, "job output '/abs/x' is refused: it is an absolute path; it must stay inside \(outputs.path)"),
            ("run", "../../v.mp4", "job video '../../v.mp4' is refused: '..' is not allowed in it; it must stay inside \(outputs.path)/run"),
        ] as [(String, String?, String)] {
            #expect(throws: (any Error).self) { try Self.job(output: output, video: video).outputFolder(in: outputs) }
            do { _ = try Self.job(output: output, video: video).outputFolder(in: outputs) } catch { #expect("\(error)" == message) }
        }
    }
}
