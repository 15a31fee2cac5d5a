// The C entry points that need no model: ABI version, build info, runtime facts, and tensor
// checks against a caller-given description. Each export runs inside an autorelease pool (threads
// created by Python have none), turns every ShimError into a status plus message, and never traps
// on caller data.

import CMacb

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(ObjectiveC)
import ObjectiveC
#endif

/// Runs `body` in an autorelease pool where Objective-C exists.
func withPool<T>(_ body: () -> T) -> T {
    #if canImport(ObjectiveC)
    return autoreleasepool(invoking: body)
    #else
    return body()
    #endif
}

/// The frame of every fallible export: status out, message into the caller's buffer.
func runExport(_ msg: UnsafeMutablePointer<CChar>?, _ msgSize: Int, _ body: () throws -> Void) -> Int32 {
    withPool {
        do {
            try body()
            writeMessage("", to: msg, size: msgSize)
            return MACB_OK
        } catch let error as ShimError {
            writeMessage(error.message, to: msg, size: msgSize)
            return error.status
        } catch {
            writeMessage("internal error in the shim: \(describe(error))", to: msg, size: msgSize)
            return MACB_ERR_INTERNAL
        }
    }
}

/// Checks that a caller struct is at least as large as this ABI's version of it.
func checkStructSize<T>(_ size: UInt32, _: T.Type, _ what: String) throws {
    guard size >= UInt32(MemoryLayout<T>.size) else {
        throw ShimError.invalid("\(what).struct_size is \(size), expected at least \(MemoryLayout<T>.size)")
    }
}

private let buildInfoText: UnsafeMutablePointer<CChar> = {
    let facts = currentBackend.facts(runningInVM: -1)
    return strdup("macb ABI \(MACB_ABI_VERSION) (backend: \(facts.backendName); built for \(operatingSystemName()))")
        ?? strdup("macb")!
}()

@_cdecl("macb_abi_version")
public func exportAbiVersion() -> UInt32 {
    UInt32(MACB_ABI_VERSION)
}

@_cdecl("macb_build_info")
public func exportBuildInfo() -> UnsafePointer<CChar> {
    UnsafePointer(buildInfoText)
}

@_cdecl("macb_runtime_facts_get")
public func exportRuntimeFacts(
    _ out: UnsafeMutablePointer<macb_runtime_facts>?, _ msg: UnsafeMutablePointer<CChar>?, _ msgSize: Int
) -> Int32 {
    runExport(msg, msgSize) {
        guard let out else { throw ShimError.invalid("out is NULL") }
        try checkStructSize(out.pointee.struct_size, macb_runtime_facts.self, "macb_runtime_facts")
        let vm = runningInVirtualMachine()
        let facts = currentBackend.facts(runningInVM: vm)
        var record = macb_runtime_facts()
        record.struct_size = out.pointee.struct_size
        record.coreml_available = facts.coreMLAvailable ? 1 : 0
        record.neural_engine_available = facts.neuralEngine
        record.neural_engine_cores = facts.neuralEngineCores
        record.running_in_vm = vm
        let version = operatingSystemVersion()
        record.os_version = (version[0], version[1], version[2])
        fillText(&record.os_name, operatingSystemName())
        fillText(&record.backend, facts.backendName)
        fillText(&record.note, facts.note)
        out.pointee = record
    }
}

/// Writes text into a fixed char array of a C struct.
func fillText<T>(_ field: inout T, _ text: String) {
    withUnsafeMutableBytes(of: &field) { raw in
        if let base = raw.baseAddress { writeCString(text, into: base, capacity: raw.count) }
    }
}

@_cdecl("macb_validate_tensors")
public func exportValidateTensors(
    _ inputSpecs: UnsafePointer<macb_feature>?, _ inputSpecCount: Int,
    _ outputSpecs: UnsafePointer<macb_feature>?, _ outputSpecCount: Int,
    _ inputs: UnsafePointer<macb_tensor>?, _ inputCount: Int,
    _ outputs: UnsafePointer<macb_tensor>?, _ outputCount: Int,
    _ fault: UnsafeMutablePointer<macb_tensor_fault>?, _ msg: UnsafeMutablePointer<CChar>?, _ msgSize: Int
) -> Int32 {
    var failure: TensorFault? = nil
    let status = runExport(msg, msgSize) {
        if let fault { try checkStructSize(fault.pointee.struct_size, macb_tensor_fault.self, "macb_tensor_fault") }
        let ins = try readSpecs(inputSpecs, count: inputSpecCount, what: "input spec")
        let outs = try readSpecs(outputSpecs, count: outputSpecCount, what: "output spec")
        do {
            _ = try TensorChecks.bindCall(inputSpecs: ins, outputSpecs: outs, inputs: inputs, inputCount: inputCount,
                                          outputs: outputs, outputCount: outputCount)
        } catch let error as ShimError {
            failure = error.fault
            throw error
        }
    }
    writeFault(failure, to: fault)
    return status
}

/// Feature specs given by a caller, checked like a model description would be.
private func readSpecs(_ specs: UnsafePointer<macb_feature>?, count: Int, what: String) throws -> [FeatureSpec] {
    guard count >= 0 else { throw ShimError.invalid("\(what) count \(count) is negative") }
    guard count > 0 else { return [] }
    guard let specs else { throw ShimError.invalid("\(what)s are NULL but their count is \(count)") }
    var result: [FeatureSpec] = []
    for index in 0..<count {
        let spec = specs[index]
        try checkStructSize(spec.struct_size, macb_feature.self, "\(what) \(index)")
        guard let name = readCString(spec.name), !name.isEmpty else {
            throw ShimError.invalid("\(what) \(index) has no name")
        }
        guard let dtype = DType(code: spec.dtype) else {
            throw ShimError.invalid("\(what) '\(name)' has \(dtypeName(spec.dtype))")
        }
        let rank = Int(spec.rank)
        let shape = readInt64s(spec.shape, count: max(rank, 0)).map { Int($0) }
        guard (1...Int(MACB_MAX_RANK)).contains(rank), shape.allSatisfy({ $0 > 0 }) else {
            throw ShimError.invalid("\(what) '\(name)' has rank \(rank), shape \(shape)")
        }
        guard !result.contains(where: { $0.name == name }) else {
            throw ShimError.invalid("\(what) '\(name)' is given twice")
        }
        result.append(FeatureSpec(name: name, dtype: dtype, shape: shape))
    }
    return result
}
