import Foundation
import FuzzSupport
import SimEngine

/// Scene manifests (`scene.json`): `Scene(directory:)` reads the file, decodes it and checks every
/// field; a bad manifest must be a `SceneError`, never a trap. The model file it names exists
/// (`model.xml`, empty) so that the checks run to the end.
enum Fixture {
    static let scratch: ScratchFile = {
        let s = ScratchFile(name: "scene.json")
        _ = FileManager.default.createFile(atPath: s.folder.appendingPathComponent("model.xml").path, contents: Data())
        return s
    }()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    _ = Fixture.scratch.write(input.bytes)
    do {
        let scene = try Scene(directory: Fixture.scratch.folder.path)
        _ = scene.resetRanges
        _ = scene.modelPath
    } catch {
        precondition(!error.description.isEmpty, "a SceneError without a description")
    }
    return 0
}

runFuzzer(fuzz)
