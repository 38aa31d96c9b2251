import Foundation

/// A job's state (AWS IoT Jobs): created SCHEDULED, IN_PROGRESS once the deployer starts it,
/// COMPLETED when every execution has ended, CANCELED by `sim-deploy cancel` or an abort.
public enum JobStatus: String, Codable, Sendable, CaseIterable {
    case SCHEDULED, IN_PROGRESS, COMPLETED, CANCELED
}

/// An execution's state, one per robot of a job (AWS IoT Jobs).
public enum ExecutionStatus: String, Codable, Sendable, CaseIterable {
    case QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, TIMED_OUT, REJECTED, REMOVED, CANCELED

    public var isTerminal: Bool { self != .QUEUED && self != .IN_PROGRESS }
    /// Ended after the robot started it: what abort criteria count as executed.
    public var isExecuted: Bool { [.SUCCEEDED, .FAILED, .TIMED_OUT, .REJECTED].contains(self) }

    /// The transitions the store makes; every other one is refused.
    public func canMove(to next: ExecutionStatus) -> Bool {
        switch (self, next) {
        case (.QUEUED, .IN_PROGRESS), (.QUEUED, .CANCELED), (.QUEUED, .REMOVED): true
        case (.IN_PROGRESS, .SUCCEEDED), (.IN_PROGRESS, .FAILED), (.IN_PROGRESS, .REJECTED),
             (.IN_PROGRESS, .TIMED_OUT), (.IN_PROGRESS, .CANCELED): true
        default: false
        }
    }
}

/// What a robot does when its health check fails. ROLLBACK (the default): it stays on (returns to)
/// the version it ran before. DO_NOTHING: it is left as the failed deployment left it, the new
/// version active, for the operator to inspect or `sim-deploy rollback` (Greengrass's semantics).
public enum FailurePolicy: String, Codable, Sendable, CaseIterable {
    case ROLLBACK, DO_NOTHING
}

/// How fast robots are notified (IoT's jobExecutionsRolloutConfig).
public struct RolloutConfig: Codable, Sendable, Equatable {
    /// Robots notified per minute at most, 1...1000 (with `exponential`, the cap of its rate).
    public var maxPerMinute: Int
    public var exponential: ExponentialRate?

    /// IoT's exponentialRate: start at `basePerMinute`, multiply the rate by `incrementFactor` each
    /// time `threshold` more robots were notified (or succeeded).
    public struct ExponentialRate: Codable, Sendable, Equatable {
        public var basePerMinute: Int
        public var incrementFactor: Double
        public var threshold: Int
        /// true: raise after `threshold` more succeeded robots; false: after `threshold` more notified ones.
        public var countSucceeded: Bool
        public init(basePerMinute: Int, incrementFactor: Double, threshold: Int, countSucceeded: Bool) {
            self.basePerMinute = basePerMinute
            self.incrementFactor = incrementFactor
            self.threshold = threshold
            self.countSucceeded = countSucceeded
        }
    }

    public init(maxPerMinute: Int = 1000, exponential: ExponentialRate? = nil) {
        self.maxPerMinute = maxPerMinute
        self.exponential = exponential
    }

    /// The rate (robots per minute) once `notified` robots were notified and `succeeded` succeeded.
    public func rate(notified: Int, succeeded: Int) -> Double {
        guard let e = exponential else { return Double(maxPerMinute) }
        let steps = (e.countSucceeded ? succeeded : notified) / max(1, e.threshold)
        return min(Double(maxPerMinute), Double(e.basePerMinute) * pow(e.incrementFactor, Double(min(steps, 200))))
    }

    func validate() throws {
        guard (1...1000).contains(maxPerMinute) else { throw DeployError("the rollout rate must be 1-1000 robots per minute, got \(maxPerMinute)") }
        if let e = exponential {
            guard (1...1000).contains(e.basePerMinute) else { throw DeployError("the exponential rate's base must be 1-1000 per minute, got \(e.basePerMinute)") }
            guard e.incrementFactor >= 1.1, e.incrementFactor <= 5 else { throw DeployError("the increment factor must be 1.1-5, got \(e.incrementFactor)") }
            guard (1...1_000_000).contains(e.threshold) else { throw DeployError("the rate increase threshold must be 1-1000000 robots, got \(e.threshold)") }
        }
    }
}

/// Which executions an abort criterion counts (IoT's AbortCriteria.failureType).
public enum FailureType: String, Codable, Sendable, CaseIterable {
    case FAILED, REJECTED, TIMED_OUT, ALL

    func counts(_ status: ExecutionStatus) -> Bool {
        switch self {
        case .ALL: [.FAILED, .REJECTED, .TIMED_OUT].contains(status)
        case .FAILED: status == .FAILED
        case .REJECTED: status == .REJECTED
        case .TIMED_OUT: status == .TIMED_OUT
        }
    }
}

/// Cancel the job when at least `minExecuted` robots ended and `thresholdPercentage` percent of them
/// ended with `failureType` (IoT's abortConfig; its one action is CANCEL).
public struct AbortCriterion: Codable, Sendable, Equatable {
    public var failureType: FailureType
    public var thresholdPercentage: Double
    public var minExecuted: Int
    public init(failureType: FailureType, thresholdPercentage: Double, minExecuted: Int) {
        self.failureType = failureType
        self.thresholdPercentage = thresholdPercentage
        self.minExecuted = minExecuted
    }

