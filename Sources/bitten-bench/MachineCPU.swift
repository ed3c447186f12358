import Foundation

/// The whole machine's CPU time, from `/proc/stat` (every process and the kernel, all cores): what a run's cores
/// spent on something other than the server, Redis and this bench. On this VM that is mostly its own agent (PID 1,
/// threads at nice −10 that take a core for a few ms every ~3 s), which delays whatever it preempts.
struct MachineCPU {
    /// Seconds busy (user, nice, system, irq, softirq; all cores) since boot.
    var busy: Double
    /// Seconds the hypervisor ran something else on this machine's cores (steal) since boot.
    var steal: Double

    /// Now, or nil where `/proc/stat` cannot be read.
    static func now() -> MachineCPU? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        return parse(text, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// The `cpu` line of a `/proc/stat` text, in seconds (`ticksPerSecond`: USER_HZ, nearly always 100).
    static func parse(_ text: String, ticksPerSecond: Double) -> MachineCPU? {
        guard ticksPerSecond > 0,
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return nil }
        let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        // user nice system idle iowait irq softirq steal (guest time is counted in user already).
        guard ticks.count >= 8 else { return nil }
        let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]
        return MachineCPU(busy: busy / ticksPerSecond, steal: ticks[7] / ticksPerSecond)
    }

    /// The rest of the machine between `start` and `end`, in % of one core: busy time less what `known` (the
    /// processes measured on their own, in CPU seconds) used, and steal.
    static func rest(from start: MachineCPU?, to end: MachineCPU?, known: Double, over seconds: Double)
        -> (others: Double, steal: Double)?
    {
        guard let start, let end, seconds > 0 else { return nil }
        return (
            max(0, end.busy - start.busy - known) / seconds * 100, max(0, end.steal - start.steal) / seconds * 100
        )
    }
}
