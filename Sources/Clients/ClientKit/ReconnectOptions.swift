import ArgumentParser

/// `--reconnect-timeout`, shared by the programs that drive envs through a vector env
/// (sim-collect, sim-train, sim-deploy agent): how long a client waits for a restarted server.
public struct ReconnectOptions: ParsableArguments, Sendable {
    @Option(name: .customLong("reconnect-timeout"), help: ArgumentHelp(
        "Seconds to wait for a sim-server that was lost or restarted (killed and started again on the same address) before giving up; 0: fail at once.",
        valueName: "SECONDS"))
    public var seconds: Double = 60

    public init() {}

    public func validate() throws {
        guard seconds >= 0, seconds.isFinite else { throw ValidationError("--reconnect-timeout must be 0 or a positive number of seconds") }
    }
}
