import Foundation
import Logging
import ServiceLifecycle

/// Runs a `SimServer` as a process does: in a `ServiceGroup` that shuts it down gracefully on
/// SIGTERM and SIGINT, optionally ending with a parent process (a server that another program
/// started for itself ends with it, even on kill -9). What `sim-server` runs.
public struct SimServerApplication: Sendable {
    public var configuration: SimServerConfiguration
    /// Stop (as on SIGTERM) once this process is no longer the parent.
    public var parentPID: Int32?
    public var logger: Logger
    /// Services that run beside the server in its group, made once it has loaded (sim-server's
    /// viewer); they start with it and stop before it.
    public var companions: @Sendable (SimServer) throws -> [any Service] = { _ in [] }

    public init(configuration: SimServerConfiguration, parentPID: Int32? = nil, logger: Logger = Logger(label: "sim-server")) {
        self.configuration = configuration
        self.parentPID = parentPID
        self.logger = logger
    }

    /// Loads the scene (throws its one-line error: file, place, problem), serves until a signal,
    /// then stops.
    public func run() async throws {
        let server = try SimServer(configuration: configuration, logger: logger)
        if let parentPID { Self.watch(parent: parentPID) }
        let services = [ServiceGroupConfiguration.ServiceConfiguration(service: server)] + (try companions(server)).map { .init(service: $0) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// Sends this process SIGTERM once `parent` is gone (reparented: a zombie parent still answers kill(pid, 0)).
    private static func watch(parent: Int32) {
        let watcher = Thread {
            while getppid() == parent { Thread.sleep(forTimeInterval: 0.5) }
            kill(getpid(), SIGTERM)
        }
        watcher.name = "robosim.parent-watch"
        watcher.start()
    }
}
