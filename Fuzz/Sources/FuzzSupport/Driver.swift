import CFuzzerDriver
import Foundation

/// Runs libFuzzer over `target` with the process's arguments and exits with its status.
///
/// SwiftPM links each executable's `main.swift` as the program's `main`, so libFuzzer's own `main`
/// never runs: each target's top-level code calls this instead (compiler-rt's `LLVMFuzzerRunDriver`,
/// the documented entry for programs with a main of their own).
public func runFuzzer(_ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, target))
}
