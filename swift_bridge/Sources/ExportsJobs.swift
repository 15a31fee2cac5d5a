// The C entry points of load jobs: begin, wait, state, cancel, take the model, free.
// A macb_job* is a retained Ticket; a macb_model* is a retained ModelCore.

import CMacb

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func retainedHandle(_ object: AnyObject) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

func borrowed<T: AnyObject>(_ handle: OpaquePointer?, as _: T.Type, _ what: String) throws -> T {
    guard let handle else { throw ShimError.invalid("\(what) is NULL") }
    return Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
}

/// Why loads cannot start here, computed once (nil when the backend can load).
private let unavailableReason: String? = {
    let facts = currentBackend.facts(runningInVM: runningInVirtualMachine())
    return facts.coreMLAvailable ? nil : facts.note
}()

/// The absolute, symlink-free form of an existing path (the job key must not depend on spelling).
private func canonicalPath(_ path: String) throws -> String {
    guard let resolved = realpath(path, nil) else {
        throw ShimError(status: MACB_ERR_NOT_FOUND, message: "no such model: \(path)")
    }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// The size of macb_load_params in ABI 1, before function_name was appended.
private let loadParamsVersion1Size = MemoryLayout<macb_load_params>.offset(of: \macb_load_params.function_name)!

/// The caller's macb_load_params copied into a zeroed one of this ABI's size: fields an older, smaller
/// struct lacks stay NULL, and nothing past the caller's struct_size is read.
private func readLoadParams(_ pointer: UnsafePointer<macb_load_params>) throws -> macb_load_params {
    let size = Int(UnsafeRawPointer(pointer).load(as: UInt32.self))
    guard size >= loadParamsVersion1Size else {
        throw ShimError.invalid("macb_load_params.struct_size is \(size), expected at least \(loadParamsVersion1Size)")
    }
    var params = macb_load_params()
    withUnsafeMutableBytes(of: &params) { local in
        local.copyMemory(from: UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: min(size, local.count)))
    }
    return params
}

private func readLoadRequest(_ params: macb_load_params) throws -> LoadRequest {
    guard let rawPath = readCString(params.model_path), !rawPath.isEmpty else {
        throw ShimError.invalid("model_path is NULL, empty or not UTF-8")
    }
    guard (MACB_COMPUTE_CPU_ONLY...MACB_COMPUTE_CPU_AND_NEURAL_ENGINE).contains(params.compute_units) else {
        throw ShimError.invalid("compute_units \(params.compute_units) is not a MACB_COMPUTE_* value")
    }
    guard params.flags & ~UInt32(MACB_LOAD_PREWARM) == 0 else {
        throw ShimError.invalid("unknown flags 0x\(String(params.flags, radix: 16))")
    }
    let modelPath = try canonicalPath(rawPath)
    let compiledPath = params.compiled_path == nil ? nil : readCString(params.compiled_path)
    if params.compiled_path != nil && (compiledPath ?? "").isEmpty {
        throw ShimError.invalid("compiled_path is empty or not UTF-8")
    }
    let functionName = params.function_name == nil ? nil : readCString(params.function_name)
    if params.function_name != nil && (functionName ?? "").isEmpty {
        throw ShimError.invalid("function_name is empty or not UTF-8")
    }
    let isCompiled = modelPath.hasSuffix(".mlmodelc")
    if !isCompiled && compiledPath == nil {
        throw ShimError.invalid("compiled_path is required for \(modelPath) (only a .mlmodelc loads without one)")
    }
    return LoadRequest(modelPath: modelPath, compiledPath: isCompiled ? nil : compiledPath,
                       computeUnits: params.compute_units, prewarm: params.flags & UInt32(MACB_LOAD_PREWARM) != 0,
                       functionName: functionName)
}

@_cdecl("macb_load_begin")
public func exportLoadBegin(
    _ params: UnsafePointer<macb_load_params>?, _ outJob: UnsafeMutablePointer<OpaquePointer?>?,
    _ msg: UnsafeMutablePointer<CChar>?, _ msgSize: Int
) -> Int32 {
    runExport(msg, msgSize) {
        guard let params, let outJob else { throw ShimError.invalid("params and out_job must not be NULL") }
        if let reason = unavailableReason { throw ShimError(status: MACB_ERR_UNAVAILABLE, message: reason) }
        let fields = try readLoadParams(params)
        let request = try readLoadRequest(fields)
        let ticket = JobRegistry.shared.begin(request, callback: fields.on_stage, userData: fields.user_data)
        outJob.pointee = retainedHandle(ticket)
    }
}

@_cdecl("macb_job_wait")
public func exportJobWait(
    _ job: OpaquePointer?, _ timeoutMilliseconds: UInt32, _ msg: UnsafeMutablePointer<CChar>?, _ msgSize: Int
) -> Int32 {
    runExport(msg, msgSize) {
        try borrowed(job, as: Ticket.self, "job").wait(timeoutMilliseconds: timeoutMilliseconds)
    }
}

@_cdecl("macb_job_state_get")
public func exportJobState(_ job: OpaquePointer?, _ out: UnsafeMutablePointer<macb_job_state>?) -> Int32 {
    runExport(nil, 0) {
        guard let out else { throw ShimError.invalid("out is NULL") }
        try checkStructSize(out.pointee.struct_size, macb_job_state.self, "macb_job_state")
        var state = try borrowed(job, as: Ticket.self, "job").state
        state.struct_size = out.pointee.struct_size
        out.pointee = state
    }
}

@_cdecl("macb_job_cancel")
public func exportJobCancel(_ job: OpaquePointer?) -> Int32 {
    runExport(nil, 0) {
        try borrowed(job, as: Ticket.self, "job").cancel()
    }
}

@_cdecl("macb_job_take_model")
public func exportJobTakeModel(
    _ job: OpaquePointer?, _ outModel: UnsafeMutablePointer<OpaquePointer?>?,
    _ msg: UnsafeMutablePointer<CChar>?, _ msgSize: Int
) -> Int32 {
    runExport(msg, msgSize) {
        guard let outModel else { throw ShimError.invalid("out_model is NULL") }
        let core = try borrowed(job, as: Ticket.self, "job").takeModel()
        outModel.pointee = retainedHandle(core)
    }
}

@_cdecl("macb_job_free")
public func exportJobFree(_ job: OpaquePointer?) {
    guard let job else { return }
    withPool {
        let ticket = Unmanaged<Ticket>.fromOpaque(UnsafeRawPointer(job))
        ticket.takeUnretainedValue().cancel()
        ticket.release()
    }
}
