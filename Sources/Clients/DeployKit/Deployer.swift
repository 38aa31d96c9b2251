import Foundation
import ClientKit
import Logging
import Messaging
import SwiftProtobuf

/// The deployer (`sim-deploy deployer`), the part of AWS IoT Jobs that runs in the cloud: a hub
/// that robots' agents call (`/deploy/register`, `/deploy/next`, `/deploy/update`,
/// `/deploy/artifact`) and a loop that applies the job rules (`JobStore.tick`) and publishes
/// `/deploy/notify`. All its state is in the store, so a deployer killed at any point is restarted
/// with the same arguments and goes on.
public final class Deployer: Sendable {
    public let store: JobStore
    public let registry: Registry
    public let hub: Hub
    let node: Node
    let notify: Publisher<Robosim_DeployNotification>
    let interval: Double
    let logger: Logger
    private let work = DispatchQueue(label: "sim-deploy.deployer.services")
    private let stopped = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    /// Seconds after a (re)start before executions may time out.
    public static let restartGrace = 10.0

    /// Largest artifact chunk sent in one answer.
    public static let maxChunk = 1 << 20

    /// `security`: CURVE keys and the agents' allow-list (nil: plaintext, which a listen address
    /// beyond loopback refuses unless `allowInsecure`).
    public init(store: JobStore, registry: Registry, listen: String, interval: Double = 0.2, security: ServerSecurity? = nil,
                allowInsecure: Bool = false, logger: Logger = Logger(label: "sim-deploy.deployer")) throws {
        self.store = store
        self.registry = registry
        self.interval = interval
        self.logger = logger
        var configuration = try HubConfiguration(listen: listen)
        configuration.security = security
        configuration.allowInsecure = allowInsecure
        hub = try Hub(configuration: configuration, logger: logger)
        node = try Node(name: "sim_deploy_deployer", hub: hub)
        notify = try node.advertise("/deploy/notify", Robosim_DeployNotification.self, qos: .standard)
        try serve()
    }

    /// Serves agents and applies the rules every `interval` seconds until `stop()`.
    public func run() {
        hub.start()
        // Agents back off up to 5 s while the deployer is away: give them that, and more, to report
        // before an outage counts against their in-progress timeouts.
        let timeoutsFrom = Date().timeIntervalSince1970 + Self.restartGrace
        let logger = self.logger
        while stopped.wait(timeout: .now() + interval) == .timedOut {
            do {
                let due = try store.tick(burst: max(1, 2 * interval), timeoutsFrom: timeoutsFrom) { job, error in
                    logger.error("job \(job): its pass failed (retried next tick): \(error)")
                }
                for n in due {
                    var message = Robosim_DeployNotification()
                    message.robotID = n.robotID
                    message.jobID = n.jobID
                    _ = notify.publish(message)
                }
            } catch {
                logger.error("tick failed (retried next tick): \(error)")
            }
        }
        node.close()
        hub.shutdown()
        done.signal()
    }

    public func stop() {
        stopped.signal()
        done.wait()
    }

