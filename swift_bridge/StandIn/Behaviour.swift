// TEST-ONLY: what the stand-in CoreML module does instead of running a model. A stand-in
// "package" is a directory holding standin.json (format in python/mlx_audio_coreml/native/
// __init__.py and tests/native/README.md); compile copies it into a temporary .mlmodelc, load
// reads it, and predict computes each output from a trivial declared function
// (scale * input + bias, or bias + scale * index), optionally after delays or failures.
// Nothing here resembles what Core ML does inside: results prove nothing about Core ML.
// Not public: the shim sees only the Apple signatures in MLModel.swift and MLMultiArray.swift.

import Foundation

struct StandInSpec: Decodable {
    struct Tensor: Decodable {
        let name: String
        let dtype: String  // float32, float16, float64, int32; anything else is not a multi-array
        let shape: [Int]
        let from: String?  // outputs: the input they are computed from
        let scale: Double?
        let bias: Double?
        let strides: [Int]?  // outputs: the layout of the array the stand-in returns

        static let keys: Set<String> = ["name", "dtype", "shape", "from", "scale", "bias", "strides"]

        var multiArrayType: MLMultiArrayDataType? {
            switch dtype {
            case "float32": return .float32
            case "float16": return .float16
            case "float64": return .double
            case "int32": return .int32
            default: return nil
            }
        }
    }

    /// One function of a multi-function model (`functions`): its name and tensors.
    struct Function: Decodable {
        let name: String
        let inputs: [Tensor]
        let outputs: [Tensor]

        static let keys: Set<String> = ["name", "inputs", "outputs"]
    }

    /// The tensors a loaded model (one function) has.
    struct Signature {
        let inputs: [Tensor]
        let outputs: [Tensor]
    }

    let inputs: [Tensor]?  // a model without functions; absent when `functions` is given
    let outputs: [Tensor]?
    let functions: [Function]?  // a multi-function model: MLModelConfiguration.functionName picks one
    let defaultFunction: String?  // required with `functions`: what a load without a function name gets
    let metadata: [String: String]?
    let compileDelayS: Double?
    let loadDelayS: Double?
    let predictDelayS: Double?
    let failCompile: String?
    let failLoad: String?
    let failPredict: String?
    let backings: String?  // "use" (default), "ignore", "fail"
    let callLog: String?

    static let fileName = "standin.json"
    static let keys: Set<String> = [
        "inputs", "outputs", "functions", "default_function", "metadata", "compile_delay_s", "load_delay_s", "predict_delay_s",
        "fail_compile", "fail_load", "fail_predict", "backings", "call_log",
    ]

    /// Reads and checks `directory/standin.json`; an unknown key is an error (a typo would
    /// otherwise silently turn a test control off).
    static func read(from directory: URL) throws -> StandInSpec {
        let file = directory.appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw standInError("\(directory.path) is not a stand-in package: no \(fileName)")
        }
        let raw = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        let functions = (raw["functions"] as? [[String: Any]]) ?? []
        let tensors = ([raw] + functions).flatMap { owner in
            ((owner["inputs"] as? [[String: Any]]) ?? []) + ((owner["outputs"] as? [[String: Any]]) ?? [])
        }
        let unknown = Set(raw.keys).subtracting(keys)
            .union(functions.flatMap { Set($0.keys).subtracting(Function.keys) })
            .union(tensors.flatMap { Set($0.keys).subtracting(Tensor.keys) })
        guard unknown.isEmpty else { throw standInError("unknown keys in \(file.path): \(unknown.sorted())") }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(StandInSpec.self, from: data)
        } catch {
            throw standInError("cannot read \(file.path): \(error)")
        }
    }

    /// What MLModelAsset.functionNames reports: [] for a model without functions.
    var functionNames: [String] { (functions ?? []).map(\.name) }

    /// The tensors of function `name` (nil: the default function). Fails as Core ML does for a
    /// name the model lacks; standin.json mixing top-level tensors with `functions` is an error.
    func signature(function name: String?) throws -> Signature {
        guard let functions else {
            if let name { throw standInError("function '\(name)' not found: the model has no functions") }
            return Signature(inputs: inputs ?? [], outputs: outputs ?? [])
        }
        guard inputs == nil, outputs == nil else {
            throw standInError("standin.json: give either top-level inputs/outputs or functions, not both")
        }
        guard let wanted = name ?? defaultFunction else {
            throw standInError("standin.json: functions need a default_function")
        }
        guard let function = functions.first(where: { $0.name == wanted }) else {
            throw standInError("function '\(wanted)' not found (functions: \(functionNames))")
        }
        return Signature(inputs: function.inputs, outputs: function.outputs)
    }
}

