// Tensor descriptors checked against a model's description before any memory is touched: names,
// dtypes, ranks and shapes, strides (non-negative, non-overlapping), pointers, byte sizes, and
// outputs that would alias another buffer. Platform-independent; every failure is a ShimError
// with a TensorFault, never a trap.

import CMacb

/// One tensor of a model: what a descriptor for it must match.
struct FeatureSpec {
    let name: String
    let dtype: DType
    let shape: [Int]
}

/// A caller descriptor that passed every check, bound to the model's spec for its name.
struct BoundTensor {
    let index: Int  // position in the caller's array (its flags are written back there)
    let spec: FeatureSpec
    let dtype: DType  // the caller buffer's dtype (may differ from spec.dtype for floats)
    let strides: [Int]  // in elements
    let data: UnsafeMutableRawPointer
    let extentBytes: Int  // bytes from data to one past the last element reached

    var shape: [Int] { spec.shape }
    var isContiguous: Bool { strides == contiguousStrides(shape) }
}

/// C-order strides, in elements, for `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var step = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = step
        step = step &* max(shape[axis], 1)
    }
    return strides
}

/// Elements reached by `shape` and `strides` (1 + the largest offset), or nil on overflow.
func elementExtent(shape: [Int], strides: [Int]) -> Int? {
    var last = 0
    for (size, step) in zip(shape, strides) where size > 1 {
        let (span, overflowA) = (size - 1).multipliedReportingOverflow(by: step)
        let (sum, overflowB) = last.addingReportingOverflow(span)
        if overflowA || overflowB { return nil }
        last = sum
    }
    return last + 1
}

/// True when no two indices of `shape` map to the same element (checked as nested axes).
func stridesOverlap(shape: [Int], strides: [Int]) -> Bool {
    let axes = zip(shape, strides).filter { $0.0 > 1 }.sorted { $0.1 < $1.1 }
    var reach = 1  // the smallest stride the next (larger) axis may have
    for (size, step) in axes {
        if step < reach { return true }
        let (next, overflow) = step.multipliedReportingOverflow(by: size)
        if overflow { return true }
        reach = next
    }
    return false
}

enum TensorChecks {
    /// Binds and checks a whole predict call: every input present once, outputs a known subset.
    static func bindCall(
        inputSpecs: [FeatureSpec], outputSpecs: [FeatureSpec],
        inputs: UnsafePointer<macb_tensor>?, inputCount: Int,
        outputs: UnsafePointer<macb_tensor>?, outputCount: Int
    ) throws -> (inputs: [BoundTensor], outputs: [BoundTensor]) {
        let boundInputs = try bindAll(inputs, count: inputCount, specs: inputSpecs, role: MACB_ROLE_INPUT)
        let boundOutputs = try bindAll(outputs, count: outputCount, specs: outputSpecs, role: MACB_ROLE_OUTPUT)
        for spec in inputSpecs where !boundInputs.contains(where: { $0.spec.name == spec.name }) {
            throw ShimError(
                status: MACB_ERR_TENSOR_MISSING, message: "input '\(spec.name)' is missing",
                fault: TensorFault(role: MACB_ROLE_INPUT, index: -1, name: spec.name,
                                   expectedDtype: spec.dtype, expectedShape: spec.shape))
        }
        try checkAliasing(inputs: boundInputs, outputs: boundOutputs)
        return (boundInputs, boundOutputs)
    }

    private static func bindAll(
        _ descriptors: UnsafePointer<macb_tensor>?, count: Int, specs: [FeatureSpec], role: Int32
    ) throws -> [BoundTensor] {
        guard count >= 0 else { throw ShimError.invalid("\(roleName(role)) count \(count) is negative") }
        guard count > 0 else { return [] }
        guard let descriptors else {
            throw ShimError.invalid("\(roleName(role)) descriptors are NULL but their count is \(count)")
        }
        var bound: [BoundTensor] = []
        for index in 0..<count {
            let tensor = try bind(descriptors[index], index: index, specs: specs, role: role)
            if bound.contains(where: { $0.spec.name == tensor.spec.name }) {
                throw fault(MACB_ERR_TENSOR_NAME, "\(roleName(role)) '\(tensor.spec.name)' is given twice",
                            role: role, index: index, name: tensor.spec.name, spec: tensor.spec)
            }
            bound.append(tensor)
        }
        return bound
    }

