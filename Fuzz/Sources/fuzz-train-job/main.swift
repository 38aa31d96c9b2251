import Foundation
import FuzzSupport
import TrainKit

/// sim-train job files (`sim-train job FILE`, one per Kubernetes Job): `Job.read` parses the JSON,
/// refuses unknown keys and checks the values; a bad file must be an error, never a trap.
enum Fixture {
    static let scratch = ScratchFile(name: "job.json")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let url = Fixture.scratch.write(FuzzInput(data, size).bytes)
    guard let job = try? Job.read(url) else { return 0 }
    // What was accepted encodes and reads back the same.
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    guard let again = try? encoder.encode(job) else { preconditionFailure("an accepted job does not encode") }
    let url2 = Fixture.scratch.write(Array(again))
    guard let reread = try? Job.read(url2) else { preconditionFailure("an accepted job does not read back: \(String(decoding: again, as: UTF8.self))") }
    precondition(reread == job, "a job changed on the round trip")
    return 0
}

runFuzzer(fuzz)
