import Foundation

/// A scene folder: the MJCF model and its manifest `scene.json`. Plain values.
public struct Scene: Sendable {
    /// One camera of the manifest. It is the model's camera of the same name (fixed in the world,
    /// or mounted on the body that holds it in the MJCF), or, with `body`, one mounted here: `pos`
    /// and `xyaxes` (or `quat`) in that body's frame, as MJCF writes them ("world" for a fixed one).
    public struct Camera: Sendable, Decodable, Equatable {
        public var name: String
        public var width: Int
        public var height: Int
        public var rateHz: Double
        /// Vertical field of view in degrees (default: the model camera's, else 45).
        public var fovy: Double?
        /// image_raw (rgb8): default true. depth (32FC1, metres): default false.
        public var rgb: Bool?
        public var depth: Bool?
        /// Part of the pixel observation that `/sim/step` returns when asked (default false).
        public var observation: Bool?
        public var body: String?
        public var pos: [Double]?
        public var xyaxes: [Double]?
        public var quat: [Double]?
    }

    /// Rendering settings (`render` in the manifest): the budget knobs. Shadows, reflections and
    /// multisampling cost about 8x on a CPU renderer and are off unless asked for.
    public struct RenderSettings: Sendable, Decodable, Equatable {
        public var shadows: Bool?
        public var reflections: Bool?
        public var skybox: Bool?
        /// Multisamples per pixel (0: none).
        public var multisamples: Int?

        public init() {}
    }

    /// The box the robot's tool must stay in (world frame, metres).
    public struct WorkspaceBox: Sendable, Decodable, Equatable {
        public var min: [Double]
        public var max: [Double]
    }

    /// The manifest as written (`scene.json`, snake_case keys).
    public struct Manifest: Sendable, Decodable {
        public var name: String
        public var description: String?
        public var model: String
        public var robot: String
        public var task: String
        public var physicsDt: Double
        public var decimation: Int
        public var episodeLengthS: Double
        public var defaultEnvs: Int
        public var cameras: [Camera]
        public var topicRatesHz: [String: Double]
        public var reset: [String: [Double]]
        public var parameters: [String: Double]
        /// Text options of the robot plugin (joint, actuator, body and site names).
        public var robotOptions: [String: String]?
        public var workspace: WorkspaceBox?
        public var render: RenderSettings?
    }

    /// The scene folder, as given (relative paths stay relative, so messages name what the user typed).
    public let path: String
    public let manifest: Manifest

    /// The manifest file's path.
    public var manifestPath: String { path + "/scene.json" }
    /// The model file's path.
    public var modelPath: String { path + "/" + manifest.model }

    /// Reset ranges as closed ranges.
    public var resetRanges: [String: ClosedRange<Double>] {
        manifest.reset.compactMapValues { $0.count == 2 ? $0[0]...$0[1] : nil }
    }

    /// The workspace box, when the manifest has one.
    package var workspace: Workspace? {
        manifest.workspace.map { Workspace(min: SIMD3($0.min[0], $0.min[1], $0.min[2]), max: SIMD3($0.max[0], $0.max[1], $0.max[2])) }
    }

