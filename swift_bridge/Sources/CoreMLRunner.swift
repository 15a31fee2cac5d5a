// The Core ML backend, part 2: predictions over caller memory. Inputs of the model's dtype are
// wrapped without a copy (MLMultiArray(dataPointer:...), no deallocator: the caller owns them);
// other float inputs get an explicit conversion copy. Outputs of the model's dtype are offered as
// output backings; whether Core ML used one is checked by identity, and otherwise the result is
// copied in honouring both sides' strides. A prediction with backings that fails is retried once
// without them, and this model stops offering backings.

#if canImport(CoreML)
import CMacb
import CoreML
import Foundation

final class CoreMLRunner: ModelRunner {
    private let model: MLModel
    private let inputs: [FeatureSpec]
    private(set) var usesOutputBackings = true

    init(model: MLModel, inputs: [FeatureSpec]) {
        self.model = model
        self.inputs = inputs
    }

    func predict(inputs bound: [BoundTensor], outputs: [BoundTensor]) throws -> PredictionReport {
        var features: [String: Any] = [:]
        var copied: [Bool] = []
        for tensor in bound {
            let (array, didCopy) = try inputArray(tensor)
            features[tensor.spec.name] = MLFeatureValue(multiArray: array)
            copied.append(didCopy)
        }
        let provider = try failing("could not build the input features") {
            try MLDictionaryFeatureProvider(dictionary: features)
        }
        var backings: [String: MLMultiArray] = [:]
        if usesOutputBackings {
            for tensor in outputs where tensor.dtype == tensor.spec.dtype {
                backings[tensor.spec.name] = try wrap(tensor, what: "output")
            }
        }
        let result: MLFeatureProvider
        do {
            result = try run(provider, backings: backings)
        } catch let first where !backings.isEmpty {
            usesOutputBackings = false
            backings = [:]
            do {
                result = try run(provider, backings: [:])
            } catch {
                throw ShimError(status: MACB_ERR_PREDICTION_FAILED,
                                message: "\(localized(error)) (and with output backings: \(localized(first)))")
            }
        } catch {
            throw ShimError(status: MACB_ERR_PREDICTION_FAILED, message: localized(error))
        }
        let inPlace = try outputs.map { try deliver(result, into: $0, backing: backings[$0.spec.name]) }
        return PredictionReport(inputsCopied: copied, outputsInPlace: inPlace)
    }

    /// One prediction on zeros: a Neural Engine compile that failed silently fails here.
    func prewarm() throws {
        var features: [String: Any] = [:]
        for spec in inputs {
            let array = try MLMultiArray(shape: spec.shape.map { NSNumber(value: $0) },
                                         dataType: multiArrayDataType(spec.dtype))
            array.withUnsafeMutableBytes { raw, _ in
                if let base = raw.baseAddress { memset(base, 0, raw.count) }
            }
            features[spec.name] = MLFeatureValue(multiArray: array)
        }
        _ = try run(MLDictionaryFeatureProvider(dictionary: features), backings: [:])
    }

    private func run(_ provider: MLFeatureProvider, backings: [String: MLMultiArray]) throws -> MLFeatureProvider {
        let options = MLPredictionOptions()
        if !backings.isEmpty { options.outputBackings = backings }
        return try model.prediction(from: provider, options: options)
    }

    /// The caller's memory as an MLMultiArray, or a converted copy when the dtype differs.
    private func inputArray(_ tensor: BoundTensor) throws -> (MLMultiArray, Bool) {
        if tensor.dtype == tensor.spec.dtype { return (try wrap(tensor, what: "input"), false) }
        let name = tensor.spec.name, modelType = tensor.spec.dtype
        let scratch = try failing("could not allocate a conversion copy of input '\(name)'") {
            try MLMultiArray(shape: tensor.shape.map { NSNumber(value: $0) }, dataType: multiArrayDataType(modelType))
        }
        let source = StridedSource(base: UnsafeRawPointer(tensor.data), dtype: tensor.dtype, strides: tensor.strides)
        try scratch.withUnsafeMutableBytes { raw, strides in
            // Use the strides handed to the closure: the storage may differ from `scratch.strides`.
            guard let base = raw.baseAddress, reaches(raw.count, shape: tensor.shape, strides: strides, dtype: modelType)
            else { throw ShimError.internalError("conversion scratch for '\(name)' is smaller than its strides") }
            copyTensor(shape: tensor.shape, from: source,
                       to: StridedDestination(base: base, dtype: modelType, strides: strides))
        }
        return (scratch, true)
    }

    /// Caller memory wrapped without copying; no deallocator, the caller owns it.
    private func wrap(_ tensor: BoundTensor, what: String) throws -> MLMultiArray {
        try failing("could not wrap \(what) '\(tensor.spec.name)'") {
            try MLMultiArray(dataPointer: tensor.data, shape: tensor.shape.map { NSNumber(value: $0) },
                             dataType: multiArrayDataType(tensor.dtype),
                             strides: tensor.strides.map { NSNumber(value: $0) }, deallocator: nil)
        }
    }

    /// Makes sure the output is in the caller's buffer; true when Core ML wrote it there itself.
    private func deliver(_ result: MLFeatureProvider, into tensor: BoundTensor, backing: MLMultiArray?) throws -> Bool {
        let name = tensor.spec.name
        guard let array = result.featureValue(for: name)?.multiArrayValue else {
            throw ShimError(status: MACB_ERR_PREDICTION_FAILED,
                            message: "Core ML returned no multi-array for output '\(name)'")
        }
        if let backing, array === backing { return true }
        let shape = array.shape.map { $0.intValue }
        let strides = array.strides.map { $0.intValue }
        guard shape == tensor.shape, strides.count == shape.count, strides.allSatisfy({ $0 >= 0 }),
              let dtype = dtype(of: array.dataType), dtype.converts(to: tensor.dtype)
        else {
            let got = "\(shape) strides \(strides) type \(array.dataType.rawValue)"
            throw ShimError(status: MACB_ERR_PREDICTION_FAILED,
                            message: "output '\(name)' came back as \(got); expected \(tensor.shape) \(tensor.spec.dtype)")
        }
        return try array.withUnsafeBytes { raw -> Bool in
            guard let base = raw.baseAddress, reaches(raw.count, shape: shape, strides: strides, dtype: dtype) else {
                throw ShimError(status: MACB_ERR_PREDICTION_FAILED,
                                message: "output '\(name)': Core ML's buffer is smaller than its strides reach")
            }
            if base == UnsafeRawPointer(tensor.data) && strides == tensor.strides && dtype == tensor.dtype {
                return true  // the backing's memory, under another object
            }
            copyTensor(shape: shape, from: StridedSource(base: base, dtype: dtype, strides: strides),
                       to: StridedDestination(base: tensor.data, dtype: tensor.dtype, strides: tensor.strides))
            return false
        }
    }
}

/// True when `byteCount` bytes hold every element `shape` and `strides` reach.
private func reaches(_ byteCount: Int, shape: [Int], strides: [Int], dtype: DType) -> Bool {
    guard strides.count == shape.count, strides.allSatisfy({ $0 >= 0 }),
          let elements = elementExtent(shape: shape, strides: strides) else { return false }
    let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
    return !overflow && bytes <= byteCount
}

/// Runs a Core ML call, turning its error into a prediction failure with context.
private func failing<T>(_ context: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ShimError {
        throw error
    } catch {
        throw ShimError(status: MACB_ERR_PREDICTION_FAILED, message: "\(context): \(localized(error))")
    }
}
#endif
