import Foundation

/// Statistics of one feature over a set of frames, as LeRobot stores them (`meta/stats.json`,
/// the `stats/<feature>/<stat>` columns of `meta/episodes`, `episodes_stats.jsonl`): per dimension
/// min, max, mean, std (population), the frame count, and the quantiles q01, q10, q50, q90, q99.
/// Images have one value per channel, on pixel values scaled to [0, 1]. Plain values.
public struct FeatureStats: Sendable, Equatable, Codable {
    /// How the values are laid out in JSON and Parquet: vectors `[d]`, images `[c][1][1]`,
    /// booleans (min and max as booleans), integers (min and max as integers).
    public enum Kind: String, Sendable, Codable { case vector, image, bool, int }

    public var kind: Kind
    public var min: [Double]
    public var max: [Double]
    public var mean: [Double]
    public var std: [Double]
    public var count: Int
    /// q01, q10, q50, q90, q99 per dimension.
    public var quantiles: [[Double]]

    public static let quantileLevels = [0.01, 0.10, 0.50, 0.90, 0.99]
    public static let quantileNames = ["q01", "q10", "q50", "q90", "q99"]

    /// Stats of rows of `dimension` values each, stored row-major in `values` (`rows` rows: needed
    /// when `dimension` is 0).
    public init(kind: Kind, values: [Double], dimension: Int, rows: Int? = nil) {
        precondition(dimension >= 0 && (dimension == 0 ? values.isEmpty : values.count % dimension == 0))
        self.kind = kind
        let n = rows ?? (dimension > 0 ? values.count / dimension : 0)
        count = n
        min = []; max = []; mean = []; std = []
        quantiles = Array(repeating: [], count: Self.quantileLevels.count)
        var column = [Double](repeating: 0, count: n)
        for d in 0..<dimension {
            for r in 0..<n { column[r] = values[r * dimension + d] }
            let (lo, hi, m, s) = Self.moments(column)
            min.append(lo); max.append(hi); mean.append(m); std.append(s)
            column.sort()
            for (k, level) in Self.quantileLevels.enumerated() { quantiles[k].append(Self.quantile(sorted: column, level)) }
        }
    }

    /// Per-channel stats of rgb8 frames (`width * height * 3` bytes each), on values / 255, from a
    /// sample as LeRobot takes one: at most `sampleFrames` frames (evenly spaced) and `samplePixels`
    /// pixels of each (evenly spaced). `count` is the number of frames.
    public init(rgbFrames frames: [[UInt8]], sampleFrames: Int = 100, samplePixels: Int = 1024) {
        kind = .image
        count = frames.count
        var channels: [[Double]] = [[], [], []]
        let frameStride = Swift.max(1, (frames.count + sampleFrames - 1) / Swift.max(1, sampleFrames))
        for frame in Swift.stride(from: 0, to: frames.count, by: frameStride).map({ frames[$0] }) {
            let pixels = frame.count / 3
            let stride = Swift.max(1, pixels / Swift.max(1, samplePixels))
            var p = 0
            while p < pixels {
                for c in 0..<3 { channels[c].append(Double(frame[3 * p + c]) / 255) }
                p += stride
            }
        }
        min = []; max = []; mean = []; std = []
        quantiles = Array(repeating: [], count: Self.quantileLevels.count)
        for c in 0..<3 {
            let (lo, hi, m, s) = Self.moments(channels[c])
            min.append(lo); max.append(hi); mean.append(m); std.append(s)
            channels[c].sort()
            for (k, level) in Self.quantileLevels.enumerated() { quantiles[k].append(Self.quantile(sorted: channels[c], level)) }
        }
    }

    /// Stats of the union of the frames behind `parts` (all of one feature): exact min, max,
    /// mean, std and count; quantiles as the count-weighted mean of the parts' (LeRobot does the same).
    public static func aggregate(_ parts: [FeatureStats]) -> FeatureStats? {
        guard var out = parts.first else { return nil }
        let total = parts.reduce(0) { $0 + $1.count }
        guard total > 0 else { return out }
        let dims = out.mean.count
        for d in 0..<dims {
            let mean = parts.reduce(0) { $0 + $1.mean[d] * Double($1.count) } / Double(total)
            // Pooled variance: within-part variance plus the spread of the part means.
            let variance = parts.reduce(0) { $0 + Double($1.count) * ($1.std[d] * $1.std[d] + ($1.mean[d] - mean) * ($1.mean[d] - mean)) } / Double(total)
            out.mean[d] = mean
            out.std[d] = variance.squareRoot()
            out.min[d] = parts.map { $0.min[d] }.min()!
            out.max[d] = parts.map { $0.max[d] }.max()!
            for k in quantileLevels.indices {
                out.quantiles[k][d] = parts.reduce(0) { $0 + $1.quantiles[k][d] * Double($1.count) } / Double(total)
            }
        }
        out.count = total
        return out
    }

    private static func moments(_ xs: [Double]) -> (Double, Double, Double, Double) {
        guard !xs.isEmpty else { return (0, 0, 0, 0) }
        var lo = Double.infinity, hi = -Double.infinity, sum = 0.0
        for x in xs { lo = Swift.min(lo, x); hi = Swift.max(hi, x); sum += x }
        let mean = sum / Double(xs.count)
        var squares = 0.0
        for x in xs { squares += (x - mean) * (x - mean) }
        return (lo, hi, mean, (squares / Double(xs.count)).squareRoot())
    }

    /// Linear interpolation between closest ranks (numpy's default).
    static func quantile(sorted xs: [Double], _ level: Double) -> Double {
        guard !xs.isEmpty else { return 0 }
        let position = level * Double(xs.count - 1)
        let lo = Int(position.rounded(.down)), hi = Swift.min(lo + 1, xs.count - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (position - Double(lo))
    }

    /// The JSON value LeRobot writes: `{"min": [...], "max": [...], "mean": [...], "std": [...],
    /// "count": [n], "q01": [...], ...}` with images as `[[[v]], [[v]], [[v]]]`.
    public var jsonObject: [String: Any] {
        func shaped(_ v: [Double], asBool: Bool = false, asInt: Bool = false) -> Any {
            switch kind {
            case .image: return v.map { [[$0]] }
            case .bool where asBool: return v.map { $0 != 0 }
            case .int where asInt: return v.map { Int64($0) }
            default: return v
            }
        }
        var out: [String: Any] = [
            "min": shaped(min, asBool: true, asInt: true), "max": shaped(max, asBool: true, asInt: true),
            "mean": shaped(mean), "std": shaped(std), "count": [count],
        ]
        for (k, name) in Self.quantileNames.enumerated() { out[name] = shaped(quantiles[k]) }
        return out
    }
}
