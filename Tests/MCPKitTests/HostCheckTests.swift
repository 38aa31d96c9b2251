import Testing

@testable import MCPKit

/// `sim-mcp --http --host`: the endpoint has no authentication, so a host beyond loopback needs
/// `--insecure` (as `sim-server --viewer-host` and `sim-bridge --host` do).
@Suite struct HostCheckTests {
    @Test(arguments: ["127.0.0.1", "127.3.4.5", "localhost", "LOCALHOST", "::1", "[::1]"])
    func loopbackIsServed(host: String) throws {
        try StreamableHTTPServer.checkHost(host, insecure: false)
    }

    @Test(arguments: ["0.0.0.0", "::", "10.0.0.2", "eth0", "sim-0.lab", "127.0.0.1.evil.example", "127.evil", "127.0.0.256"])
    func beyondLoopbackNeedsInsecure(host: String) throws {
        let error = #expect(throws: StreamableHTTPServer.ExposureRefused.self) {
            try StreamableHTTPServer.checkHost(host, insecure: false)
        }
        #expect(error?.host == host)
        let text = error?.description ?? ""
        #expect(!text.contains("\n"))
        #expect(text.contains("--host \(host)") && text.contains("no authentication") && text.contains("--insecure"))
        try StreamableHTTPServer.checkHost(host, insecure: true)
    }
}
