import ArgumentParser
import ClientKit
import Foundation

/// Writes the same messages as Benchmarks/python/mcap_bench.py (a recording's mix: small state
/// messages and camera images) with our MCAP writer, and prints the seconds and bytes per second
/// for the Python script to set beside its own writer (Python's `mcap`).
struct MCAPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcap",
        abstract: "Seconds to write an MCAP file of small messages and images (our writer).")

    @Option(help: "Small messages (200 bytes).") var small = 200_000
    @Option(help: "Images (128x128 rgb8, 49,152 bytes).") var images = 4_000
    @Option(help: "The file to write.") var out = "/tmp/robosim-mcap-bench.mcap"
    @Option(help: "Runs; the median is reported.") var repeats = 5

    func run() throws {
        let smallPayload = [UInt8](repeating: 7, count: 200), image = [UInt8](repeating: 128, count: 128 * 128 * 3)
        var times: [Double] = []
        var bytes = 0
        for _ in 0..<repeats {
            let start = monotonic()
            let writer = try MCAPWriter(url: URL(fileURLWithPath: out))
            let schema = try writer.addSchema(name: "bench.Message", encoding: "protobuf", data: Data(repeating: 1, count: 2000))
            let state = try writer.addChannel(schemaID: schema, topic: "/state", messageEncoding: "protobuf")
            let camera = try writer.addChannel(schemaID: schema, topic: "/camera", messageEncoding: "protobuf")
            // Interleaved as a recording is: one image every `small / images` small messages.
            let every = max(1, small / max(1, images))
            var t: UInt64 = 1_000_000_000, k = 0
            for i in 0..<small {
                try writer.add(channel: state, sequence: UInt32(i), logTime: t, publishTime: t, data: smallPayload)
                t += 1000
                if i % every == 0, k < images {
                    try writer.add(channel: camera, sequence: UInt32(k), logTime: t, publishTime: t, data: image)
                    k += 1
                }
            }
            try writer.finish()
            times.append(monotonic() - start)
            bytes = (try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        }
        let median = times.sorted()[times.count / 2]
        print(String(format: "swift_mcap_seconds %.4f bytes %d mb_per_s %.1f", median, bytes, Double(bytes) / median / 1e6))
    }
}
