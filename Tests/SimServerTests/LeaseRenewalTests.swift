import Foundation
import Messaging
import Synchronization
import Testing
@testable import SimEngine
@testable import SimServer

/// `/sim/lease` with `lease` set renews that lease without stepping, so a trainer that pauses longer
/// than its ttl_s keeps its envs.
@Suite(.serialized) struct LeaseRenewalTests {
    typealias Server = SimServerTests

    static func lease(_ client: ServiceClient, _ configure: (inout Robosim_LeaseRequest) -> Void)
        throws(ServiceError) -> Robosim_LeaseResponse
    {
        try client.call("/sim/lease", Robosim_LeaseRequest.with(configure))
    }

    static func expectError(_ code: Robosim_ErrorCode, _ text: String, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected \(code.wireName) (\(text)), got success")
        } catch {
            let e = error as? ServiceError
            #expect(e?.code == code && (e?.message ?? "").contains(text), "\(error)")
        }
    }

    @Test func renewedLeaseOutlivesItsOriginalTTL() async throws {
        try await Server.withServer(LockstepTests.lockstep) { _, client in
            // Renew every 0.2 s, never stepping, until 4 s have passed: past the 3 s TTL. (Short
            // gaps: a loaded 2-core machine may wake a sleeping test late, but not by 2.8 s.)
            let taken = try Self.lease(client) { $0.envIds = [1, 2]; $0.ttlS = 3.0; $0.clientName = "pausing_trainer" }
            // On a thread of its own: the test's cooperative threads may be busy with other suites
            // for seconds on a 2-core machine, and a late wake-up would let the lease lapse.
            let renewals = try await OfflineStrategistTests.onThread { () throws -> Int in
                let start = Date()
                var renewals = 0
                while Date().timeIntervalSince(start) < 4 {
                    Thread.sleep(forTimeInterval: 0.2)
                    let renewed = try Self.lease(client) { $0.lease = taken.lease }
                    #expect(renewed.lease == taken.lease && renewed.envIds == [1, 2])
                    renewals += 1
                }
                // Still usable and its envs still taken (checked here, before any wait on the pool).
                let s = try LockstepTests.step(client, lease: taken.lease, actions: [0, 0])
                #expect(s.rewards.count == 2)
                Self.expectError(.failedPrecondition, "leased by 'pausing_trainer'") { _ = try Self.lease(client) { $0.envIds = [2] } }
                // A renewal with ttl_s > 0 replaces the TTL: 0.3 s, then silence, and the lease is gone.
                let shorter = try Self.lease(client) { $0.lease = taken.lease; $0.ttlS = 0.3 }
                #expect(shorter.envIds == [1, 2])
                return renewals
            }
            #expect(renewals >= 2)
            try await Task.sleep(for: .milliseconds(800))
            Self.expectError(.notFound, "released or expired") { _ = try Self.lease(client) { $0.lease = taken.lease } }
            Self.expectError(.failedPrecondition, "expired or unknown") {
                _ = try LockstepTests.step(client, lease: taken.lease, actions: [0, 0])
            }
            #expect(try Self.lease(client) { $0.envIds = [1, 2] }.envIds == [1, 2])
        }
    }

    @Test func expiredReleasedOrUnknownLeasesCannotBeRenewed() async throws {
        try await Server.withServer(LockstepTests.lockstep) { _, client in
            let short = try Self.lease(client) { $0.envIds = [0]; $0.ttlS = 0.2 }
            try await Task.sleep(for: .milliseconds(700))
            Self.expectError(.notFound, "no lease '\(short.lease)'") { _ = try Self.lease(client) { $0.lease = short.lease } }

            let released = try Self.lease(client) { $0.envIds = [0] }
            let _: Robosim_Empty = try client.call("/sim/release", Robosim_ReleaseRequest.with { $0.lease = released.lease })
            Self.expectError(.notFound, "released or expired") { _ = try Self.lease(client) { $0.lease = released.lease } }
            Self.expectError(.notFound, "no lease 'nope'") { _ = try Self.lease(client) { $0.lease = "nope" } }

            // A renewal names no envs, and its ttl_s is checked like a new lease's.
            let live = try Self.lease(client) { $0.count = 2 }
            Self.expectError(.invalidArgument, "not both") { _ = try Self.lease(client) { $0.lease = live.lease; $0.envIds = [0] } }
            Self.expectError(.invalidArgument, "not both") { _ = try Self.lease(client) { $0.lease = live.lease; $0.count = 1 } }
            Self.expectError(.invalidArgument, "ttl_s") { _ = try Self.lease(client) { $0.lease = live.lease; $0.ttlS = -1 } }
            Self.expectError(.invalidArgument, "ttl_s") { _ = try Self.lease(client) { $0.lease = live.lease; $0.ttlS = .infinity } }
            #expect(try Self.lease(client) { $0.lease = live.lease }.envIds == live.envIds)
        }
    }

    /// On a clock the test sets: a renewal before expiry moves the expiry to renewal time + TTL.
    @Test func renewalMovesTheExpiry() throws {
        let time = Mutex(100.0)
        let table = LeaseTable(envCount: 2) { time.withLock { $0 } }
        let lease = try table.acquire(ids: [1], count: 0, client: "t", ttl: 1)
        time.withLock { $0 = 100.9 }
        #expect(try table.renew(lease.id, ttl: 0).lastSeen == 100.9)
        time.withLock { $0 = 101.8 }   // 1.8 s after the lease was taken, 0.9 s after the renewal
        #expect(try table.authorize(lease: lease.id, ids: []) == [1])
        time.withLock { $0 = 102.9 }   // 1.1 s since the last use
        #expect(throws: ServiceError.notFound("no lease '\(lease.id)' (released or expired)")) { _ = try table.renew(lease.id, ttl: 0) }
        #expect(try table.acquire(ids: [1], count: 0, client: "u", ttl: 1).envs == [1])

        // A renewal with a TTL replaces it.
        let other = try table.acquire(ids: [0], count: 0, client: "v", ttl: 1)
        #expect(try table.renew(other.id, ttl: 10).ttl == 10)
        time.withLock { $0 = 110 }
        #expect(table.active.map(\.id).contains(other.id))
        time.withLock { $0 = 113 }
        #expect(!table.active.map(\.id).contains(other.id))
    }

    @Test func tableRenewsOnlyLiveLeases() throws {
        let table = LeaseTable(envCount: 3)
        let a = try table.acquire(ids: [], count: 2, client: "a", ttl: 5)
        let renewed = try table.renew(a.id, ttl: 0)
        #expect(renewed.id == a.id && renewed.envs == [0, 1] && renewed.ttl == 5 && renewed.lastSeen >= a.lastSeen)
        #expect(try table.renew(a.id, ttl: 60).ttl == 60)
        #expect(table.active.first?.ttl == 60)
        try table.release(a.id)
        #expect(throws: ServiceError.notFound("no lease '\(a.id)' (released or expired)")) { _ = try table.renew(a.id, ttl: 0) }
    }
}