enum StandInBehaviour {
    private static let logLock = NSLock()

    static func compile(_ package: URL) throws -> URL {
        let spec = try StandInSpec.read(from: package)
        log(spec, "compile \(package.path)")
        pause(spec.compileDelayS)
        if let why = spec.failCompile { throw standInError("compile failed: \(why)") }
        let files = FileManager.default
        let compiled = files.temporaryDirectory.appendingPathComponent("macb-standin-\(UUID().uuidString).mlmodelc")
        try files.createDirectory(at: compiled, withIntermediateDirectories: true)
        try files.copyItem(at: package.appendingPathComponent(StandInSpec.fileName),
                           to: compiled.appendingPathComponent(StandInSpec.fileName))
        return compiled
    }

    /// The model at `compiled`, as function `function` (nil: the default). The call log line is
    /// `load <compute units>`, with ` function=<name>` when a function was named.
    static func load(_ compiled: URL, computeUnits: MLComputeUnits, function: String?) throws
        -> (StandInSpec, StandInSpec.Signature)
    {
        let spec = try StandInSpec.read(from: compiled)
        log(spec, "load \(computeUnits.rawValue)" + (function.map { " function=\($0)" } ?? ""))
        pause(spec.loadDelayS)
        if let why = spec.failLoad { throw standInError("load failed: \(why)") }
        return (spec, try spec.signature(function: function))
    }

    static func predict(
        _ spec: StandInSpec, _ signature: StandInSpec.Signature, input: MLFeatureProvider, backings: [String: Any]
    ) throws -> MLFeatureProvider {
        log(spec, "predict backings=\(backings.count)")
        pause(spec.predictDelayS)
        if let why = spec.failPredict { throw standInError("prediction failed: \(why)") }
        if spec.backings == "fail" && !backings.isEmpty { throw standInError("output backings rejected") }
        var arrays: [String: MLMultiArray] = [:]
        for tensor in signature.inputs {
            guard let array = input.featureValue(for: tensor.name)?.multiArrayValue else {
                throw standInError("input '\(tensor.name)' is missing")
            }
            guard array.shape.map({ $0.intValue }) == tensor.shape, array.dataType == tensor.multiArrayType else {
                throw standInError("input '\(tensor.name)' has shape \(array.shape) type \(array.dataType)")
            }
            arrays[tensor.name] = array
        }
        var outputs: [String: Any] = [:]
        for tensor in signature.outputs {
            let backing = spec.backings == "ignore" ? nil : backings[tensor.name] as? MLMultiArray
            let target = try outputArray(tensor, backing: backing)
            try fill(target, tensor, inputs: arrays)
            outputs[tensor.name] = MLFeatureValue(multiArray: target)
        }
        return try MLDictionaryFeatureProvider(dictionary: outputs)
    }

    /// The backing when it fits (a wrongly typed or shaped one fails, as Core ML documents);
    /// otherwise a new array laid out with the declared strides.
    private static func outputArray(_ tensor: StandInSpec.Tensor, backing: MLMultiArray?) throws -> MLMultiArray {
        guard let type = tensor.multiArrayType else { throw standInError("output '\(tensor.name)' is not a multi-array") }
        if let backing {
            guard backing.dataType == type, backing.shape.map({ $0.intValue }) == tensor.shape else {
                throw standInError("output backing for '\(tensor.name)' does not match the output")
            }
            return backing
        }
        return try MLMultiArray(standInShape: tensor.shape, dataType: type, strides: tensor.strides)
    }

    private static func fill(_ target: MLMultiArray, _ tensor: StandInSpec.Tensor, inputs: [String: MLMultiArray]) throws {
        let scale = tensor.scale ?? 1, bias = tensor.bias ?? 0
        guard let source = tensor.from else {
            target.setLogicalValues((0..<target.elementCount).map { bias + scale * Double($0) })
            return
        }
        guard let input = inputs[source], input.elementCount == target.elementCount else {
            throw standInError("output '\(tensor.name)' cannot be computed from '\(source)' (missing or another size)")
        }
        target.setLogicalValues(input.logicalValues().map { scale * $0 + bias })
    }

    private static func pause(_ seconds: Double?) {
        if let seconds, seconds > 0 { Thread.sleep(forTimeInterval: seconds) }
    }

    private static func log(_ spec: StandInSpec, _ line: String) {
        guard let path = spec.callLog else { return }
        logLock.lock()
        defer { logLock.unlock() }
        if let file = fopen(path, "a") {
            fputs(line + "\n", file)
            fclose(file)
        }
    }
}