    /// Registers a service answered on `work`, a serial queue of the deployer's own: the database
    /// (which may wait on another process's transaction) never holds up the hub thread.
    private func serve<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ name: String, _ type: ServiceType, _ body: @escaping @Sendable (Request) throws(ServiceError) -> Response
    ) throws {
        let work = self.work
        try hub.serve(name, type: type) { request, responder in
            let decoded: Request
            do throws(ServiceError) { decoded = try request.decode(Request.self) } catch { return responder.fail(error) }
            work.async {
                do throws(ServiceError) { responder.succeed(try body(decoded)) } catch { responder.fail(error) }
            }
        }
    }

    private func serve() throws {
        let store = self.store, registry = self.registry
        try serve("/deploy/register", ServiceType("robosim/srv/DeployRegister", request: Robosim_DeployRegisterRequest.self, response: Robosim_Empty.self)) {
            (r: Robosim_DeployRegisterRequest) throws(ServiceError) in
            try Self.mapped { try store.register(robot: r.robotID, groups: r.groups, activeVersion: r.activeVersion) }
            return Robosim_Empty()
        }
        try serve("/deploy/next", ServiceType("robosim/srv/DeployNext", request: Robosim_DeployNextRequest.self, response: Robosim_DeployNextResponse.self)) {
            (r: Robosim_DeployNextRequest) throws(ServiceError) in
            var response = Robosim_DeployNextResponse()
            if let (e, document) = try Self.mapped({ try store.startNext(robot: r.robotID, activeVersion: r.activeVersion) }) {
                response.hasExecution_p = true
                response.execution = Self.message(e, document)
            }
            return response
        }
        try serve("/deploy/update", ServiceType("robosim/srv/DeployUpdate", request: Robosim_DeployUpdateRequest.self, response: Robosim_DeployUpdateResponse.self)) {
            (r: Robosim_DeployUpdateRequest) throws(ServiceError) in
            guard let status = ExecutionStatus(rawValue: r.status) else { throw .invalidArgument("unknown execution status '\(r.status.prefix(40))'") }
            let result = try Self.mapped {
                try store.update(job: r.jobID, robot: r.robotID, status: status, phase: r.phase, detail: r.detail,
                                 activeVersion: r.activeVersion, previousVersion: r.previousVersion.isEmpty ? nil : r.previousVersion)
            }
            var response = Robosim_DeployUpdateResponse()
            response.accepted = result.accepted
            response.status = result.status.rawValue
            response.reason = result.reason
            return response
        }
        try serve("/deploy/artifact", ServiceType("robosim/srv/DeployArtifact", request: Robosim_DeployArtifactRequest.self, response: Robosim_DeployArtifactResponse.self)) {
            (r: Robosim_DeployArtifactRequest) throws(ServiceError) in
            try Self.chunk(registry: registry, r)
        }
    }

    /// One chunk of one file of a release, bounded; `found` false when the file does not exist.
    static func chunk(registry: Registry, _ r: Robosim_DeployArtifactRequest) throws(ServiceError) -> Robosim_DeployArtifactResponse {
        guard Registry.isValidVersion(r.version) else { throw .invalidArgument("'\(r.version.prefix(80))' is not a version name") }
        guard Registry.files.contains(r.file) else { throw .invalidArgument("a release's files are \(Registry.files.joined(separator: ", ")); not '\(r.file.prefix(80))'") }
        guard r.maxBytes >= 1, r.maxBytes <= maxChunk else { throw .invalidArgument("max_bytes must be 1...\(maxChunk)") }
        var response = Robosim_DeployArtifactResponse()
        // The names are checked above; SafePath also refuses a version folder linked out of the registry.
        let url: URL
        do { url = try SafePath.child(of: registry.versionsFolder, named: r.version + "/" + r.file, what: "release file") } catch {
            throw .invalidArgument(error.description)
        }
        guard let handle = try? FileHandle(forReadingFrom: url) else { return response }
        defer { try? handle.close() }
        do {
            let size = try handle.seekToEnd()
            guard r.offset <= size else { throw ServiceError.invalidArgument("offset \(r.offset) is past the end (\(size) bytes)") }
            try handle.seek(toOffset: r.offset)
            response.found = true
            response.totalSize = size
            response.data = try handle.read(upToCount: Int(r.maxBytes)) ?? Data()
        } catch let error as ServiceError {
            throw error
        } catch {
            throw .internalError("cannot read \(r.file) of \(r.version): \(error)")
        }
        return response
    }

    static func mapped<T>(_ body: () throws -> T) throws(ServiceError) -> T {
        do { return try body() } catch let e as DeployError { throw .invalidArgument(e.description) } catch let e as UnknownExecution {
            throw .notFound(e.description)
        } catch { throw .internalError("\(error)") }
    }

    static func message(_ e: Execution, _ d: JobDocument) -> Robosim_DeployExecution {
        var m = Robosim_DeployExecution()
        m.jobID = e.jobID
        m.robotID = e.robotID
        m.status = e.status.rawValue
        m.version = d.version
        m.failurePolicy = d.failurePolicy.rawValue
        m.healthEpisodes = UInt32(d.healthEpisodes)
        m.healthThreshold = d.healthThreshold
        m.healthSeed = d.healthSeed
        m.inProgressTimeoutS = d.inProgressTimeout
        m.versionNumber = UInt64(e.versionNumber)
        return m
    }
}
