import CMuJoCo

extension World {
    /// The current state of env `i` for rendering, stamped `stamp` (sim time, s).
    package func snapshot(_ i: Int, stamp: Double) -> StateSnapshot {
        let env = envs[i]
        return StateSnapshot(env: i, epoch: env.episodeStarts, stamp: stamp, model: model.pointer, data: env.data)
    }

    /// The state env `i`'s last episode ended in (kept when `keepsFinalStates`), restamped; else
    /// its current state.
    package func finalSnapshot(_ i: Int, stamp: Double) -> StateSnapshot {
        envs[i].finalState.map { StateSnapshot(env: $0.env, epoch: $0.epoch, stamp: stamp, copying: $0) } ?? snapshot(i, stamp: stamp)
    }

    /// Computes body and site poses of env `i` (forward kinematics) for a publisher, unless the
    /// step already did (tasks that read poses).
    package func computePoses(_ i: Int) {
        if !usesPoses { mj_kinematics(model.pointer, envs[i].data) }
    }

    /// The MuJoCo library's version ("4.0.1").
    package static var mujocoVersion: String { String(cString: mj_versionString()) }
}
