import Foundation
import FuzzSupport
import Logging
import Messaging
import SimServer
import SwiftProtobuf

/// The server's wire input: a real `SimServer` (the pendulum test scene, lockstep, 2 envs, no
/// rendering) in this process, called over its in-process endpoint exactly as clients call it over
/// TCP. Each input is one call; the hub decodes the frames, the handler decodes the protobuf request,
/// validates it against the world and the lease table and (when valid) queues it for the step loop.
///
/// Byte 0: bits 0-3 pick the service (`Fixture.services`); bit 4 puts a fresh lease of this harness
/// into the request (so the handlers' checks past authorization are reached); bit 5 sends the
/// rest as raw frames (split at 0xFE) instead of [service, payload], to fuzz the hub's envelope
/// handling. Every call must be answered within the timeout: a missing reply is a finding (a hang).
enum Fixture {
    static let services = [
        "/sim/describe", "/sim/lease", "/sim/release", "/sim/set_reward", "/sim/reward_statistics", "/sim/step", "/sim/reset",
        "/sim/render", "/sim/pause", "/sim/resume", "/sim/get_parameters", "/sim/set_parameters", "/graph/list", "/graph/announce",
        "/sim/open_channel", "/sim/step",
    ]
    static let replyTimeout = 4.0

    static let server: SimServer = {
        var config = SimServerConfiguration()
        config.scene = ProcessInfo.processInfo.environment["ROBOSIM_FUZZ_SCENE"] ?? "Scenes/test/pendulum"
        config.mode = .lockstep
        config.envCount = 2
        config.threads = 1
        config.renderBackend = .none
        config.listen = "inproc://robosim-fuzz-\(getpid())"
        do {
            let server = try SimServer(configuration: config, logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() })
            try server.start()
            return server
        } catch {
            fatalError("fuzz-requests: cannot start the server (run from the repository root): \(error)")
        }
    }()
    static let client = try! ServiceClient(server: server.hub.serviceEndpoint, timeout: replyTimeout)
    // Invariant: libFuzzer runs inputs one at a time on one thread; only that thread uses the socket.
    nonisolated(unsafe) static let raw: ZMQSocket = {
        let s = try! ZMQSocket(.shared, .dealer)
        try! s.connect(server.hub.serviceEndpoint)
        return s
    }()
}

/// Takes a lease of one env for this call (nil when the fuzzed calls hold them all).
func takeLease() -> String? {
    var r = Robosim_LeaseRequest()
    r.count = 1
    r.ttlS = 60
    r.clientName = "fuzz"
    return (try? Fixture.client.call("/sim/lease", r, as: Robosim_LeaseResponse.self))?.lease
}

func release(_ lease: String) {
    var r = Robosim_ReleaseRequest()
    r.lease = lease
    _ = try? Fixture.client.call("/sim/release", r, as: Robosim_Empty.self)
}

/// The payload with `lease` in its lease field (field 1 of every lease-carrying request, a string).
func withLease(_ payload: [UInt8], service: String, lease: String) -> [UInt8] {
    func patched<M: SwiftProtobuf.Message>(_ type: M.Type, _ set: (inout M) -> Void) -> [UInt8] {
        guard var m = try? M(serializedBytes: payload) else { return payload }
        set(&m)
        return (try? m.serializedBytes()) ?? payload
    }
    switch service {
    case "/sim/step": return patched(Robosim_StepRequest.self) { $0.lease = lease }
    case "/sim/reset": return patched(Robosim_ResetRequest.self) { $0.lease = lease }
    case "/sim/render": return patched(Robosim_RenderRequest.self) { $0.lease = lease }
    case "/sim/set_reward": return patched(Robosim_SetRewardRequest.self) { $0.lease = lease }
    case "/sim/reward_statistics": return patched(Robosim_RewardStatisticsRequest.self) { $0.lease = lease }
    case "/sim/release": return patched(Robosim_ReleaseRequest.self) { $0.lease = lease }
    case "/sim/open_channel": return patched(Robosim_OpenChannelRequest.self) { $0.lease = lease }
    case "/sim/lease": return patched(Robosim_LeaseRequest.self) { $0.lease = lease }
    default: return payload
    }
}

/// Sends raw frames on a DEALER and waits for the hub's one reply.
func rawCall(_ bytes: ArraySlice<UInt8>) {
    let frames = bytes.split(separator: 0xFE, maxSplits: 5, omittingEmptySubsequences: false).map(Array.init)
    while (try? Fixture.raw.receiveMultipart(flags: .dontWait)) ?? nil != nil {}   // late replies of earlier inputs
    guard (try? Fixture.raw.send(frames: frames)) == true else { return }
    let deadline = Date().addingTimeInterval(Fixture.replyTimeout)
    while deadline.timeIntervalSinceNow > 0 {
        if (try? Fixture.raw.waitReadable(timeout: deadline.timeIntervalSinceNow)) == true { return }
    }
    fatalError("the hub did not answer raw frames \(frames.map(\.count)) within \(Fixture.replyTimeout) s")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let (selector, rest) = FuzzInput(data, size).selectorAndRest else { return 0 }
    if selector & 0x20 != 0 {
        rawCall(rest)
        return 0
    }
    let service = Fixture.services[Int(selector & 0x0F)]
    let lease = selector & 0x10 != 0 ? takeLease() : nil
    let payload = lease.map { withLease(Array(rest), service: service, lease: $0) } ?? Array(rest)
    do {
        let reply = try Fixture.client.call(service, payload: payload)
        // A lease the fuzzed call took is given back, so that the envs stay free for the next input.
        if service == "/sim/lease", let taken = try? Robosim_LeaseResponse(serializedBytes: reply), !taken.lease.isEmpty, taken.lease != lease {
            release(taken.lease)
        }
    } catch {
        if error.code == .deadlineExceeded { fatalError("\(service) did not answer within \(Fixture.replyTimeout) s: \(error)") }
    }
    // Paused (by /sim/pause or set_parameters' `paused`), lockstep calls wait: resume for the next input.
    if service == "/sim/pause" || service == "/sim/set_parameters" {
        _ = try? Fixture.client.call("/sim/resume", Robosim_Empty(), as: Robosim_Empty.self)
    }
    if let lease { release(lease) }
    return 0
}

_ = Fixture.server
runFuzzer(fuzz)