    /// Reads and checks `DIR/scene.json`. Throws a `SceneError` naming the file, the place and the problem.
    public init(directory: String) throws(SceneError) {
        path = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        let file = URL(fileURLWithPath: path + "/scene.json")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SceneError(file: path, place: nil, problem: "no such scene folder")
        }
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw SceneError(file: path + "/scene.json", place: nil, problem: "cannot read the manifest (\(error.localizedDescription))")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            manifest = try decoder.decode(Manifest.self, from: data)
        } catch let error as DecodingError {
            throw SceneError(file: path + "/scene.json", place: Self.place(of: error, in: data), problem: Self.problem(of: error, data: data))
        } catch {
            throw SceneError(file: path + "/scene.json", place: nil, problem: "\(error)")
        }
        try validate(file: path + "/scene.json")
    }

    private func validate(file: String) throws(SceneError) {
        let m = manifest
        func fail(_ place: String, _ problem: String) -> SceneError { SceneError(file: file, place: place, problem: problem) }
        guard m.physicsDt > 0, m.physicsDt.isFinite else { throw fail("physics_dt", "must be a positive number of seconds") }
        guard m.decimation >= 1 else { throw fail("decimation", "must be at least 1") }
        guard m.episodeLengthS > 0 else { throw fail("episode_length_s", "must be positive") }
        guard m.defaultEnvs >= 1 else { throw fail("default_envs", "must be at least 1") }
        for (name, r) in m.reset where r.count != 2 || !(r[0] <= r[1]) || !r[0].isFinite || !r[1].isFinite {
            throw fail("reset.\(name)", "must be [low, high] with low <= high")
        }
        for (name, rate) in m.topicRatesHz where !(rate >= 0.01 && rate <= 1000) {
            throw fail("topic_rates_hz.\(name)", "must be in [0.01, 1000]")
        }
        if let w = m.workspace {
            guard w.min.count == 3, w.max.count == 3, (w.min + w.max).allSatisfy(\.isFinite), zip(w.min, w.max).allSatisfy({ $0 < $1 }) else {
                throw fail("workspace", "min and max must be [x, y, z] in metres with min < max on every axis")
            }
        }
        var cameraNames = Set<String>()
        for (i, c) in m.cameras.enumerated() {
            let place = "cameras[\(i)]"
            guard !c.name.isEmpty, c.name.first?.isLetter == true,
                  c.name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") }) else { throw fail(place + ".name", "'\(c.name)' must start with a letter and hold only ASCII letters, digits and _ (it names topics)") }
            guard cameraNames.insert(c.name).inserted else { throw fail(place + ".name", "camera '\(c.name)' is declared twice") }
            guard (1...8192).contains(c.width), (1...8192).contains(c.height) else { throw fail(place, "width and height must be in 1...8192 pixels") }
            guard c.rateHz >= 0.01, c.rateHz <= 1000 else { throw fail(place + ".rate_hz", "must be in [0.01, 1000]") }
            if let f = c.fovy, !(f > 0 && f < 180) { throw fail(place + ".fovy", "must be in (0, 180) degrees") }
            guard c.rgb ?? true || c.depth ?? false else { throw fail(place, "renders nothing: set rgb or depth") }
            if let p = c.pos, p.count != 3 || !p.allSatisfy(\.isFinite) { throw fail(place + ".pos", "must be [x, y, z] in metres") }
            if let a = c.xyaxes {
                guard a.count == 6, a.allSatisfy(\.isFinite) else { throw fail(place + ".xyaxes", "must be 6 numbers (x axis, y axis)") }
                let x = SIMD3(a[0], a[1], a[2]), y = SIMD3(a[3], a[4], a[5])
                let xx = (x * x).sum(), yy = (y * y).sum(), xy = (x * y).sum()
                guard xx > 1e-12, yy - xy * xy / xx > 1e-12 * yy, yy > 1e-12 else {
                    throw fail(place + ".xyaxes", "the x and y axes must be non-zero and not parallel")
                }
            }
            if let q = c.quat, q.count != 4 || !q.allSatisfy(\.isFinite) || q.allSatisfy({ $0 == 0 }) {
                throw fail(place + ".quat", "must be [w, x, y, z], not all zero")
            }
            if c.body == nil, c.pos != nil || c.xyaxes != nil || c.quat != nil {
                throw fail(place, "pos, xyaxes and quat mount a camera on a body: give body too (\"world\" for a fixed camera)")
            }
            if c.xyaxes != nil, c.quat != nil { throw fail(place, "give xyaxes or quat, not both") }
        }
        if let r = m.render, let s = r.multisamples, !(0...16).contains(s) { throw fail("render.multisamples", "must be in 0...16") }
        guard FileManager.default.fileExists(atPath: modelPath) else {
            throw fail("model", "model file '\(m.model)' not found in \(path)")
        }
    }

    private static func problem(of error: DecodingError, data: Data) -> String {
        // For a syntax error the JSON parser itself says where (line and column).
        if case .dataCorrupted(let c) = error, c.codingPath.isEmpty {
            do { _ = try JSONSerialization.jsonObject(with: data) } catch {
                let ns = error as NSError
                let text = "\(ns.userInfo[NSDebugDescriptionErrorKey] ?? ns.localizedDescription)"
                return "invalid JSON: " + Self.withLineAndColumn(text, in: data)
            }
        }
        return switch error {
        case .keyNotFound(let key, _): "missing key '\(snake(key.stringValue))'"
        case .typeMismatch(let type, _): "expected \(type)"
        case .valueNotFound(let type, _): "expected \(type), found null"
        case .dataCorrupted(let context):
            (context.underlyingError.map { "\(($0 as NSError).userInfo[NSDebugDescriptionErrorKey] ?? $0)" }) ?? context.debugDescription
        @unknown default: "\(error)"
        }
    }

    private static func place(of error: DecodingError, in data: Data) -> String? {
        let path: [any CodingKey]
        switch error {
        case .keyNotFound(_, let c), .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): path = c.codingPath
        @unknown default: return nil
        }
        guard !path.isEmpty else { return nil }
        return path.map { $0.intValue.map { "[\($0)]" } ?? snake($0.stringValue) }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }

    /// Rewrites "around character N" as "at line L, column C" (people read lines).
    private static func withLineAndColumn(_ text: String, in data: Data) -> String {
        guard let range = text.range(of: #"character \d+"#, options: .regularExpression),
              let offset = Int(text[range].dropFirst("character ".count)), offset <= data.count
        else { return text }
        var line = 1, column = 1
        for byte in data.prefix(offset) {
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        return text.replacingCharacters(in: range, with: "line \(line), column \(column)")
    }

    private static func snake(_ s: String) -> String {
        var out = ""
        for c in s {
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        return out
    }
}

/// A scene that cannot be loaded: `FILE: PLACE: PROBLEM` on one line.
public struct SceneError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let place: String?
    public let problem: String

    public init(file: String, place: String?, problem: String) {
        self.file = file
        self.place = place
        self.problem = problem
    }

    public var description: String {
        let oneLine = problem.replacingOccurrences(of: "\n", with: " ")
        return place.map { "\(file): \($0): \(oneLine)" } ?? "\(file): \(oneLine)"
    }
}
