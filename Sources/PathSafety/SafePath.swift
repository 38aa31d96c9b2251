import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A name that would lead out of its folder: the name, the folder and why, on one line.
public struct PathEscapeError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The offending name, as it came (NUL bytes shown as `\0`).
    public let name: String
    /// The folder the name had to stay in.
    public let folder: String
    /// What the name is (`"job output"`, `"camera name"`), for the message.
    public let what: String
    /// Why it was refused.
    public let reason: String

    public init(name: String, folder: String, what: String, reason: String) {
        self.name = name
        self.folder = folder
        self.what = what
        self.reason = reason
    }

    public var description: String {
        "\(what) '\(Self.printable(name))' is refused: \(reason); it must stay inside \(folder)"
    }

    /// `s` for one line of a message: NUL bytes as `\0`, at most 200 characters.
    public static func printable(_ s: String) -> String {
        let shown = s.replacingOccurrences(of: "\0", with: "\\0")
        return shown.count > 200 ? String(shown.prefix(200)) + "..." : shown
    }
}

/// Paths built from names that come from outside (the wire, job files, dataset metadata, scene
/// manifests): every such path stays inside its base folder.
///
/// A name is relative and made of ordinary components: empty names, absolute paths, `..`
/// components and NUL bytes are refused (`.` and empty components are dropped, so `a/./b` and `a//b`
/// are `a/b`). Then every part of the path that exists already is resolved with `realpath(3)`,
/// so a symbolic link inside the folder that points out of it is refused too; what does not exist
/// yet is created by the caller as plain folders and files. The check is made when the path is
/// built: a folder that someone else rewrites at the same time is outside what it can promise.
///
/// Pure functions: any thread.
public enum SafePath {
    /// `base` joined with `name`, checked as above. The returned URL is `base` (as given) with the
    /// name's components appended, so messages show what the user typed.
    /// - Parameters:
    ///   - what: what the name is, for the message (`"output"`, `"data file"`).
    public static func child(of base: URL, named name: String, what: String = "name") throws(PathEscapeError) -> URL {
        let parts = try components(of: name, in: base.path, what: what)
        try checkExisting(base: base.path, parts: parts, name: name, what: what)
        var url = base
        for part in parts { url.appendPathComponent(part) }
        return url
    }

    /// `child(of:named:what:)` for string paths.
    public static func child(of base: String, named name: String, what: String = "name") throws(PathEscapeError) -> String {
        try child(of: URL(fileURLWithPath: base), named: name, what: what).path
    }

    /// Checks that `name` is one plain component (no `/`): what a file or folder name taken from
    /// outside must be (a camera name, a version, a plugin name). Returns it.
    @discardableResult
    public static func component(_ name: String, in folder: String, what: String = "name") throws(PathEscapeError) -> String {
        func refuse(_ reason: String) -> PathEscapeError { PathEscapeError(name: name, folder: folder, what: what, reason: reason) }
        if name.contains("/") { throw refuse("it must be a single name, without '/'") }
        if name == "." { throw refuse("'.' is not a name") }
        _ = try components(of: name, in: folder, what: what)
        return name
    }

    /// The real path of an existing `path` (every symbolic link resolved), or nil.
    public static func resolved(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Whether the real path `path` is `folder` or inside it (both already resolved).
    public static func isInside(_ path: String, folder: String) -> Bool {
        folder == "/" || path == folder || path.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/")
    }

    /// The name's components, refusing what could lead out of any folder.
    static func components(of name: String, in folder: String, what: String) throws(PathEscapeError) -> [String] {
        func refuse(_ reason: String) -> PathEscapeError { PathEscapeError(name: name, folder: folder, what: what, reason: reason) }
        guard !name.isEmpty else { throw refuse("the name is empty") }
        guard !name.utf8.contains(0) else { throw refuse("it holds a NUL byte") }
        guard !name.hasPrefix("/") else { throw refuse("it is an absolute path") }
        let parts = name.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
        guard !parts.contains("..") else { throw refuse("'..' is not allowed in it") }
        guard !parts.isEmpty else { throw refuse("it names the folder itself, not something in it") }
        guard name.utf8.count <= 4096, parts.allSatisfy({ $0.utf8.count <= 255 }) else { throw refuse("it is too long for a path") }
        return parts
    }

    /// Resolves the base and each existing prefix of base/parts; refuses any that lands outside the base.
    static func checkExisting(base: String, parts: [String], name: String, what: String) throws(PathEscapeError) {
        // A base that does not exist yet holds nothing: what the caller creates in it is plain.
        guard let realBase = resolved(base.isEmpty ? "." : base) else { return }
        var path = base.isEmpty ? "." : base
        for part in parts {
            path += "/" + part
            var info = stat()
            guard lstat(path, &info) == 0 else { return }  // from here on nothing exists yet
            if (info.st_mode & S_IFMT) == S_IFLNK {
                guard let target = resolved(path) else {
                    throw PathEscapeError(name: name, folder: base, what: what, reason: "\(path) is a symbolic link to nothing")
                }
                guard isInside(target, folder: realBase) else {
                    throw PathEscapeError(name: name, folder: base, what: what, reason: "\(path) is a symbolic link to \(target), outside the folder")
                }
            } else if let real = resolved(path), !isInside(real, folder: realBase) {
                throw PathEscapeError(name: name, folder: base, what: what, reason: "\(path) resolves to \(real), outside the folder")
            }
        }
    }
}