    /// Checks one descriptor; the order of checks decides which error a bad descriptor gets.
    private static func bind(
        _ desc: macb_tensor, index: Int, specs: [FeatureSpec], role: Int32
    ) throws -> BoundTensor {
        let what = roleName(role)
        guard desc.struct_size >= UInt32(MemoryLayout<macb_tensor>.size) else {
            throw ShimError.invalid("\(what) descriptor \(index): struct_size \(desc.struct_size) is too small")
        }
        guard let name = readCString(desc.name) else {
            throw fault(MACB_ERR_TENSOR_NAME, "\(what) descriptor \(index) has no name (NULL or not UTF-8)",
                        role: role, index: index, name: "", spec: nil)
        }
        guard let spec = specs.first(where: { $0.name == name }) else {
            let known = specs.map { $0.name }.joined(separator: ", ")
            throw fault(MACB_ERR_TENSOR_NAME, "the model has no \(what) '\(name)' (it has: \(known))",
                        role: role, index: index, name: name, spec: nil)
        }
        let label = "\(what) '\(name)'"
        guard let dtype = DType(code: desc.dtype), dtype.converts(to: spec.dtype) else {
            throw fault(MACB_ERR_TENSOR_DTYPE,
                        "\(label): dtype \(dtypeName(desc.dtype)) cannot be used for the model's \(spec.dtype)",
                        role: role, index: index, name: name, spec: spec)
        }
        let rank = Int(desc.rank)
        let shape = (1...Int(MACB_MAX_RANK)).contains(rank) ? readInt64s(desc.shape, count: rank).map { Int($0) } : []
        guard rank == spec.shape.count, shape == spec.shape else {
            let got = (1...Int(MACB_MAX_RANK)).contains(rank) ? "\(shape)" : "rank \(rank)"
            throw fault(MACB_ERR_TENSOR_SHAPE, "\(label): shape mismatch: expected \(spec.shape), got \(got)",
                        role: role, index: index, name: name, spec: spec)
        }
        let strides = readInt64s(desc.strides, count: rank).map { Int(truncatingIfNeeded: $0) }
        try checkStrides(strides, shape: shape, label: label, role: role, index: index, spec: spec)
        guard let data = desc.data else {
            throw fault(MACB_ERR_TENSOR_NULL, "\(label): data pointer is NULL",
                        role: role, index: index, name: name, spec: spec)
        }
        let extent = try byteExtent(shape: shape, strides: strides, dtype: dtype, label: label,
                                    role: role, index: index, spec: spec)
        guard desc.byte_size >= UInt64(extent) else {
            var error = fault(MACB_ERR_TENSOR_SIZE,
                              "\(label): buffer too small: needs \(extent) bytes, has \(desc.byte_size)",
                              role: role, index: index, name: name, spec: spec)
            error.fault?.neededBytes = UInt64(extent)
            throw error
        }
        return BoundTensor(index: index, spec: spec, dtype: dtype, strides: strides, data: data, extentBytes: extent)
    }

    private static func checkStrides(
        _ strides: [Int], shape: [Int], label: String, role: Int32, index: Int, spec: FeatureSpec
    ) throws {
        if let bad = strides.firstIndex(where: { $0 < 0 }) {
            throw fault(MACB_ERR_TENSOR_LAYOUT, "\(label): stride \(strides[bad]) of axis \(bad) is negative",
                        role: role, index: index, name: spec.name, spec: spec)
        }
        if stridesOverlap(shape: shape, strides: strides) {
            throw fault(MACB_ERR_TENSOR_LAYOUT, "\(label): strides \(strides) overlap for shape \(shape)",
                        role: role, index: index, name: spec.name, spec: spec)
        }
    }

    private static func byteExtent(
        shape: [Int], strides: [Int], dtype: DType, label: String, role: Int32, index: Int, spec: FeatureSpec
    ) throws -> Int {
        guard let elements = elementExtent(shape: shape, strides: strides) else {
            throw fault(MACB_ERR_TENSOR_LAYOUT, "\(label): strides \(strides) overflow",
                        role: role, index: index, name: spec.name, spec: spec)
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        if overflow {
            throw fault(MACB_ERR_TENSOR_LAYOUT, "\(label): byte extent overflows",
                        role: role, index: index, name: spec.name, spec: spec)
        }
        return bytes
    }

    /// An output buffer that overlaps any other buffer would be corrupted by (or corrupt) the copy.
    private static func checkAliasing(inputs: [BoundTensor], outputs: [BoundTensor]) throws {
        for (position, output) in outputs.enumerated() {
            let others = inputs.map { ($0, "input") }
                + outputs.enumerated().filter { $0.offset != position }.map { ($0.element, "output") }
            for (other, kind) in others where rangesOverlap(output, other) {
                throw fault(MACB_ERR_TENSOR_LAYOUT,
                            "output '\(output.spec.name)' overlaps the buffer of \(kind) '\(other.spec.name)'",
                            role: MACB_ROLE_OUTPUT, index: output.index, name: output.spec.name, spec: output.spec)
            }
        }
    }

    private static func rangesOverlap(_ a: BoundTensor, _ b: BoundTensor) -> Bool {
        let aStart = UInt(bitPattern: a.data), bStart = UInt(bitPattern: b.data)
        return aStart < bStart &+ UInt(b.extentBytes) && bStart < aStart &+ UInt(a.extentBytes)
    }

    private static func fault(
        _ status: Int32, _ message: String, role: Int32, index: Int, name: String, spec: FeatureSpec?
    ) -> ShimError {
        ShimError(status: status, message: message,
                  fault: TensorFault(role: role, index: index, name: name,
                                     expectedDtype: spec?.dtype, expectedShape: spec?.shape ?? []))
    }

    static func roleName(_ role: Int32) -> String {
        role == MACB_ROLE_INPUT ? "input" : "output"
    }
}