    /// `TYPE:PERCENT:MIN`, e.g. `FAILED:20:5`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let type = FailureType(rawValue: parts[0].uppercased()), let percent = Double(parts[1]), let minimum = Int(parts[2]) else {
            throw DeployError("abort criterion '\(text)' must be TYPE:PERCENT:MIN with TYPE one of FAILED, REJECTED, TIMED_OUT, ALL (e.g. FAILED:20:5)")
        }
        self.init(failureType: type, thresholdPercentage: percent, minExecuted: minimum)
    }

    func validate() throws {
        guard thresholdPercentage > 0, thresholdPercentage <= 100 else { throw DeployError("an abort threshold must be in (0, 100] percent, got \(thresholdPercentage)") }
        guard (1...1_000_000).contains(minExecuted) else { throw DeployError("an abort criterion's minimum of executed robots must be 1-1000000, got \(minExecuted)") }
    }

    /// The reason to abort, or nil.
    func trips(executed: Int, failures: Int) -> String? {
        guard executed >= minExecuted, executed > 0 else { return nil }
        let percent = 100 * Double(failures) / Double(executed)
        guard percent >= thresholdPercentage else { return nil }
        return "aborted: \(failures) of \(executed) executed robots ended \(failureType.rawValue) (\(String(format: "%.0f", percent))% >= \(String(format: "%g", thresholdPercentage))%)"
    }
}

/// Everything a job asks of its robots and of the deployer: IoT's job document plus its configs.
public struct JobDocument: Codable, Sendable, Equatable {
    public var version: String
    public var failurePolicy: FailurePolicy
    /// The health check: `healthEpisodes` episodes in the robot's env from `healthSeed`, passed
    /// when the success rate is at least `healthThreshold`.
    public var healthEpisodes: Int
    public var healthThreshold: Double
    public var healthSeed: UInt64
    /// Seconds an execution may stay IN_PROGRESS before it is TIMED_OUT.
    public var inProgressTimeout: Double
    public var rollout: RolloutConfig
    public var abort: [AbortCriterion]

    public init(version: String, failurePolicy: FailurePolicy = .ROLLBACK, healthEpisodes: Int = 5, healthThreshold: Double = 0.8,
                healthSeed: UInt64 = 1_000_000, inProgressTimeout: Double = 600, rollout: RolloutConfig = RolloutConfig(), abort: [AbortCriterion] = []) {
        self.version = version
        self.failurePolicy = failurePolicy
        self.healthEpisodes = healthEpisodes
        self.healthThreshold = healthThreshold
        self.healthSeed = healthSeed
        self.inProgressTimeout = inProgressTimeout
        self.rollout = rollout
        self.abort = abort
    }

    public func validate() throws {
        guard Registry.isValidVersion(version) else { throw DeployError("version '\(version)' is not a valid version name") }
        guard (1...1000).contains(healthEpisodes) else { throw DeployError("health episodes must be 1-1000, got \(healthEpisodes)") }
        guard healthThreshold >= 0, healthThreshold <= 1 else { throw DeployError("the health threshold is a success rate in 0...1, got \(healthThreshold)") }
        guard inProgressTimeout >= 1, inProgressTimeout <= 7 * 86_400 else { throw DeployError("the in-progress timeout must be 1 s to 7 days, got \(inProgressTimeout) s") }
        try rollout.validate()
        guard abort.count <= 16 else { throw DeployError("at most 16 abort criteria") }
        for a in abort { try a.validate() }
    }
}

/// A job as stored.
public struct Job: Codable, Sendable, Equatable {
    public var id: String
    public var status: JobStatus
    public var document: JobDocument
    /// The targets as given: robot ids and group names.
    public var targets: [String]
    public var created: Double
    public var started: Double?
    public var finished: Double?
    public var reason: String?
    /// The job this one rolls back (`sim-deploy rollback`).
    public var rollbackOf: String?
}

/// One robot's execution of a job, as stored.
public struct Execution: Codable, Sendable, Equatable {
    public var jobID: String
    public var robotID: String
    public var status: ExecutionStatus
    /// Increases with every change (IoT's versionNumber).
    public var versionNumber: Int
    public var queuedAt: Double
    public var notifiedAt: Double?
    public var startedAt: Double?
    public var finishedAt: Double?
    /// The agent's last reported step and its detail.
    public var phase: String
    public var detail: String
    /// The version the robot ran before this execution (reported by its agent).
    public var previousVersion: String?
}

/// One row of the transition log: a job's or an execution's status change (`robotID` nil: the job's).
public struct Transition: Codable, Sendable, Equatable {
    public var sequence: Int
    public var at: Double
    public var jobID: String
    public var robotID: String?
    public var from: String?
    public var to: String
    public var reason: String
}

/// A robot as its agent registered it, with the version it last said it runs.
public struct Robot: Codable, Sendable, Equatable {
    public var id: String
    public var groups: [String]
    public var activeVersion: String?
    public var lastSeen: Double
}

/// Names of jobs, robots and groups: 1-128 letters, digits, `.`, `_`, `-`, `:`, starting with a
/// letter or digit (a robot's name is a folder of the agent's state: never `.` or `..`).
public enum DeployNames {
    public static func isValid(_ name: String) -> Bool {
        let scalars = name.unicodeScalars
        guard let first = scalars.first, first.isASCII, CharacterSet.alphanumerics.contains(first), scalars.count <= 128 else { return false }
        return scalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-:".unicodeScalars.contains($0)) }
    }

    static func check(_ name: String, _ what: String) throws {
        guard isValid(name) else { throw DeployError("\(what) '\(name.prefix(140))' must be 1-128 letters, digits, '.', '_', '-' or ':', starting with a letter or digit") }
    }
}
