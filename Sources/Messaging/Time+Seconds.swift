extension BuiltinInterfaces_Time {
    /// A time from seconds (nanoseconds rounded; negative times clamp to zero nanoseconds).
    public init(seconds: Double) {
        self.init()
        let whole = seconds.rounded(.down)
        sec = Int32(clamping: Int64(whole))
        nanosec = UInt32(min(999_999_999, max(0, ((seconds - whole) * 1e9).rounded())))
    }

    /// Seconds as a double.
    public var seconds: Double { Double(sec) + Double(nanosec) / 1e9 }
}
