import Foundation

/// A checkpoint's policy as an ONNX model (opset 13) for robots and other runtimes: input
/// `observation` [N, observation size] (raw, as the server gives it), output `action` [N, action
/// size] (the mean action, before the server's clipping to the action bounds). The graph
/// normalizes the observation with the checkpoint's statistics (Sub, Div, Clip to ±10), then runs
/// the actor (MatMul, Add, Tanh); a categorical policy's logits go through ArgMax (the first
/// maximum) and a Cast to float, so `action` is the chosen index. Written with the ONNX protobuf
/// schema (onnx/onnx.proto) by hand. Pixel (CNN) policies are not exported yet.
public enum ONNXExport {
    public static func model(_ checkpoint: Checkpoint) throws -> Data {
        let policy = checkpoint.policy
        guard let net = policy.actor as? MLP else {
            throw TrainError("export --onnx: pixel (CNN) policies are not exported yet; only MLP policies over observation vectors")
        }
        let (o, a) = (policy.observationSize, policy.actionSize)
        var model = Protobuf()
        model.int(1, 8)  // ir_version
        model.string(2, "sim-train")
        model.string(3, checkpoint.metadata.versions["trainer"] ?? "")
        model.message(8) { $0.string(1, ""); $0.int(2, 13) }  // opset_import: ai.onnx 13
        model.message(7) { graph in
            var initializers: [(String, [Int], [Float])] = []
            var nodes: [(op: String, inputs: [String], output: String, attributes: [(String, Int)])] = []
            var x = "observation"
            if let norm = checkpoint.observationNormalization {
                // As Checkpoint.actions computes it, in F32: (x - mean) / sqrt(var + 1e-8), clipped.
                initializers.append(("obs_mean", [o], norm.mean.map { Float($0) }))
                initializers.append(("obs_std", [o], norm.variance.map { (Float($0) + 1e-8).squareRoot() }))
                initializers.append(("clip_min", [], [-10]))
                initializers.append(("clip_max", [], [10]))
                nodes.append(("Sub", [x, "obs_mean"], "obs_centered", []))
                nodes.append(("Div", ["obs_centered", "obs_std"], "obs_scaled", []))
                nodes.append(("Clip", ["obs_scaled", "clip_min", "clip_max"], "obs_normalized", []))
                x = "obs_normalized"
            }
            var at = net.offset
            for l in 0..<(net.sizes.count - 1) {
                let (n, m) = (net.sizes[l], net.sizes[l + 1])
                initializers.append(("actor.\(l).weight", [n, m], Array(policy.parameters[at..<(at + n * m)])))
                at += n * m
                initializers.append(("actor.\(l).bias", [m], Array(policy.parameters[at..<(at + m)])))
                at += m
                let last = l == net.sizes.count - 2
                let output = !last ? "actor.\(l).linear" : policy.choices > 0 ? "logits" : "action"
                nodes.append(("MatMul", [x, "actor.\(l).weight"], "actor.\(l).matmul", []))
                nodes.append(("Add", ["actor.\(l).matmul", "actor.\(l).bias"], output, []))
                if !last { nodes.append(("Tanh", ["actor.\(l).linear"], "actor.\(l).tanh", [])) }
                x = "actor.\(l).tanh"
            }
            if policy.choices > 0 {
                nodes.append(("ArgMax", ["logits"], "choice", [("axis", 1), ("keepdims", 1), ("select_last_index", 0)]))
                nodes.append(("Cast", ["choice"], "action", [("to", 1)]))  // FLOAT
            }
            for (k, node) in nodes.enumerated() {
                graph.message(1) { n in
                    for i in node.inputs { n.string(1, i) }
                    n.string(2, node.output)
                    n.string(3, "\(node.op)_\(k)")
                    n.string(4, node.op)
                    for (name, value) in node.attributes {
                        n.message(5) { attribute in
                            attribute.string(1, name)
                            attribute.int(3, value)
                            attribute.int(20, 2)  // AttributeProto.INT
                        }
                    }
                }
            }
            graph.string(2, "robosim_policy_\(checkpoint.metadata.task)")
            for (name, dims, values) in initializers {
                graph.message(5) { t in
                    for d in dims { t.int(1, d) }
                    t.int(2, 1)  // FLOAT
                    t.string(8, name)
                    var raw: [UInt8] = []
                    raw.reserveCapacity(4 * values.count)
                    for v in values { raw += (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
                    t.bytes(9, raw)
                }
            }
            graph.message(11) { valueInfo(&$0, "observation", o) }
            graph.message(12) { valueInfo(&$0, "action", a) }
        }
        // Metadata for the runtime: names and bounds.
        for (key, value) in [("task", checkpoint.metadata.task), ("observation_names", checkpoint.metadata.observationNames.joined(separator: ",")),
                             ("action_names", checkpoint.metadata.actionNames.joined(separator: ",")),
                             ("action_low", checkpoint.metadata.actionLow.map { "\($0)" }.joined(separator: ",")),
                             ("action_high", checkpoint.metadata.actionHigh.map { "\($0)" }.joined(separator: ",")),
            ("action_choices", String(checkpoint.metadata.actionChoices))] {
            model.message(14) { $0.string(1, key); $0.string(2, value) }
        }
        return Data(model.data)
    }

    /// ValueInfoProto: name, float tensor [N, size] with a symbolic batch dimension.
    private static func valueInfo(_ v: inout Protobuf, _ name: String, _ size: Int) {
        v.string(1, name)
        v.message(2) { type in
            type.message(1) { tensor in
                tensor.int(1, 1)  // FLOAT
                tensor.message(2) { shape in
                    shape.message(1) { $0.string(2, "N") }
                    shape.message(1) { $0.int(1, size) }
                }
            }
        }
    }
}
