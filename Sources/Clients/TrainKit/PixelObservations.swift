import ClientKit
import Foundation
import Messaging

/// Pixel observations of a vector env (one server's or several): one rgb camera rendered by `/sim/reset` and `/sim/step`
/// (over sockets: the step channel carries no images) for every env, as `ImageInput` says (HWC,
/// bytes / 255). Replaces a step's observations, and the final observations of envs whose
/// episode ended, with the images of the same states; everything else passes through.
struct PixelObservations {
    let input: ImageInput

    /// The camera `name` (nil: the scene's first rgb observation camera, else its first rgb camera).
    init(env: some VectorEnvironment, camera name: String?) throws {
        let rgb = env.description.cameras.filter(\.rgb)
        guard let camera = name.map({ n in rgb.first { $0.name == n } }) ?? (rgb.first(where: \.observation) ?? rgb.first) else {
            throw TrainError("pixels: the scene has no rgb camera\(name.map { " named '\($0)'" } ?? "") (cameras: \(env.description.cameras.map(\.name).joined(separator: ", ")))")
        }
        guard env.description.renderBackend != "none" else { throw TrainError("pixels: the server renders nothing (render backend none)") }
        input = ImageInput(camera: camera.name, height: Int(camera.height), width: Int(camera.width), channels: 3)
    }

    /// A checkpoint's image input, checked against the server's camera of that name.
    init(env: some VectorEnvironment, input: ImageInput) throws {
        guard let camera = env.description.cameras.first(where: { $0.name == input.camera && $0.rgb }) else {
            throw TrainError("the policy sees camera '\(input.camera)'; the scene has none with rgb (cameras: \(env.description.cameras.map(\.name).joined(separator: ", ")))")
        }
        guard Int(camera.width) == input.width, Int(camera.height) == input.height, input.channels == 3, input.layout == "HWC" else {
            throw TrainError("the policy sees \(input.camera) at \(input.width)x\(input.height)x\(input.channels); the scene renders it at \(camera.width)x\(camera.height) rgb")
        }
        guard env.description.renderBackend != "none" else { throw TrainError("pixels: the server renders nothing (render backend none)") }
        self.input = input
    }

    /// Resets every env (from `seed`) and returns their images (env-major).
    func reset(_ env: some VectorEnvironment, seed: UInt64?) throws -> [Double] {
        let images = try env.reset(seed: seed, render: true, cameras: [input.camera]).images
        return try pixels(images, count: env.count)
    }

    /// One step of every env, its observations the images of the states reached, and its final
    /// observations the images of the states the episodes ended in.
    func step(_ env: some VectorEnvironment, actions: [Double]) throws -> VectorEnv.StepResult {
        var r = try env.step(actions: actions, render: true, cameras: [input.camera])
        r.observations = try pixels(r.images, count: env.count)
        let finals = r.finalImages.filter { $0.encoding != "32FC1" }
        guard finals.count == r.finalPositions.count else {
            throw TrainError("/sim/step returned \(finals.count) final images for \(r.finalPositions.count) ended episodes")
        }
        for (k, p) in r.finalPositions.enumerated() { r.finalObservations[p] = try pixels([finals[k]], count: 1) }
        r.images = []
        r.finalImages = []
        return r
    }

    /// `count` rgb8 images of the camera as values in [0, 1], HWC, one image after another.
    /// A camera that also renders depth sends its 32FC1 image after each rgb8 one: the policy sees the rgb.
    func pixels(_ all: [SensorMsgs_Image], count: Int) throws -> [Double] {
        let images = all.filter { $0.encoding != "32FC1" }
        guard images.count == count else { throw TrainError("expected \(count) images of \(input.camera), got \(images.count)") }
        var out = [Double](repeating: 0, count: count * input.size)
        let row = input.width * 3
        for (k, image) in images.enumerated() {
            guard image.encoding == "rgb8", Int(image.width) == input.width, Int(image.height) == input.height, Int(image.step) >= row,
                  image.data.count >= Int(image.step) * input.height else {
                throw TrainError("an image of \(input.camera) is \(image.encoding) \(image.width)x\(image.height), expected rgb8 \(input.width)x\(input.height)")
            }
            let step = Int(image.step)
            image.data.withUnsafeBytes { bytes in
                for y in 0..<input.height {
                    for i in 0..<row { out[k * input.size + y * row + i] = Double(bytes[y * step + i]) / 255 }
                }
            }
        }
        return out
    }
}

extension TrainOptions {
    /// The PPO settings a run uses: pixels are scaled to [0, 1], not normalized.
    var effectivePPO: PPOConfiguration {
        var c = ppo
        if pixels { c.normalizeObservations = false }
        return c
    }
}
