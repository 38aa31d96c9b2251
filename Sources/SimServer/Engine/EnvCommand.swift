import PluginAPI

/// What drives one env from its next control step on: the engine's one typed command, whatever
/// it came from (`/sim/step` actions or end-effector targets, the command topics).
package enum EnvCommand: Sendable {
    /// The task's action: the vector given to `World.step` for this env (checked by the
    /// `ActionContract`, clipped to its bounds) goes to the task's pre-step.
    case action
    /// A robot command (joint positions or velocities, an end-effector target, a base twist),
    /// checked by the safety layer and executed by the motion generator. `origin` names where it
    /// came from (its rejections are counted there); `stamp` is the sender's sim time, when it gave
    /// one (a command stamped before the env's episode started is refused as stale).
    case robot(RobotCommand, origin: String, stamp: Double? = nil)
}

extension World {
    /// Applies `command` to env `i`. Step loop thread, between batches.
    package func command(_ i: Int, _ command: EnvCommand) {
        let env = envs[i]
        switch command {
        case .action:
            env.source = .action
        case .robot(let c, let origin, let stamp):
            env.source = .robot
            env.pendingCommand = PendingCommand(command: c, topic: origin, stamp: stamp)
        }
    }
}
