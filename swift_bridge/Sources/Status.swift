// Errors inside the shim and how they cross the C boundary: a status code, a message copied into
// the caller's buffer, and for tensor checks a fault record naming the tensor.

import CMacb

/// Which tensor a check failed on, and what the model expected of it.
struct TensorFault {
    var role: Int32
    var index: Int  // index into the caller's descriptors; -1 for a missing input
    var name: String
    var expectedDtype: DType? = nil
    var expectedShape: [Int] = []
    var neededBytes: UInt64 = 0
}

/// Every failure inside the shim. Swift code throws it; the exports turn it into a status.
struct ShimError: Error {
    let status: Int32
    let message: String
    var fault: TensorFault? = nil

    static func invalid(_ message: String) -> ShimError {
        ShimError(status: MACB_ERR_INVALID_ARGUMENT, message: message)
    }

    static func state(_ message: String) -> ShimError {
        ShimError(status: MACB_ERR_STATE, message: message)
    }

    static func internalError(_ message: String) -> ShimError {
        ShimError(status: MACB_ERR_INTERNAL, message: "internal error in the shim: \(message)")
    }

    /// Any error thrown by Core ML or Foundation, kept with its own description.
    static func wrapping(_ error: Error, status: Int32, context: String) -> ShimError {
        if let shim = error as? ShimError { return shim }
        return ShimError(status: status, message: "\(context): \(describe(error))")
    }
}

/// A readable description of any Error (Core ML throws NSError; its description names the cause).
func describe(_ error: Error) -> String {
    String(describing: error)
}

/// Copies `text` into a caller-owned buffer as NUL-terminated UTF-8, cut at a character boundary.
func writeMessage(_ text: String, to buffer: UnsafeMutablePointer<CChar>?, size: Int) {
    guard let buffer, size > 0 else { return }
    writeCString(text, into: UnsafeMutableRawPointer(buffer), capacity: size)
}

/// Writes `text` into fixed storage of `capacity` bytes (the last one always NUL).
func writeCString(_ text: String, into storage: UnsafeMutableRawPointer, capacity: Int) {
    guard capacity > 0 else { return }
    let bytes = Array(text.utf8)
    var count = min(bytes.count, capacity - 1)
    // Do not cut a multi-byte character in half: step back over continuation bytes.
    while count > 0, count < bytes.count, bytes[count] & 0xC0 == 0x80 {
        count -= 1
    }
    bytes.withUnsafeBytes { source in
        if count > 0, let base = source.baseAddress {
            storage.copyMemory(from: base, byteCount: count)
        }
    }
    storage.storeBytes(of: 0, toByteOffset: count, as: UInt8.self)
}

/// Reads a NUL-terminated UTF-8 argument; nil for NULL or invalid UTF-8. (Decoding repairs bad
/// bytes, so a round trip that changes them means the input was not UTF-8; this avoids
/// String(validatingCString:), which older Swift toolchains lack.)
func readCString(_ pointer: UnsafePointer<CChar>?) -> String? {
    guard let pointer else { return nil }
    var length = 0
    while pointer[length] != 0 { length += 1 }
    let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: length)
    let text = String(decoding: bytes, as: UTF8.self)
    return text.utf8.elementsEqual(bytes) ? text : nil
}

/// The first `count` entries of a fixed-size int64 C array (imported as a tuple).
func readInt64s<T>(_ tuple: T, count: Int) -> [Int64] {
    withUnsafeBytes(of: tuple) { raw in
        let all = raw.bindMemory(to: Int64.self)
        return Array(all.prefix(max(0, min(count, all.count))))
    }
}

/// Stores `values` into a fixed-size int64 C array, zero-filling the rest.
func writeInt64s<T>(_ values: [Int], into tuple: inout T) {
    withUnsafeMutableBytes(of: &tuple) { raw in
        let all = raw.bindMemory(to: Int64.self)
        for slot in 0..<all.count {
            all[slot] = slot < values.count ? Int64(values[slot]) : 0
        }
    }
}

/// Fills a caller's fault record from a failed tensor check (or zeroes it).
func writeFault(_ fault: TensorFault?, to out: UnsafeMutablePointer<macb_tensor_fault>?) {
    guard let out, out.pointee.struct_size >= UInt32(MemoryLayout<macb_tensor_fault>.size) else { return }
    var record = macb_tensor_fault()
    record.struct_size = out.pointee.struct_size
    if let fault {
        record.role = fault.role
        record.index = Int32(clamping: fault.index)
        record.expected_dtype = fault.expectedDtype?.rawValue ?? 0
        record.expected_rank = Int32(fault.expectedShape.count)
        writeInt64s(fault.expectedShape, into: &record.expected_shape)
        record.needed_bytes = fault.neededBytes
        withUnsafeMutableBytes(of: &record.name) { raw in
            if let base = raw.baseAddress { writeCString(fault.name, into: base, capacity: raw.count) }
        }
    }
    out.pointee = record
}
