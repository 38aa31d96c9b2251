import DeployKit
import Foundation
import FuzzSupport
import Messaging

/// sim-deploy's inputs: the first byte picks a job document (JSON as the job store keeps it, then
/// `validate()`), a release manifest (JSON), an abort criterion (`TYPE:PERCENT:MIN` from the
/// command line), or one of the deployer's wire requests (protobuf) with the name checks they get.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let (selector, rest) = FuzzInput(data, size).selectorAndRest else { return 0 }
    let bytes = Array(rest)
    switch selector % 5 {
    case 0:
        guard let document = try? JSONDecoder().decode(JobDocument.self, from: Data(bytes)) else { return 0 }
        try? document.validate()
    case 1:
        guard let manifest = try? JSONDecoder().decode(Manifest.self, from: Data(bytes)) else { return 0 }
        _ = Registry.isValidVersion(manifest.version)
    case 2:
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? AbortCriterion(parsing: text)
        _ = DeployNames.isValid(text)
        _ = Registry.isValidVersion(text)
    case 3:
        if let r = try? Robosim_DeployUpdateRequest(serializedBytes: bytes) {
            _ = DeployNames.isValid(r.robotID)
            _ = try? r.serializedBytes() as [UInt8]
        }
        if let r = try? Robosim_DeployNextRequest(serializedBytes: bytes) { _ = DeployNames.isValid(r.robotID) }
    default:
        if let r = try? Robosim_DeployArtifactRequest(serializedBytes: bytes) { _ = Registry.isValidVersion(r.version) }
        if let r = try? Robosim_DeployRegisterRequest(serializedBytes: bytes) { _ = DeployNames.isValid(r.robotID) }
        _ = try? Robosim_DeployExecution(serializedBytes: bytes)
    }
    return 0
}

runFuzzer(fuzz)
