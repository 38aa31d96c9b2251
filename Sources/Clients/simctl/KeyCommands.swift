import ArgumentParser
import Foundation
import Messaging

/// `simctl keys`: CURVE key pairs for servers and clients (docs/security.md).
struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make and read CURVE key pairs (sim-server --key/--allow, clients --server-key/--key).",
        discussion: """
            Examples:
              simctl keys generate keys/server            # keys/server.pub, keys/server.secret (0600)
              simctl keys generate keys/clients/alice     # allow it: sim-server --allow keys/clients
              simctl keys public keys/server.secret       # prints the public key
            """,
        subcommands: [Generate.self, Public.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Write PATH/NAME.pub (the public key) and PATH/NAME.secret (mode 0600: public key, secret key); never over existing files.")

        @Argument(help: "PATH/NAME of the two files, without suffix.")
        var base: String

        func run() throws {
            let folder = (base as NSString).deletingLastPathComponent
            if !folder.isEmpty {
                do {
                    try FileManager.default.createDirectory(
                        atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                } catch {
                    throw fail("cannot create \(folder): \(error.localizedDescription)")
                }
            }
            do {
                let pair = try CurveKeyPair.generate()
                let files = try pair.write(base: base)
                FileHandle.standardError.write(Data("simctl: wrote \(files.publicFile) and \(files.secretFile)\n".utf8))
                emit(pair.publicKey)
            } catch {
                throw fail(error.description)
            }
        }
    }

    struct Public: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the public key of a .secret file.")

        @Argument(help: "A .secret file.")
        var file: String

        func run() throws {
            do { emit(try CurveKeyPair.read(secretFile: file).publicKey) } catch { throw fail(error.description) }
        }
    }
}
