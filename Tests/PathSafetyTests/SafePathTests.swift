import Foundation
import PathSafety
import Testing

/// SafePath: names from outside stay inside their folder (lexically, and through symbolic links).
@Suite struct SafePathTests {
    /// A fresh folder with `inside/` and `outside/` under it; the tests use `inside` as the base.
    static func folders() throws -> (base: String, outside: String, cleanup: () -> Void) {
        let top = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-safepath-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: top + "/inside/sub", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: top + "/outside", withIntermediateDirectories: true)
        return (top + "/inside", top + "/outside", { try? FileManager.default.removeItem(atPath: top) })
    }

    @Test(arguments: [
        ("a", "a"), ("a/b/c.json", "a/b/c.json"), ("sub/x", "sub/x"), ("./a//b/", "a/b"), ("..a/b..", "..a/b.."),
        ("new/folder/file", "new/folder/file"), ("a b/é.mp4", "a b/é.mp4"),
    ])
    func nestedNamesStayAndAreJoined(name: String, expected: String) throws {
        let f = try Self.folders()
        defer { f.cleanup() }
        #expect(try SafePath.child(of: f.base, named: name) == f.base + "/" + expected)
        #expect(try SafePath.child(of: URL(fileURLWithPath: f.base), named: name).path == f.base + "/" + expected)
    }

    @Test(arguments: [
        ("../x", "'..' is not allowed in it"), ("a/../../x", "'..' is not allowed in it"), ("..", "'..' is not allowed in it"),
        ("a/..", "'..' is not allowed in it"), ("/etc/passwd", "it is an absolute path"), ("/", "it is an absolute path"),
        ("", "the name is empty"), ("a\0b", "it holds a NUL byte"), (".", "it names the folder itself, not something in it"),
        ("./", "it names the folder itself, not something in it"),
    ])
    func traversalAbsoluteEmptyAndNulAreRefused(name: String, reason: String) throws {
        let f = try Self.folders()
        defer { f.cleanup() }
        do {
            let path = try SafePath.child(of: f.base, named: name, what: "job output")
            Issue.record("'\(name)' gave \(path)")
        } catch {
            #expect(error.reason == reason)
            #expect(error.folder == f.base)
            #expect(error.description.hasPrefix("job output '\(name.replacingOccurrences(of: "\0", with: "\\0"))' is refused: \(reason)"))
            #expect(error.description.hasSuffix("it must stay inside \(f.base)"))
        }
    }

    @Test func symlinkInsideTheFolderLeadingOutIsRefused() throws {
        let f = try Self.folders()
        defer { f.cleanup() }
        try FileManager.default.createSymbolicLink(atPath: f.base + "/escape", withDestinationPath: f.outside)
        try FileManager.default.createSymbolicLink(atPath: f.base + "/sub/file.json", withDestinationPath: f.outside + "/file.json")
        try FileManager.default.createSymbolicLink(atPath: f.base + "/dangling", withDestinationPath: f.outside + "/missing/file")
        let real = SafePath.resolved(f.outside)!
        for (name, reason) in [("escape/x.json", "\(f.base)/escape is a symbolic link to \(real), outside the folder"),
                               ("escape", "\(f.base)/escape is a symbolic link to \(real), outside the folder"),
                               ("sub/file.json", "\(f.base)/sub/file.json is a symbolic link to nothing"),
                               ("dangling", "\(f.base)/dangling is a symbolic link to nothing")] {
            #expect(throws: PathEscapeError(name: name, folder: f.base, what: "name", reason: reason)) { try SafePath.child(of: f.base, named: name) }
        }
        // Once the link's target exists, it is still outside.
        FileManager.default.createFile(atPath: f.outside + "/file.json", contents: Data())
        #expect(throws: PathEscapeError.self) { try SafePath.child(of: f.base, named: "sub/file.json") }
    }

    @Test func symlinkThatStaysInsideAndALinkedBaseAreFine() throws {
        let f = try Self.folders()
        defer { f.cleanup() }
        try FileManager.default.createSymbolicLink(atPath: f.base + "/alias", withDestinationPath: f.base + "/sub")
        #expect(try SafePath.child(of: f.base, named: "alias/x") == f.base + "/alias/x")
        // The base itself may be a link (the user named it): what counts is where its contents lead.
        let linkedBase = f.outside + "/to-inside"
        try FileManager.default.createSymbolicLink(atPath: linkedBase, withDestinationPath: f.base)
        #expect(try SafePath.child(of: linkedBase, named: "sub/y") == linkedBase + "/sub/y")
        #expect(throws: PathEscapeError.self) { try SafePath.child(of: linkedBase, named: "../outside") }
        // A base that does not exist yet: lexical checks only.
        #expect(try SafePath.child(of: f.base + "/new", named: "a/b") == f.base + "/new/a/b")
    }

    @Test func componentsAreSingleNames() throws {
        #expect(try SafePath.component("top", in: "/d", what: "camera name") == "top")
        for bad in ["a/b", "..", ".", "", "x\0", "/x"] {
            #expect(throws: PathEscapeError.self, "\(bad)") { try SafePath.component(bad, in: "/d") }
        }
        #expect(SafePath.isInside("/a/b", folder: "/a") && SafePath.isInside("/a", folder: "/a") && !SafePath.isInside("/ab", folder: "/a"))
    }
}
