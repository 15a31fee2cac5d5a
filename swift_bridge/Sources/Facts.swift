// Runtime facts that need no Core ML: the OS name and version, and whether this is a virtual
// machine (Neural Engine compiles hang on macOS VMs, so a VM counts as having no Neural Engine).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func operatingSystemName() -> String {
    #if os(macOS)
    return "macOS"
    #elseif os(Linux)
    return "Linux"
    #else
    return "this platform"
    #endif
}

/// Major, minor, patch: the macOS product version, or the kernel release elsewhere.
func operatingSystemVersion() -> [Int32] {
    #if os(macOS)
    let text = sysctlString("kern.osproductversion") ?? ""
    #else
    var names = utsname()
    uname(&names)
    let text = withUnsafeBytes(of: names.release) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
    #endif
    // "14.4.1" or "6.1.0-18-amd64": the leading digits of the first three dot-separated parts.
    let parts = text.split(separator: ".", maxSplits: 3).prefix(3).map { part in
        Int32(part.prefix(while: { $0.isASCII && $0.isNumber })) ?? 0
    }
    return parts + [Int32](repeating: 0, count: 3 - parts.count)
}

/// 1 in a virtual machine, 0 on bare metal, -1 when this platform cannot tell.
func runningInVirtualMachine() -> Int32 {
    #if os(macOS)
    guard let present = sysctlInt32("kern.hv_vmm_present") else { return -1 }
    return present == 0 ? 0 : 1
    #elseif os(Linux)
    return linuxHypervisorFlag()
    #else
    return -1
    #endif
}

#if os(macOS)
func sysctlString(_ name: String) -> String? {
    var size = 0
    guard sysctlbyname(name, nil, &size, nil, 0) == 0, size > 0 else { return nil }
    var bytes = [CChar](repeating: 0, count: size)
    guard sysctlbyname(name, &bytes, &size, nil, 0) == 0 else { return nil }
    return String(decoding: bytes.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func sysctlInt32(_ name: String) -> Int32? {
    var value: Int32 = 0
    var size = MemoryLayout<Int32>.size
    guard sysctlbyname(name, &value, &size, nil, 0) == 0 else { return nil }
    return value
}
#endif

#if os(Linux)
/// x86 CPUs under a hypervisor advertise the "hypervisor" flag in /proc/cpuinfo; other CPUs
/// (arm64) have no such flag, so absence only means "no" on x86.
private func linuxHypervisorFlag() -> Int32 {
    guard let file = fopen("/proc/cpuinfo", "r") else { return -1 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 4096)
    var sawFlags = false
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard text.hasPrefix("flags") else { continue }
        sawFlags = true
        if text.split(separator: " ").contains(where: { $0.trimmingSuffix() == "hypervisor" }) { return 1 }
        break  // every core lists the same flags
    }
    return sawFlags ? 0 : -1
}

private extension Substring {
    func trimmingSuffix() -> Substring {
        var text = self
        while let last = text.last, last == "\n" || last == "\r" || last == "\t" { text.removeLast() }
        return text
    }
}
#endif
