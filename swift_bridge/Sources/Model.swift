// A loaded model as the C ABI sees it: its description (with C strings that live as long as the
// model), its metadata, and predictions checked and then serialized onto the backend's runner.

import CMacb

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A C string owned by the model, freed with it.
private final class OwnedCString {
    let pointer: UnsafeMutablePointer<CChar>

    init(_ text: String) {
        pointer = strdup(text) ?? strdup("")!
    }

    deinit {
        free(pointer)
    }
}

final class ModelCore {
    let inputs: [FeatureSpec]
    let outputs: [FeatureSpec]
    let usedCompiledCache: Bool
    let computeUnits: Int32
    private let runner: ModelRunner
    private let inputNames: [OwnedCString]
    private let outputNames: [OwnedCString]
    private let metadata: [(key: OwnedCString, value: OwnedCString)]
    private let lock = Lock()  // serializes predictions (see macb.h, thread safety)
    private var predictions: UInt64 = 0

    init(loaded: LoadedRunner, computeUnits: Int32) {
        inputs = loaded.inputs
        outputs = loaded.outputs
        usedCompiledCache = loaded.usedCompiledCache
        self.computeUnits = computeUnits
        runner = loaded.runner
        inputNames = loaded.inputs.map { OwnedCString($0.name) }
        outputNames = loaded.outputs.map { OwnedCString($0.name) }
        metadata = loaded.metadata.map { (OwnedCString($0.key), OwnedCString($0.value)) }
    }

    func features(role: Int32) throws -> [FeatureSpec] {
        switch role {
        case MACB_ROLE_INPUT: return inputs
        case MACB_ROLE_OUTPUT: return outputs
        default: throw ShimError.invalid("role \(role) is neither MACB_ROLE_INPUT nor MACB_ROLE_OUTPUT")
        }
    }

    func describe(role: Int32, index: Int) throws -> macb_feature {
        let specs = try features(role: role)
        guard specs.indices.contains(index) else {
            throw ShimError.invalid("feature index \(index) out of range 0..<\(specs.count)")
        }
        let spec = specs[index]
        var out = macb_feature()
        out.struct_size = UInt32(MemoryLayout<macb_feature>.size)
        out.name = UnsafePointer((role == MACB_ROLE_INPUT ? inputNames : outputNames)[index].pointer)
        out.dtype = spec.dtype.rawValue
        out.rank = Int32(spec.shape.count)
        writeInt64s(spec.shape, into: &out.shape)
        return out
    }

    var metadataCount: Int { metadata.count }

    func metadataEntry(_ index: Int) throws -> (UnsafePointer<CChar>, UnsafePointer<CChar>) {
        guard metadata.indices.contains(index) else {
            throw ShimError.invalid("metadata index \(index) out of range 0..<\(metadata.count)")
        }
        return (UnsafePointer(metadata[index].key.pointer), UnsafePointer(metadata[index].value.pointer))
    }

    var info: macb_model_info {
        lock.withLock {
            var out = macb_model_info()
            out.struct_size = UInt32(MemoryLayout<macb_model_info>.size)
            out.compute_units = computeUnits
            out.uses_output_backings = runner.usesOutputBackings ? 1 : 0
            out.predictions = predictions
            return out
        }
    }

    /// Checks every descriptor, then predicts; flags are written back only on success.
    func predict(inputs inputDescs: UnsafeMutablePointer<macb_tensor>?, inputCount: Int,
                 outputs outputDescs: UnsafeMutablePointer<macb_tensor>?, outputCount: Int) throws {
        let bound = try TensorChecks.bindCall(
            inputSpecs: inputs, outputSpecs: outputs,
            inputs: UnsafePointer(inputDescs), inputCount: inputCount,
            outputs: UnsafePointer(outputDescs), outputCount: outputCount)
        let report = try lock.withLock {
            let report = try runner.predict(inputs: bound.inputs, outputs: bound.outputs)
            predictions &+= 1
            return report
        }
        for (tensor, copied) in zip(bound.inputs, report.inputsCopied) {
            inputDescs?[tensor.index].flags = copied ? UInt32(MACB_TENSOR_COPIED) : 0
        }
        for (tensor, inPlace) in zip(bound.outputs, report.outputsInPlace) {
            outputDescs?[tensor.index].flags = UInt32(inPlace ? MACB_TENSOR_WRITTEN_IN_PLACE : MACB_TENSOR_COPIED)
        }
    }
}
